"""The false-match blacklist (admin)."""

import uuid

from fastapi import APIRouter, Depends, Response

from api.deps import AdminCaller, SessionDep, require_role
from api.schemas import BlacklistEntryOut, MemberRef
from core.enums import Role
from services.identity import review

router = APIRouter(prefix="/v1/blacklist", tags=["blacklist"], dependencies=[Depends(require_role(Role.ADMIN))])


@router.get("", response_model=list[BlacklistEntryOut], operation_id="blacklist-list")
def list_blacklist(session: SessionDep, member_id: uuid.UUID | None = None) -> list[BlacklistEntryOut]:
    return [
        BlacklistEntryOut(
            id=e.id, member=MemberRef.from_member(m), attempt_id=e.attempt_id, note=e.note, created_at=e.created_at
        )
        for e, m in review.blacklist(session, member_id=member_id)
    ]


@router.delete("/{entry_id}", status_code=204, operation_id="blacklist-delete")
def remove_blacklist_entry(entry_id: uuid.UUID, session: SessionDep, caller: AdminCaller) -> Response:
    """Undo a false_match: the pair may match again, and its attempt goes back to pending."""
    review.remove_blacklist_entry(session, entry_id, actor=caller)
    return Response(status_code=204)
