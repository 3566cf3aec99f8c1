"""Identify (1:N) and verify (1:1): search, decide and record one attempt per probe face."""

import uuid
from dataclasses import dataclass

from sqlalchemy.orm import Session

from db.models import Attempt, Member
from services.matching import Candidate, decide, nearest_members
from services.pipeline import AnalyzedFace
from services.settings import Settings


@dataclass
class FaceResult:
    face: AnalyzedFace
    candidates: list[Candidate]
    match: Candidate | None
    attempt_id: uuid.UUID


def _record(
    session: Session, settings: Settings, *, kind: str, request_id: uuid.UUID, face_index: int, face: AnalyzedFace,
    candidates: list[Candidate], threshold: float, decision: str, match: Candidate | None,
    claimed: Member | None = None,
) -> Attempt:
    attempt = Attempt(
        request_id=request_id, kind=kind, face_index=face_index,
        box=dict(zip(("x1", "y1", "x2", "y2"), (round(v, 1) for v in face.detection.box))),
        detection_score=face.detection.score,
        probe_embedding=face.embedding.tolist(),
        probe_crop_jpeg=face.crop_jpeg() if settings.store_face_crops else None,
        candidates=[c.to_record() for c in candidates],
        threshold=threshold, decision=decision,
        claimed_member_id=claimed.id if claimed else None,
        matched_member_id=match.member_id if match else None,
        distance=candidates[0].distance if candidates else None,
        emotion=face.expression,
    )
    session.add(attempt)
    session.flush()
    return attempt


def identify(
    session: Session, settings: Settings, faces: list[AnalyzedFace], *, threshold: float, k: int
) -> list[FaceResult]:
    request_id = uuid.uuid4()
    results = []
    for index, face in enumerate(faces):
        candidates = nearest_members(session, face.embedding, k=k, blacklist_radius=settings.blacklist_radius)
        match = decide(candidates, threshold)
        attempt = _record(session, settings, kind="identify", request_id=request_id, face_index=index, face=face,
                          candidates=candidates, threshold=threshold,
                          decision="match" if match else "unknown", match=match)
        results.append(FaceResult(face, candidates, match, attempt.id))
    return results


def verify(
    session: Session, settings: Settings, member: Member, face: AnalyzedFace, *, threshold: float
) -> FaceResult:
    """Is `face` the member? Compared with the member's nearest enabled face."""
    candidates = nearest_members(session, face.embedding, k=1, blacklist_radius=settings.blacklist_radius,
                                 member_id=member.id)
    match = decide(candidates, threshold)
    attempt = _record(session, settings, kind="verify", request_id=uuid.uuid4(), face_index=0, face=face,
                      candidates=candidates, threshold=threshold, decision="match" if match else "no_match",
                      match=match, claimed=member)
    return FaceResult(face, candidates, match, attempt.id)
