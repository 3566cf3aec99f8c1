"""Admin review of recorded attempts, the false-match blacklist, API keys and the audit trail."""

import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Response

from api.deps import AdminCaller, SessionDep, require_role
from api.schemas import (
    AttemptOut, AttemptPage, AuditEntryOut, BlacklistEntryOut, FaceOut, KeyCreate, KeyCreated, KeyOut,
    MemberFaceDistance, MemberRef, ReviewItemOut, VerdictIn,
)
from services import audit, auth, review
from services.errors import NotFoundError

router = APIRouter(prefix="/v1", tags=["review"], dependencies=[Depends(require_role("admin"))])


def member_ref(member) -> MemberRef:
    return MemberRef(id=member.id, external_id=member.external_id, display_name=member.display_name)


@router.get("/review/attempts", response_model=AttemptPage)
def review_queue(
    session: SessionDep,
    status: Literal["pending", "correct", "false_match", "false_non_match"] | None = None,
    kind: Literal["identify", "verify"] | None = None, since: datetime | None = None, until: datetime | None = None,
    offset: Annotated[int, Query(ge=0)] = 0, limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> AttemptPage:
    """Recorded identify/verify attempts, borderline first (distance nearest the threshold)."""
    items, total = review.queue(session, status=status, kind=kind, since=since, until=until, limit=limit,
                                offset=offset)
    return AttemptPage(items=[AttemptOut.model_validate(a) for a in items], total=total, offset=offset, limit=limit)


def review_item_out(item: review.ReviewItem) -> ReviewItemOut:
    return ReviewItemOut(
        attempt=AttemptOut.model_validate(item.attempt),
        probe_crop_available=item.attempt.probe_crop_jpeg is not None,
        member=member_ref(item.member) if item.member else None,
        member_faces=[MemberFaceDistance(face=FaceOut.of(f), distance=round(d, 5)) for f, d in item.member_faces],
    )


@router.get("/review/attempts/{attempt_id}", response_model=ReviewItemOut)
def review_item(attempt_id: uuid.UUID, session: SessionDep) -> ReviewItemOut:
    """The attempt with the claimed, matched or nearest member's enrolled faces and their distances."""
    return review_item_out(review.item(session, attempt_id))


@router.get("/review/attempts/{attempt_id}/crop", response_class=Response,
            responses={200: {"content": {"image/jpeg": {}}}})
def probe_crop(attempt_id: uuid.UUID, session: SessionDep) -> Response:
    attempt = review.get_attempt(session, attempt_id)
    if attempt.probe_crop_jpeg is None:
        raise NotFoundError("The probe crop was not stored or has been purged.", code="crop_not_found")
    return Response(content=attempt.probe_crop_jpeg, media_type="image/jpeg")


@router.post("/review/attempts/{attempt_id}/verdict", response_model=ReviewItemOut)
def give_verdict(attempt_id: uuid.UUID, body: VerdictIn, session: SessionDep, caller: AdminCaller) -> ReviewItemOut:
    """correct, false_match (blacklists the pair) or false_non_match (optionally enrolls the probe); changeable."""
    review.set_verdict(session, attempt_id, body.verdict, actor=caller, note=body.note, member_id=body.member_id,
                       enroll=body.enroll)
    session.flush()
    return review_item_out(review.item(session, attempt_id))


@router.get("/blacklist", response_model=list[BlacklistEntryOut])
def list_blacklist(session: SessionDep, member_id: uuid.UUID | None = None) -> list[BlacklistEntryOut]:
    return [BlacklistEntryOut(id=e.id, member=member_ref(m), attempt_id=e.attempt_id, note=e.note,
                              created_at=e.created_at) for e, m in review.blacklist(session, member_id=member_id)]


@router.delete("/blacklist/{entry_id}", status_code=204)
def remove_blacklist_entry(entry_id: uuid.UUID, session: SessionDep, caller: AdminCaller) -> Response:
    """Undo a false_match: the pair may match again, and its attempt goes back to pending."""
    review.remove_blacklist_entry(session, entry_id, actor=caller)
    return Response(status_code=204)


@router.post("/keys", status_code=201, response_model=KeyCreated)
def create_key(body: KeyCreate, session: SessionDep, caller: AdminCaller) -> KeyCreated:
    key, raw = auth.create_key(session, name=body.name, role=body.role)
    audit.record(session, caller, "key.create", "api_key", key.id, name=key.name, role=key.role)
    session.flush()
    session.refresh(key)
    return KeyCreated(**KeyOut.model_validate(key).model_dump(), key=raw)


@router.get("/keys", response_model=list[KeyOut])
def list_keys(session: SessionDep) -> list[KeyOut]:
    return [KeyOut.model_validate(k) for k in auth.list_keys(session)]


@router.delete("/keys/{key_id}", response_model=KeyOut)
def revoke_key(key_id: uuid.UUID, session: SessionDep, caller: AdminCaller) -> KeyOut:
    key = auth.revoke_key(session, key_id)
    audit.record(session, caller, "key.revoke", "api_key", key.id, name=key.name)
    session.flush()
    return KeyOut.model_validate(key)


@router.get("/audit", response_model=list[AuditEntryOut])
def list_audit(
    session: SessionDep, action: str | None = None, since: datetime | None = None,
    offset: Annotated[int, Query(ge=0)] = 0, limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[AuditEntryOut]:
    """Admin actions, newest first."""
    return [AuditEntryOut.model_validate(e)
            for e in audit.list_entries(session, limit=limit, offset=offset, action=action, since=since)]
