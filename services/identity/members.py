"""Members and their enrolled faces: plain CRUD. Enrollment of new faces is in services.identity.enrollment."""

import json
import uuid
from typing import Any

from sqlalchemy import String, cast, delete, func, or_, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.errors import ConflictError, NotFoundError, UnprocessableError
from core.settings import Settings, get_settings
from db.models import ApiKey, Attempt, AuditEntry, Face, Member
from services.identity import audit, templates


def get_member(session: Session, member_id: uuid.UUID, *, hold: bool = False) -> Member:
    """hold: keep the member from being deleted until this transaction ends (FOR KEY SHARE), for a request that
    is about to write rows that point at it; a delete arriving meanwhile waits instead of breaking the insert."""
    member = session.get(Member, member_id, with_for_update={"read": True, "key_share": True} if hold else None)
    if member is None:
        raise NotFoundError(f"No member with id {member_id}.", code="member_not_found", member_id=str(member_id))
    return member


def hold(session: Session, member_id: uuid.UUID) -> bool:
    """Keep the member from being deleted until this transaction ends; False if it is already gone."""
    found = session.execute(select(Member.id).where(Member.id == member_id).with_for_update(read=True, key_share=True))
    return found.first() is not None


def get_members(session: Session, ids: set[uuid.UUID]) -> list[Member]:
    return list(session.scalars(select(Member).where(Member.id.in_(ids)))) if ids else []


def find_by_external_ids(session: Session, external_ids: list[str]) -> dict[str, tuple[uuid.UUID, int]]:
    """The id and faces count of each member among these external ids that exists."""
    found = session.execute(
        select(Member.external_id, Member.id, func.count(Face.id))
        .outerjoin(Face, Face.member_id == Member.id)
        .where(Member.external_id.in_(external_ids))
        .group_by(Member.id)
    )
    return {external_id: (member_id, faces) for external_id, member_id, faces in found}


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


def check_metadata(metadata: dict[str, Any], settings: Settings) -> None:
    """Metadata is stored as JSON and returned in every listing: strict JSON, and small."""
    try:
        size = len(json.dumps(metadata, allow_nan=False).encode())
    except ValueError:
        raise UnprocessableError("metadata must be plain JSON (no NaN or Infinity).") from None
    if size > settings.max_metadata_bytes:
        raise UnprocessableError(
            f"metadata takes {size} bytes as JSON, more than the {settings.max_metadata_bytes} allowed.",
            code="metadata_too_large", size=size, max_bytes=settings.max_metadata_bytes,
        )  # fmt: skip


def create_member(session: Session, *, external_id: str, display_name: str, metadata: dict[str, Any]) -> Member:
    check_metadata(metadata, get_settings())
    member = Member(external_id=external_id, display_name=display_name, metadata_=metadata)
    session.add(member)
    _flush_unique(session, external_id)
    return member


def update_member(session: Session, member: Member, changes: dict[str, Any], *, actor: ApiKey | None) -> Member:
    """Apply `changes` (external_id, display_name, metadata); None leaves a name as it is and clears metadata."""
    if "metadata" in changes and changes["metadata"] is None:
        changes["metadata"] = {}
    changes = {k: v for k, v in changes.items() if v is not None}
    if "metadata" in changes:
        check_metadata(changes["metadata"], get_settings())
    for field, value in changes.items():
        setattr(member, "metadata_" if field == "metadata" else field, value)
    _flush_unique(session, member.external_id)
    audit.record(session, actor, "member.update", "member", member.id, fields=",".join(sorted(changes)))
    session.refresh(member)
    return member


def delete_member(session: Session, member: Member, *, actor: ApiKey | None) -> None:
    """Erasure: the member with every face, crop and embedding of theirs. Faces and blacklist rows go through ON
    DELETE CASCADE; recorded attempts that were this person (matched, claimed, or named by a reviewer) go with
    their probe crop and embedding; other attempts keep their probe but lose this member from their candidates.
    The audit trail keeps the action and the external id, with no biometric data."""
    member_id = str(member.id)
    named_by_review = select(AuditEntry.target_id).where(
        AuditEntry.action == "review.verdict", AuditEntry.details["member_id"].astext == member_id
    )
    erased = session.execute(
        delete(Attempt)
        .where(
            or_(
                Attempt.matched_member_id == member.id,
                Attempt.claimed_member_id == member.id,
                cast(Attempt.id, String).in_(named_by_review),
            )
        )
        .returning(Attempt.id)
    ).all()
    session.execute(_DROP_CANDIDATE, {"member": json.dumps([{"member_id": member_id}]), "member_id": member_id})
    audit.record(
        session,
        actor,
        "member.delete",
        "member",
        member.id,
        external_id=member.external_id,
        erased_attempts=len(erased),
    )
    session.delete(member)


_DROP_CANDIDATE = text(
    """UPDATE attempts SET candidates = (
        SELECT coalesce(jsonb_agg(c), '[]'::jsonb) FROM jsonb_array_elements(candidates) c
        WHERE c->>'member_id' <> :member_id)
    WHERE candidates @> CAST(:member AS jsonb)"""
)


def find_by_external_id(session: Session, external_id: str) -> Member:
    member = session.scalars(select(Member).where(Member.external_id == external_id)).first()
    if member is None:
        raise NotFoundError(
            f"No member with external id {external_id!r}.", code="member_not_found", external_id=external_id
        )
    return member


def check_in(session: Session, member: Member, *, how: str, actor: ApiKey | None) -> AuditEntry:
    """A receptionist let the member in: recognised by face, or by the member card they showed. An audit entry
    (member.check_in) is the record; the attempts stay as identify recorded them, for the reviewers."""
    entry = audit.record(
        session, actor, "member.check_in", "member", member.id, external_id=member.external_id, how=how
    )
    session.flush()  # the entry's time is the check-in's
    return entry


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
