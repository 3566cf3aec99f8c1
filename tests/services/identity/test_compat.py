"""The similarity the CompreFace and DeepStack routes report: a monotone map of FaceGate's score that puts the
accept line at 0.60 and the review band's far edge at 0.40, and never moves a face across a line by rounding."""

import uuid

import numpy as np
import pytest

from core.enums import Decision
from services.identity.compat import predictions, similarity
from services.identity.matching import Candidate, DecisionRule, Outcome
from services.identity.recognition import FaceResult

RULES = [DecisionRule(accept=0.62, review=0.71), DecisionRule(accept=0.95, review=1.02)]


@pytest.mark.parametrize("rule", RULES)
def test_the_lines_and_the_shape(rule):
    assert similarity(rule.accept, rule) == pytest.approx(0.60)
    assert similarity(rule.review, rule) == pytest.approx(0.40)
    scores = np.linspace(0.0, 2.0, 4001)
    values = np.array([similarity(s, rule) for s in scores])
    assert np.all(np.diff(values) < 0)  # strictly decreasing in the score: nearer is more similar
    assert values.min() > 0 and values.max() < 1
    assert np.max(np.abs(np.diff(values))) < 0.01  # no jump anywhere


def candidate(name: str, score: float, blacklisted: bool = False) -> Candidate:
    return Candidate(uuid.uuid4(), name, name, 3, score, blacklisted, score=score)


def face(candidates: list[Candidate], outcome: Outcome) -> FaceResult:
    return FaceResult(face=None, candidates=candidates, outcome=outcome, attempt_id=None)  # type: ignore[arg-type]


RULE = DecisionRule(accept=0.62, review=0.71)


def test_the_named_member_comes_first_at_060_or_more_and_nobody_else_reaches_it():
    a, b = candidate("a", RULE.accept), candidate("b", RULE.accept + 1e-9)
    ranked = predictions(face([a, b], Outcome(Decision.MATCH, a, False)), RULE, 5)
    assert [p.candidate.external_id for p in ranked] == ["a", "b"]
    assert ranked[0].similarity >= 0.60 > ranked[1].similarity


def test_rounding_keeps_a_review_below_060_and_an_unknown_below_040():
    just_review = candidate("a", RULE.accept + 1e-9)
    (review,) = predictions(face([just_review], Outcome(Decision.REVIEW, None, True)), RULE, 1)
    assert 0.40 <= review.similarity < 0.60
    just_unknown = candidate("a", RULE.review + 1e-9)
    (unknown,) = predictions(face([just_unknown], Outcome(Decision.UNKNOWN, None, False)), RULE, 1)
    assert unknown.similarity < 0.40


def test_a_blacklisted_member_goes_last_below_040_and_the_next_decides():
    barred, next_one = candidate("barred", 0.3, blacklisted=True), candidate("next", 0.5)
    ranked = predictions(face([barred, next_one], Outcome(Decision.MATCH, next_one, False)), RULE, 2)
    assert [(p.candidate.external_id, p.similarity >= 0.60) for p in ranked] == [("next", True), ("barred", False)]
    assert ranked[1].similarity < 0.40
