"""Identify (1:N) and verify (1:1): search, decide and record one attempt per probe face."""

import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace

from sqlalchemy.orm import Session

from core.enums import AttemptKind, Decision
from core.errors import ConflictError, FaceRejectedError
from core.metrics import DECISIONS
from core.settings import Settings
from db.models import ApiKey, Attempt, Member
from db.session import search_scope
from services.faces.pipeline import AnalyzedFace
from services.identity import learning, members
from services.identity.calibration import Calibration, GalleryCalibration
from services.identity.matching import Candidate, DecisionRule, Outcome, decide, nearest_members, rescored


@dataclass
class FaceResult:
    face: AnalyzedFace
    candidates: list[Candidate]
    outcome: Outcome
    attempt_id: uuid.UUID | None  # None: a live stream left this face unrecorded (services.identity.streams)

    @property
    def match(self) -> Candidate | None:
        return self.outcome.match


@dataclass
class Identification:
    faces: list[FaceResult]
    rule: DecisionRule
    gallery_size: int


@dataclass
class Verification:
    member: Member
    result: FaceResult
    faces_in_photo: int
    rule: DecisionRule


def scored(found: list[Candidate], calibration: Calibration | None, k: int) -> list[Candidate]:
    """The first k candidates with the score the decision compares and, when calibrated, their confidence.
    `found` holds one candidate more than k where the gallery has it: the last one's score needs its next."""
    if calibration is None:
        return found[:k]
    candidates = rescored(found, with_next=calibration.gallery_size > 1)[:k]
    return [replace(c, confidence=round(calibration.confidence(c.score), 6)) for c in candidates]


def record_attempt(
    session: Session,
    settings: Settings,
    *,
    kind: AttemptKind,
    request_id: uuid.UUID,
    face_index: int,
    face: AnalyzedFace,
    candidates: list[Candidate],
    rule: DecisionRule,
    outcome: Outcome,
    caller: ApiKey | None,
    claimed: Member | None = None,
) -> Attempt:
    matched = outcome.match.member_id if outcome.match else None
    if matched is not None and not members.hold(session, matched):
        matched = None  # deleted while this request was in flight: the attempt cannot point at it
    attempt = Attempt(
        request_id=request_id, kind=kind, face_index=face_index,
        box=face.detection.box.rounded(),
        detection_score=face.detection.score,
        probe_embedding=face.embedding.tolist(),
        probe_crop_jpeg=face.crop_jpeg() if settings.store_face_crops else None,
        candidates=[c.to_record() for c in candidates],
        threshold=rule.accept, decision=outcome.decision, needs_review=outcome.needs_review,
        claimed_member_id=claimed.id if claimed else None,
        matched_member_id=matched,
        distance=candidates[0].distance if candidates else None,
        score=candidates[0].score if candidates else None,
        confidence=candidates[0].confidence if candidates else None,
        expression=face.expression,
        caller_key_id=caller.id if caller else None,
    )  # fmt: skip
    session.add(attempt)
    session.flush()
    DECISIONS.labels(kind, outcome.decision).inc()
    return attempt


def identify(
    session: Session,
    settings: Settings,
    gallery: GalleryCalibration,
    faces: list[AnalyzedFace],
    *,
    threshold: float | None,
    k: int,
    caller: ApiKey | None,
    should_record: Callable[[AnalyzedFace, Outcome], bool] = lambda _face, _outcome: True,
) -> Identification:
    """Every face's nearest members, and a match, the review band, or unknown; each recorded as an attempt unless
    `should_record` says no.

    Without `threshold` the accept distance is the calibrated one for the current gallery size."""
    calibration = gallery.current(session)
    rule = DecisionRule(threshold, threshold) if threshold is not None else calibration.identify_rule(settings)
    request_id = uuid.uuid4()
    # The searches read the search replica when one is set (db.session.search_scope); the attempts are written here.
    with search_scope(session) as search:
        nearest = [
            nearest_members(search, face.embedding, settings, k=k + 1, gallery_size=calibration.gallery_size)
            for face in faces
        ]
    results = []
    for index, (face, found) in enumerate(zip(faces, nearest, strict=True)):
        candidates = scored(found, calibration if threshold is None else None, k)
        outcome = decide(candidates, rule, miss=Decision.UNKNOWN)
        attempt_id = None
        if should_record(face, outcome):
            attempt_id = record_attempt(
                session,
                settings,
                kind=AttemptKind.IDENTIFY,
                request_id=request_id,
                face_index=index,
                face=face,
                candidates=candidates,
                rule=rule,
                outcome=outcome,
                caller=caller,
            ).id
            if outcome.match is not None and threshold is None:
                strict = outcome.match.score <= calibration.score_for_fpir(settings.learn_identify_fpir)
                learning.learn_from_match(
                    session, settings, calibration, attempt_id=attempt_id, face=face,
                    member_id=outcome.match.member_id, strict=strict, caller=caller,
                )  # fmt: skip
        results.append(FaceResult(face, candidates, outcome, attempt_id))
    return Identification(results, rule, calibration.gallery_size)


def verify(
    session: Session,
    settings: Settings,
    gallery: GalleryCalibration,
    member_id: uuid.UUID,
    faces: list[AnalyzedFace],
    *,
    threshold: float | None,
    caller: ApiKey | None,
) -> Verification:
    """Is the largest face of the photo the member? Compared with the member's template."""
    member = members.get_member(session, member_id, hold=True)
    if member.template is None:
        raise ConflictError(
            "The member has no enabled face to compare with.", code="member_has_no_faces", member_id=str(member_id)
        )
    if not faces:
        raise FaceRejectedError("No face was found in the photo.", code="no_face")
    face = max(faces, key=lambda f: f.detection.size)
    one_to_one = Calibration(1, gallery.current(session).impostors)
    rule = DecisionRule(threshold, threshold) if threshold is not None else one_to_one.verify_rule(settings)
    found = nearest_members(
        session, face.embedding, settings, k=1, gallery_size=one_to_one.gallery_size, member_id=member.id
    )
    candidates = scored(found, one_to_one if threshold is None else None, 1)
    outcome = decide(candidates, rule, miss=Decision.NO_MATCH)
    attempt = record_attempt(
        session,
        settings,
        kind=AttemptKind.VERIFY,
        request_id=uuid.uuid4(),
        face_index=0,
        face=face,
        candidates=candidates,
        rule=rule,
        outcome=outcome,
        caller=caller,
        claimed=member,
    )
    if outcome.match is not None and threshold is None:
        strict = outcome.match.distance <= float(one_to_one.impostors.distance_at(settings.learn_verify_far))
        learning.learn_from_match(
            session, settings, one_to_one, attempt_id=attempt.id, face=face, member_id=member.id, strict=strict,
            caller=caller,
        )  # fmt: skip
    return Verification(member, FaceResult(face, candidates, outcome, attempt.id), len(faces), rule)
