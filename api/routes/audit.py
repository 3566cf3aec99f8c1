"""The audit trail (admin)."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from api.deps import Moment, Offset, SessionDep, require_role
from api.schemas import AuditEntryOut
from core.enums import Role
from services.identity import audit

router = APIRouter(prefix="/v1/audit", tags=["audit"], dependencies=[Depends(require_role(Role.ADMIN))])


@router.get("", response_model=list[AuditEntryOut], operation_id="audit-list")
def list_audit(
    session: SessionDep,
    action: str | None = None,
    since: Moment | None = None,
    offset: Offset = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[AuditEntryOut]:
    """Admin actions, newest first."""
    return [
        AuditEntryOut.model_validate(e)
        for e in audit.list_entries(session, limit=limit, offset=offset, action=action, since=since)
    ]
