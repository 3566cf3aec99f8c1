"""What the CompreFace- and DeepStack-compatible routes share (api/routes/compreface.py, api/routes/deepstack.py):
their `similarity`, subjects as members, the face collection as pages of faces, two photos compared.

Every recognition through them is a FaceGate identify or verify (services.identity.recognition): recorded, with
the review band, the blacklist and verdicts as for any other caller. Their clients compare a similarity in [0, 1]
with fixed lines (Double Take: match 0.60, unknown 0.40), so FaceGate's calibrated score is mapped onto it:
the accept decision at exactly 0.60 and the review band's far edge at exactly 0.40 (docs/switching-from-compreface-
deepstack.md)."""

import math
import uuid
from dataclasses import dataclass

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.enums import Decision
from core.errors import FaceRejectedError, NotFoundError
from core.settings import Settings
from db.models import ApiKey, Face, Member
from services.faces.pipeline import AnalyzedFace
from services.faces.quality import QualityGate, turn_of
from services.identity import enrollment, members
from services.identity.calibration import Calibration, GalleryCalibration
from services.identity.matching import Candidate, DecisionRule
from services.identity.recognition import FaceResult

MATCH_SIMILARITY = 0.60  # a score at FaceGate's accept line
REVIEW_EDGE_SIMILARITY = 0.40  # a score at the review band's far edge
# Similarity per review-band width inside the band; the tails approach 1 and 0 with the same slope at the lines,
# so the map has no kink there.
_SLOPE = MATCH_SIMILARITY - REVIEW_EDGE_SIMILARITY
_UPPER_RATE = _SLOPE / (1 - MATCH_SIMILARITY)
_LOWER_RATE = _SLOPE / REVIEW_EDGE_SIMILARITY
# The band's width where a rule has none (never with calibrated rules; a guard against dividing by zero).
_MIN_BAND = 1e-3
_STEP = 1e-5  # similarities are rounded to 5 decimals


def similarity(score: float, rule: DecisionRule) -> float:
    """The monotone map of a FaceGate score (lower is nearer) onto [0, 1]: with t = (review - score) / (review -
    accept), i.e. 1 at the accept line and 0 at the review band's far edge, it is 0.40 + 0.20 t inside the band,
    1 - 0.40 e^(-0.5 (t - 1)) past the accept line and 0.40 e^(0.5 t) beyond the band."""
    t = (rule.review - score) / max(rule.review - rule.accept, _MIN_BAND)
    if t >= 1:
        return 1 - (1 - MATCH_SIMILARITY) * math.exp(-_UPPER_RATE * (t - 1))
    if t >= 0:
        return REVIEW_EDGE_SIMILARITY + _SLOPE * t
    return REVIEW_EDGE_SIMILARITY * math.exp(_LOWER_RATE * t)


def _within(value: float, low: float, high: float) -> float:
    """Rounded to 5 decimals without leaving [low, high]: rounding never moves a face across a line."""
    return min(max(round(value, 5), low), high)


def _band_of(decision: Decision, needs_review: bool) -> tuple[float, float]:
    if decision == Decision.MATCH:
        return MATCH_SIMILARITY, 1.0
    if needs_review:
        return REVIEW_EDGE_SIMILARITY, MATCH_SIMILARITY - _STEP
    return 0.0, REVIEW_EDGE_SIMILARITY - _STEP


@dataclass(frozen=True)
class Prediction:
    candidate: Candidate
    similarity: float


def predictions(result: FaceResult, rule: DecisionRule, count: int) -> list[Prediction]:
    """One face's candidates as ranked subjects: first the candidate FaceGate decided on (the nearest one not
    blacklisted), with a similarity on the side of 0.60 / 0.40 its decision was; then the others, each no higher
    than the one before and below 0.60 (only the named member is a match); blacklisted ones last, below 0.40."""
    allowed = [c for c in result.candidates if not c.blacklisted]
    ranked = allowed + [c for c in result.candidates if c.blacklisted]
    out: list[Prediction] = []
    ceiling = 1.0
    for index, candidate in enumerate(ranked[:count]):
        if index == 0 and not candidate.blacklisted:
            low, high = _band_of(result.outcome.decision, result.outcome.needs_review)
        elif candidate.blacklisted:
            low, high = 0.0, REVIEW_EDGE_SIMILARITY - _STEP
        else:
            low, high = 0.0, MATCH_SIMILARITY - _STEP
        value = _within(similarity(candidate.score, rule), low, min(high, ceiling))
        ceiling = value
        out.append(Prediction(candidate, value))
    return out


# How far in front of the eyes the nose tip sits, in eye distances: the depth services.faces.quality's turn
# reading assumes (a turn of 0.6 x tan(yaw)).
_NOSE_DEPTH = 0.6


