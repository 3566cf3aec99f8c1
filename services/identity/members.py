"""Members and their enrolled faces: plain CRUD. Enrollment of new faces is in services.identity.enrollment."""

import uuid
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.errors import ConflictError, NotFoundError
from db.models import ApiKey, Face, Member
from services.identity import audit, templates


def get_member(session: Session, member_id: uuid.UUID) -> Member:
    member = session.get(Member, member_id)
    if member is None:
        raise NotFoundError(f"No member with id {member_id}.", code="member_not_found", member_id=str(member_id))
    return member


def get_members(session: Session, ids: set[uuid.UUID]) -> list[Member]:
    return list(session.scalars(select(Member).where(Member.id.in_(ids)))) if ids else []


def list_members(
    session: Session, *, offset: int, limit: int, external_id: str | None = None
) -> tuple[list[Member], int]:
    query = select(Member)
    if external_id is not None:
        query = query.where(Member.external_id == external_id)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    members = session.scalars(query.order_by(Member.created_at, Member.id).offset(offset).limit(limit)).all()
    return list(members), total


def search_members(session: Session, text: str, *, limit: int = 20) -> list[Member]:
    """Members whose name or external id contains `text` (any case), by name."""
    query = select(Member).where(
        Member.display_name.icontains(text, autoescape=True) | Member.external_id.icontains(text, autoescape=True)
    )
    return list(session.scalars(query.order_by(Member.display_name, Member.id).limit(limit)))


def _flush_unique(session: Session, external_id: str) -> None:
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise ConflictError(
            f"A member with external id {external_id!r} already exists.",
            code="duplicate_external_id",
            external_id=external_id,
        ) from None


def create_member(session: Session, *, external_id: str, display_name: str, metadata: dict[str, Any]) -> Member:
    member = Member(external_id=external_id, display_name=display_name, metadata_=metadata)
    session.add(member)
    _flush_unique(session, external_id)
    return member


def update_member(session: Session, member: Member, changes: dict[str, Any], *, actor: ApiKey | None) -> Member:
    """Apply `changes` (external_id, display_name, metadata); None leaves a name as it is and clears metadata."""
    if "metadata" in changes and changes["metadata"] is None:
        changes["metadata"] = {}
    changes = {k: v for k, v in changes.items() if v is not None}
    for field, value in changes.items():
        setattr(member, "metadata_" if field == "metadata" else field, value)
    _flush_unique(session, member.external_id)
    audit.record(session, actor, "member.update", "member", member.id, fields=",".join(sorted(changes)))
    session.refresh(member)
    return member


def delete_member(session: Session, member: Member, *, actor: ApiKey | None) -> None:
    # Faces (with their crops) and blacklist rows go with the member through ON DELETE CASCADE.
    audit.record(session, actor, "member.delete", "member", member.id, external_id=member.external_id)
    session.delete(member)


def get_face(session: Session, member_id: uuid.UUID, face_id: uuid.UUID) -> Face:
    get_member(session, member_id)
    face = session.get(Face, face_id)
    if face is None or face.member_id != member_id:
        raise NotFoundError(f"Member {member_id} has no face {face_id}.", code="face_not_found", face_id=str(face_id))
    return face


def find_face(session: Session, face_id: uuid.UUID) -> Face:
    face = session.get(Face, face_id)
    if face is None:
        raise NotFoundError(f"No face {face_id}.", code="face_not_found", face_id=str(face_id))
    return face


def remove_face(session: Session, face: Face, *, actor: ApiKey | None) -> None:
    audit.record(session, actor, "face.delete", "face", face.id, member_id=face.member_id)
    session.delete(face)
    templates.rebuild(session, face.member_id)


def set_face_enabled(session: Session, face: Face, enabled: bool, *, actor: ApiKey | None) -> Face:
    """A face that causes false matches can be kept out of matching without deleting it."""
    face.enabled = enabled
    audit.record(
        session, actor, "face.enable" if enabled else "face.disable", "face", face.id, member_id=face.member_id
    )
    templates.rebuild(session, face.member_id)
    session.refresh(face)
    return face
