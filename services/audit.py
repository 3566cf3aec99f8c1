"""The audit trail of admin actions."""

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import ApiKey, AuditEntry


def record(session: Session, actor: ApiKey | None, action: str, target_type: str, target_id=None,
           **details) -> AuditEntry:
    entry = AuditEntry(
        actor_key_id=actor.id if actor else None, actor_name=actor.name if actor else "cli",
        action=action, target_type=target_type, target_id=str(target_id) if target_id else None,
        details={k: str(v) if not isinstance(v, (int, float, bool, str, type(None))) else v
                 for k, v in details.items()},
    )
    session.add(entry)
    return entry


def list_entries(session: Session, *, limit: int, offset: int, action: str | None = None,
                 since: datetime | None = None) -> list[AuditEntry]:
    query = select(AuditEntry)
    if action:
        query = query.where(AuditEntry.action == action)
    if since:
        query = query.where(AuditEntry.created_at >= since)
    return list(session.scalars(query.order_by(AuditEntry.created_at.desc()).offset(offset).limit(limit)))
