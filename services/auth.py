"""API keys: random tokens stored as sha256 hashes, with a role; the first start creates an admin key."""

import hashlib
import logging
import os
import secrets
import uuid
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from db.models import ApiKey
from services.errors import FaceGateError, NotFoundError

log = logging.getLogger(__name__)

ROLES = ("service", "admin")
KEY_PREFIX = "fg_"
ADMIN_KEY_FILE = "admin-api-key.txt"


def hash_key(raw_key: str) -> str:
    # The keys are 256 random bits, so a plain hash is enough: there is nothing to brute-force.
    return hashlib.sha256(raw_key.encode()).hexdigest()


def create_key(session: Session, *, name: str, role: str) -> tuple[ApiKey, str]:
    """A new key and its plain value, which is not stored and cannot be shown again."""
    if role not in ROLES:
        raise FaceGateError(f"role must be one of {ROLES}.", code="validation_error", status_code=422, role=role)
    raw = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(name=name, role=role, key_hash=hash_key(raw), prefix=raw[:10])
    session.add(key)
    session.flush()
    return key, raw


def list_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.created_at)))


def revoke_key(session: Session, key_id: uuid.UUID) -> ApiKey:
    key = session.get(ApiKey, key_id)
    if key is None:
        raise NotFoundError(f"No API key {key_id}.", code="api_key_not_found", key_id=str(key_id))
    key.revoked_at = key.revoked_at or datetime.now(timezone.utc)
    return key


def authenticate(session: Session, raw_key: str) -> ApiKey | None:
    """The active key with this value, or None."""
    key = session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(raw_key), ApiKey.revoked_at.is_(None)))
    if key is not None:
        session.execute(update(ApiKey).where(ApiKey.id == key.id).values(last_used_at=func.now()))
    return key


def allows(key: ApiKey, role: str) -> bool:
    """admin may do everything a service key may."""
    return key.role == "admin" or key.role == role


def ensure_admin_key(session: Session, data_dir: Path) -> str | None:
    """On a first start with no keys at all, create an admin key, write it to an owner-only file and return it."""
    if session.scalar(select(func.count()).select_from(ApiKey)):
        return None
    _, raw = create_key(session, name="initial admin", role="admin")
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / ADMIN_KEY_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(raw + "\n")
    os.chmod(path, 0o600)
    return raw
