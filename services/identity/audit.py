"""The audit trail: every admin action, written by the service function that performs it."""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import ApiKey, AuditEntry

CLI_ACTOR = "cli"  # the actor's name when an action comes from the command line


def record(
    session: Session,
    actor: ApiKey | None,
    action: str,
    target_type: str,
    target_id: uuid.UUID | str | None = None,
    **details: Any,
) -> AuditEntry:
    entry = AuditEntry(
        actor_key_id=actor.id if actor else None,
        actor_name=actor.name if actor else CLI_ACTOR,
        action=action,
        target_type=target_type,
        target_id=str(target_id) if target_id else None,
        details={k: v if isinstance(v, int | float | bool | str | None) else str(v) for k, v in details.items()},
    )
    session.add(entry)
    return entry


def list_entries(
    session: Session, *, limit: int, offset: int, action: str | None = None, since: datetime | None = None
) -> list[AuditEntry]:
    query = select(AuditEntry)
    if action:
        query = query.where(AuditEntry.action == action)
    if since:
        query = query.where(AuditEntry.created_at >= since)
    return list(session.scalars(query.order_by(AuditEntry.created_at.desc()).offset(offset).limit(limit)))
