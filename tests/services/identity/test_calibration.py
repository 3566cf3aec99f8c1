"""Calibrated decisions on figures: the accept distance follows the gallery size and the target rates."""

import numpy as np
import pytest

from core.enums import Decision
from core.settings import Settings
from services.identity.calibration import GAP_MIN_FACES, GAP_SHARE, Calibration, GapModel, ImpostorScores
from services.identity.matching import Candidate, DecisionRule, decide
from services.identity.templates import template_of

IMPOSTORS = ImpostorScores(a=-0.044, b=0.194)
SETTINGS = Settings(identify_fpir=0.01, review_fpir=0.05, verify_far=0.001, verify_review_far=0.01)


def test_the_accept_score_tightens_as_the_gallery_grows():
    accepts = [Calibration(n, IMPOSTORS).identify_rule(SETTINGS).accept for n in (2, 10, 100, 1000, 100_000)]
    assert all(a > b for a, b in zip(accepts, accepts[1:], strict=False))
    # and holds the target: a stranger scores that well against some member with probability 1%
    for n in (1, 2, 100, 100_000):
        calibration = Calibration(n, IMPOSTORS)
        assert calibration.fpir(calibration.identify_rule(SETTINGS).accept) == pytest.approx(0.01, abs=2e-4)


def test_simulated_strangers_match_the_closed_form_for_the_nearest():
    # For d1 alone FPIR(d) = 1 - (1 - p(d))^N; the Monte Carlo's best draws must agree with it.
    n, d = 50, 0.9
    closed_form = 1 - (1 - IMPOSTORS.pair_rate(d)) ** n
    calibration = Calibration(n, IMPOSTORS)
    rng = np.random.default_rng(0)
    q1 = -np.expm1(np.log(rng.random(200_000)) / n)
    assert np.mean(IMPOSTORS.distance_at(q1) <= d) == pytest.approx(closed_form, rel=0.05)
    assert calibration.stranger_scores[0] < calibration.stranger_scores[-1]


def test_the_review_band_lies_beyond_the_accept_distance():
    rule = Calibration(200, IMPOSTORS).identify_rule(SETTINGS)
    assert rule.accept < rule.review
    verify = Calibration(1, IMPOSTORS).verify_rule(SETTINGS)
    assert IMPOSTORS.pair_rate(verify.accept) == pytest.approx(0.001, rel=1e-6)


def test_confidence_falls_with_distance_and_gallery_size():
    assert Calibration(100, IMPOSTORS).confidence(0.4) > Calibration(100, IMPOSTORS).confidence(0.7)
    assert Calibration(10, IMPOSTORS).confidence(0.6) > Calibration(10_000, IMPOSTORS).confidence(0.6)


def test_the_tail_fit_recovers_a_normal_and_shrinks_towards_the_prior():
    sample = np.random.default_rng(1).normal(0.05, 0.12, size=200_000)
    fitted = ImpostorScores.fit(sample)
    assert fitted.a == pytest.approx(0.05, abs=0.01) and fitted.b == pytest.approx(0.12, abs=0.01)
    small, large = fitted.shrink_towards(IMPOSTORS, 10), fitted.shrink_towards(IMPOSTORS, 10_000)
    assert IMPOSTORS.a < small.a < large.a < fitted.a + 1e-9


# The line measured on ../shared LFW (220 people, 3 photos each): gap = 0.298 - 0.217 * d1, sigma 0.053.
LFW_GAPS = GapModel(alpha=0.298, beta=-0.217, sigma=0.053)


def test_the_gap_fit_recovers_a_line_in_the_near_end_and_needs_enough_faces():
    rng = np.random.default_rng(2)
    d1 = rng.uniform(0.7, 1.3, 20_000)
    gap = np.maximum(0.3 - 0.2 * d1 + 0.05 * rng.standard_normal(d1.size), 0.0)
    fitted = GapModel.fit(d1, gap)
    assert fitted is not None
    assert fitted.beta == pytest.approx(-0.2, abs=0.03) and fitted.sigma == pytest.approx(0.05, abs=0.01)
    too_few = int(GAP_MIN_FACES / GAP_SHARE) - 10
    assert GapModel.fit(d1[:too_few], gap[:too_few]) is None


def test_a_fitted_gap_loosens_the_accept_score_and_keeps_the_target():
    # Independent draws over-estimate how far a stranger's second-nearest member is; the fitted gap corrects it.
    for n in (50, 200, 10_000):
        independent, fitted = Calibration(n, IMPOSTORS), Calibration(n, IMPOSTORS, LFW_GAPS)
        accept = fitted.identify_rule(SETTINGS).accept
        assert accept > independent.identify_rule(SETTINGS).accept
        assert fitted.fpir(accept) == pytest.approx(0.01, abs=2e-4)
    accepts = [Calibration(n, IMPOSTORS, LFW_GAPS).identify_rule(SETTINGS).accept for n in (10, 1000, 100_000)]
    assert accepts[0] > accepts[1] > accepts[2]


def candidate(distance: float, blacklisted: bool = False) -> Candidate:
    import uuid

    return Candidate(uuid.uuid4(), "x", "X", 3, distance, blacklisted, score=distance)


@pytest.mark.parametrize(
    ("distances", "identify", "verify", "review"),
    [
        ([0.5], Decision.MATCH, Decision.MATCH, False),
        ([0.9], Decision.REVIEW, Decision.NO_MATCH, True),
        ([1.2], Decision.UNKNOWN, Decision.NO_MATCH, False),
        ([], Decision.UNKNOWN, Decision.NO_MATCH, False),
    ],
)
def test_decide_names_the_band(distances, identify, verify, review):
    rule = DecisionRule(accept=0.8, review=1.0)
    found = [candidate(d) for d in distances]
    assert decide(found, rule, miss=Decision.UNKNOWN).decision == identify
    outcome = decide(found, rule, miss=Decision.NO_MATCH)
    assert outcome.decision == verify and outcome.needs_review == review


def test_a_blacklisted_member_never_matches_but_the_next_may():
    rule = DecisionRule(accept=0.8, review=1.0)
    banned, next_one = candidate(0.3, blacklisted=True), candidate(0.6)
    assert decide([banned, next_one], rule, miss=Decision.UNKNOWN).match == next_one
    assert decide([banned], rule, miss=Decision.UNKNOWN).decision == Decision.UNKNOWN


def test_a_template_is_the_normalised_mean():
    faces = np.eye(3, 128, dtype=np.float32)
    template = template_of(faces)
    assert template is not None and np.linalg.norm(template) == pytest.approx(1.0)
    assert np.allclose(template[:3], 1 / np.sqrt(3)) and template_of(np.zeros((0, 128))) is None


def test_the_score_rewards_a_clear_gap_to_the_next_member():
    from services.identity.matching import rescored

    clear, close = [candidate(0.7), candidate(1.3)], [candidate(0.7), candidate(0.75)]
    assert rescored(clear, with_next=True)[0].score == pytest.approx(0.1)
    assert rescored(close, with_next=True)[0].score == pytest.approx(0.65)
    assert rescored(clear, with_next=True)[1].score == pytest.approx(1.3)  # nothing after it: the distance
    assert [c.score for c in rescored(clear, with_next=False)] == [0.7, 1.3]
