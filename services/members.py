"""Members and their enrolled faces: plain CRUD plus enrollment through the quality gate."""

import uuid

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from db.models import Face, Member
from services.errors import ConflictError, NotFoundError
from services.matching import nearest_members
from services.pipeline import AnalyzedFace
from services.quality import QualityGate
from services.settings import Settings


def get_member(session: Session, member_id: uuid.UUID) -> Member:
    member = session.get(Member, member_id)
    if member is None:
        raise NotFoundError(f"No member with id {member_id}.", code="member_not_found", member_id=str(member_id))
    return member


def list_members(
    session: Session, *, offset: int, limit: int, external_id: str | None = None
) -> tuple[list[Member], int]:
    query = select(Member)
    if external_id is not None:
        query = query.where(Member.external_id == external_id)
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    members = session.scalars(query.order_by(Member.created_at, Member.id).offset(offset).limit(limit)).all()
    return list(members), total


def _flush_unique(session: Session, external_id: str) -> None:
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise ConflictError(
            f"A member with external id {external_id!r} already exists.",
            code="duplicate_external_id", external_id=external_id,
        ) from None


def create_member(session: Session, *, external_id: str, display_name: str, attributes: dict) -> Member:
    member = Member(external_id=external_id, display_name=display_name, attributes=attributes)
    session.add(member)
    _flush_unique(session, external_id)
    return member


def update_member(session: Session, member: Member, changes: dict) -> Member:
    for field, value in changes.items():
        setattr(member, field, value)
    if "external_id" in changes:
        _flush_unique(session, member.external_id)
    return member


def delete_member(session: Session, member: Member) -> None:
    # Faces (with their crops) and blacklist rows go with the member through ON DELETE CASCADE.
    session.delete(member)


def select_enrollment_face(faces: list[AnalyzedFace], gate: QualityGate, *, largest: bool) -> AnalyzedFace:
    """The one face a photo may enroll, after the quality gate."""
    face = faces[gate.choose([f.detection.size for f in faces], largest=largest)]
    gate.check(face_size=face.detection.size, detection_score=face.detection.score, crop_sharpness=face.sharpness)
    return face


def enroll_face(
    session: Session, settings: Settings, member: Member, face: AnalyzedFace, *, allow_duplicate: bool,
    threshold: float,
) -> Face:
    """Store a gated face for `member`, unless it matches another member (duplicate signup) and no override."""
    if not allow_duplicate:
        nearest = nearest_members(session, face.embedding, k=2, blacklist_radius=settings.blacklist_radius)
        other = next((c for c in nearest if c.member_id != member.id and c.distance <= threshold), None)
        if other is not None:
            raise ConflictError(
                f"This face matches another member ({other.external_id}); pass allow_duplicate=true to enroll anyway.",
                code="duplicate_face",
                member={"id": str(other.member_id), "external_id": other.external_id,
                        "display_name": other.display_name},
                distance=round(other.distance, 4), threshold=threshold,
            )
    stored = Face(
        member_id=member.id,
        embedding=face.embedding.tolist(),
        detection_score=face.detection.score,
        quality={"face_size": round(face.detection.size, 1), "sharpness": round(face.sharpness, 1),
                 "box": [round(v, 1) for v in face.detection.box]},
        crop_jpeg=face.crop_jpeg() if settings.store_face_crops else None,
    )
    session.add(stored)
    session.flush()
    return stored


def get_face(session: Session, member: Member, face_id: uuid.UUID) -> Face:
    face = session.get(Face, face_id)
    if face is None or face.member_id != member.id:
        raise NotFoundError(f"Member {member.id} has no face {face_id}.", code="face_not_found",
                            face_id=str(face_id))
    return face


def remove_face(session: Session, member: Member, face_id: uuid.UUID) -> None:
    session.delete(get_face(session, member, face_id))


def get_members(session: Session, ids: set[uuid.UUID]) -> list[Member]:
    return list(session.scalars(select(Member).where(Member.id.in_(ids)))) if ids else []
