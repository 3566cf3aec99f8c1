"""Identify (1:N) and verify (1:1): search, decide and record one attempt per probe face."""

import uuid
from dataclasses import dataclass

from sqlalchemy.orm import Session

from core.enums import AttemptKind, Decision
from core.errors import ConflictError, FaceRejectedError
from core.settings import Settings
from db.models import Attempt, Member
from services.faces.pipeline import AnalyzedFace
from services.identity import members
from services.identity.matching import Candidate, decide, nearest_members


@dataclass
class FaceResult:
    face: AnalyzedFace
    candidates: list[Candidate]
    match: Candidate | None
    attempt_id: uuid.UUID


@dataclass
class Verification:
    member: Member
    result: FaceResult
    faces_in_photo: int


def _record(
    session: Session,
    settings: Settings,
    *,
    kind: AttemptKind,
    request_id: uuid.UUID,
    face_index: int,
    face: AnalyzedFace,
    candidates: list[Candidate],
    threshold: float,
    decision: Decision,
    match: Candidate | None,
    claimed: Member | None = None,
) -> Attempt:
    attempt = Attempt(
        request_id=request_id,
        kind=kind,
        face_index=face_index,
        box=face.detection.box.rounded(),
        detection_score=face.detection.score,
        probe_embedding=face.embedding.tolist(),
        probe_crop_jpeg=face.crop_jpeg() if settings.store_face_crops else None,
        candidates=[c.to_record() for c in candidates],
        threshold=threshold,
        decision=decision,
        claimed_member_id=claimed.id if claimed else None,
        matched_member_id=match.member_id if match else None,
        distance=candidates[0].distance if candidates else None,
        expression=face.expression,
    )
    session.add(attempt)
    session.flush()
    return attempt


def identify(
    session: Session, settings: Settings, faces: list[AnalyzedFace], *, threshold: float, k: int
) -> list[FaceResult]:
    """Every face's nearest members and the match among them, or None (unknown)."""
    request_id = uuid.uuid4()
    results = []
    for index, face in enumerate(faces):
        candidates = nearest_members(session, face.embedding, k=k, blacklist_radius=settings.blacklist_radius)
        match = decide(candidates, threshold)
        attempt = _record(
            session,
            settings,
            kind=AttemptKind.IDENTIFY,
            request_id=request_id,
            face_index=index,
            face=face,
            candidates=candidates,
            threshold=threshold,
            decision=Decision.MATCH if match else Decision.UNKNOWN,
            match=match,
        )
        results.append(FaceResult(face, candidates, match, attempt.id))
    return results


def verify(
    session: Session, settings: Settings, member_id: uuid.UUID, faces: list[AnalyzedFace], *, threshold: float
) -> Verification:
    """Is the largest face of the photo the member? Compared with the member's nearest enabled face."""
    member = members.get_member(session, member_id)
    if not any(face.enabled for face in member.faces):
        raise ConflictError(
            "The member has no enabled face to compare with.", code="member_has_no_faces", member_id=str(member_id)
        )
    if not faces:
        raise FaceRejectedError("No face was found in the photo.", code="no_face")
    face = max(faces, key=lambda f: f.detection.size)
    candidates = nearest_members(
        session, face.embedding, k=1, blacklist_radius=settings.blacklist_radius, member_id=member.id
    )
    match = decide(candidates, threshold)
    attempt = _record(
        session,
        settings,
        kind=AttemptKind.VERIFY,
        request_id=uuid.uuid4(),
        face_index=0,
        face=face,
        candidates=candidates,
        threshold=threshold,
        decision=Decision.MATCH if match else Decision.NO_MATCH,
        match=match,
        claimed=member,
    )
    return Verification(member, FaceResult(face, candidates, match, attempt.id), len(faces))
