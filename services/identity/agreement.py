"""One person per member: a member's faces must agree with each other, at verify's calibrated 1:1 lines.

A template is the mean of its member's faces, so one face of somebody else makes it an average of two people:
that stranger is then named as the member, the member falls into review, and the template sits near many other
people (a hub), which drags the calibration's estimate of how near strangers come (docs/identification.md,
"One person per member"). So every face is compared with the template of the member's *other* faces, the same way
verify compares a probe with a member:
- within verify's accept distance it agrees;
- in verify's review band it is borderline: stored disabled (out of the template) and queued for a person;
- beyond it, it clearly shows someone else: refused (422 face_mismatch), nothing written."""

from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from core.errors import FaceRejectedError
from services.identity.calibration import distance_of
from services.identity.matching import DecisionRule
from services.identity.templates import template_of


class Agreement(StrEnum):
    AGREES = "agrees"
    BORDERLINE = "borderline"  # stored disabled and queued for review
    DISAGREES = "disagrees"  # refused


@dataclass(frozen=True)
class FaceAgreement:
    index: int  # which of the faces checked
    distance: float  # to the template of the member's other faces
    agreement: Agreement


def _judged(index: int, distance: float, rule: DecisionRule) -> FaceAgreement:
    if distance <= rule.accept:
        return FaceAgreement(index, distance, Agreement.AGREES)
    if distance <= rule.review:
        return FaceAgreement(index, distance, Agreement.BORDERLINE)
    return FaceAgreement(index, distance, Agreement.DISAGREES)


def with_template(embedding: np.ndarray, template: np.ndarray | None, rule: DecisionRule) -> FaceAgreement:
    """A face added to a member with a template; with no template (no enabled face) there is nothing to disagree
    with."""
    if template is None:
        return FaceAgreement(0, 0.0, Agreement.AGREES)
    return _judged(0, float(distance_of(float(np.dot(embedding, template)))), rule)


def among(embeddings: list[np.ndarray], rule: DecisionRule) -> list[FaceAgreement]:
    """The faces of one signup, each against the template of the others. The face that agrees best always counts
    as agreeing, so a set of borderline faces keeps one face in the template; with two faces that disagree, the
    second is the one named."""
    if len(embeddings) < 2:
        return [FaceAgreement(i, 0.0, Agreement.AGREES) for i in range(len(embeddings))]
    faces = np.asarray(embeddings, dtype=np.float64)
    judged = []
    for i in range(len(faces)):
        others = template_of(np.delete(faces, i, axis=0))
        judged.append(_judged(i, float(distance_of(float(faces[i] @ others))), rule))
    # Ties (two faces: one distance) go to the first photo: the one named is the later one.
    best = min(judged, key=lambda f: (f.distance, f.index))
    return [FaceAgreement(f.index, f.distance, Agreement.AGREES) if f is best else f for f in judged]


def mismatch_error(face: FaceAgreement, rule: DecisionRule, *, against: str) -> FaceRejectedError:
    """The refusal of a face that clearly shows somebody else (`against`: what it was compared with)."""
    return FaceRejectedError(
        f"This face does not look like the same person as {against}; a member's photos must all show one person.",
        code="face_mismatch",
        distance=round(face.distance, 4),
        threshold=round(rule.review, 4),
    )