def pose(face: AnalyzedFace) -> dict[str, float]:
    """Head pose in degrees from the 5 landmarks (CompreFace's `pose` plugin fields), a geometric estimate: roll
    is the tilt of the eye line; yaw the nose's sideways turn (quality.turn_of) and pitch its offset from midway
    between the eyes and the mouth, both in eye distances, read as a nose _NOSE_DEPTH in front of the face."""
    landmarks = np.asarray(face.detection.landmarks, dtype=np.float64)
    left_eye, right_eye, nose, mouth_left, mouth_right = landmarks
    eye_line = right_eye - left_eye
    spread = max(float(np.linalg.norm(eye_line)), 1e-6)
    eyes_mid, mouth_mid = (left_eye + right_eye) / 2, (mouth_left + mouth_right) / 2
    axis = mouth_mid - eyes_mid
    length = max(float(np.linalg.norm(axis)), 1e-6)
    drop = (float(np.dot(nose - eyes_mid, axis)) / length - length / 2) / spread
    return {
        "pitch": round(math.degrees(math.atan2(-drop, _NOSE_DEPTH)), 2),
        "roll": round(math.degrees(math.atan2(eye_line[1], eye_line[0])), 2),
        "yaw": round(math.degrees(math.atan2(turn_of(landmarks), _NOSE_DEPTH)), 2),
    }


# Subjects are members, named by their external id.


def find_subject(session: Session, subject: str, *, hold: bool = False) -> Member | None:
    member_id = session.scalar(select(Member.id).where(Member.external_id == subject))
    return members.get_member(session, member_id, hold=hold) if member_id is not None else None


def get_subject(session: Session, subject: str, *, hold: bool = False) -> Member:
    member = find_subject(session, subject, hold=hold)
    if member is None:
        raise NotFoundError(f"Subject {subject} not found", code="subject_not_found", subject=subject)
    return member


def subject_names(session: Session) -> list[str]:
    return list(session.scalars(select(Member.external_id).order_by(Member.external_id)))


def create_subject(session: Session, subject: str) -> Member:
    """A member with no faces yet, named `subject` (display name too)."""
    return members.create_member(session, external_id=subject, display_name=subject, metadata={})


def rename_subject(session: Session, member: Member, subject: str, *, actor: ApiKey | None) -> Member:
    """The external id becomes `subject`; a display name that was the old subject follows it."""
    changes = {"external_id": subject}
    if member.display_name == member.external_id:
        changes["display_name"] = subject
    return members.update_member(session, member, changes, actor=actor)


def gate_example(
    faces: list[AnalyzedFace], settings: Settings, *, min_detection: float | None, largest: bool
) -> AnalyzedFace:
    """The one face of a photo's `faces` that may be added to a subject, after the quality gate; faces the
    detector is less sure of than `min_detection` (the client's det_prob_threshold) do not count."""
    sure = [f for f in faces if min_detection is None or f.detection.score >= min_detection]
    return enrollment.gate_faces(QualityGate.from_settings(settings), sure, largest=largest)


def add_example(
    session: Session,
    settings: Settings,
    gallery: GalleryCalibration,
    subject: str,
    face: AnalyzedFace,
    *,
    caller: ApiKey | None,
) -> tuple[Face, bool]:
    """Add a gated face to the subject, creating the member with its first face; (the face, whether the member
    is new). The duplicate-signup check applies as for FaceGate's own enrollment."""
    member = find_subject(session, subject, hold=True)
    created = member is None
    if member is None:
        member = create_subject(session, subject)
    stored = enrollment.add_face(
        session, settings, gallery, member, face, allow_duplicate=False, threshold=None, caller=caller
    )
    return stored, created


@dataclass(frozen=True)
class Examples:
    faces: list[tuple[uuid.UUID, str]]  # (face id, subject)
    total: int


def list_examples(session: Session, *, subject: str | None, page: int, size: int) -> Examples:
    """The stored faces, oldest first, with their subjects; of one subject when given."""
    query = select(Face.id, Member.external_id).join(Member, Face.member_id == Member.id)
    if subject is not None:
        query = query.where(Member.external_id == subject)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.execute(query.order_by(Face.created_at, Face.id).offset(page * size).limit(size)).all()
    return Examples([(face_id, name) for face_id, name in rows], total)


def remove_examples(session: Session, member: Member, *, actor: ApiKey | None) -> int:
    """Remove every face of the member (the member stays, as a subject with no examples); how many."""
    faces = list(member.faces)
    for face in faces:
        members.remove_face(session, face, actor=actor)
    return len(faces)


def subject_of_face(session: Session, face_id: uuid.UUID) -> tuple[Face, str]:
    face = members.find_face(session, face_id)
    return face, face.member.external_id


@dataclass(frozen=True)
class Comparison:
    distance: float
    similarity: float
    match: bool


def compare(
    session: Session, settings: Settings, gallery: GalleryCalibration, a: np.ndarray, b: np.ndarray
) -> Comparison:
    """Two faces compared as verify compares a face with a member (1:1, at the verify false accept targets).
    Nothing is recorded: neither face belongs to a member, so there is nobody to review it for."""
    rule = Calibration(1, gallery.current(session).impostors).verify_rule(settings)
    distance = float(np.linalg.norm(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)))
    match = distance <= rule.accept
    review = not match and distance <= rule.review
    band = _band_of(Decision.MATCH if match else Decision.NO_MATCH, review)
    return Comparison(distance, _within(similarity(distance, rule), *band), match)


def require_faces(faces: list[AnalyzedFace]) -> list[AnalyzedFace]:
    if not faces:
        raise FaceRejectedError("No face was found in the photo.", code="no_face")
    return faces
