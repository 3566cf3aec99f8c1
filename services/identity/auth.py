"""Who is calling: API keys (random tokens stored as sha256 hashes, with a role), the first admin key, and the
signed-in browser sessions of the web pages (cookie token + CSRF token)."""

import hashlib
import os
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from core.enums import Role
from core.errors import ConflictError, ForbiddenError, NotFoundError
from db.models import AdminSession, ApiKey
from services.identity import audit

KEY_PREFIX = "fg_"
ADMIN_KEY_FILE = "admin-api-key.txt"
# last_used_at is refreshed at most this often per key, in its own short transaction: a door system sends all its
# requests with one key, and updating the row inside each request would make them wait for one another.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def token_hash(token: str) -> str:
    # Keys and session tokens are 256 random bits, so a plain hash is enough: there is nothing to brute-force.
    return hashlib.sha256(token.encode()).hexdigest()


def create_key(session: Session, *, name: str, role: Role, actor: ApiKey | None) -> tuple[ApiKey, str]:
    """A new key and its plain value, which is not stored and cannot be shown again."""
    raw = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(name=name, role=Role(role), key_hash=token_hash(raw), prefix=raw[:10])
    session.add(key)
    session.flush()
    audit.record(session, actor, "key.create", "api_key", key.id, name=key.name, role=key.role)
    session.refresh(key)
    return key, raw


def list_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.created_at)))


def get_key(session: Session, key_id: uuid.UUID) -> ApiKey:
    key = session.get(ApiKey, key_id)
    if key is None:
        raise NotFoundError(f"No API key {key_id}.", code="api_key_not_found", key_id=str(key_id))
    return key


def revoke_key(session: Session, key_id: uuid.UUID, *, actor: ApiKey | None) -> ApiKey:
    """Revoke the key; the last active admin key cannot be (nobody could then mint or revoke keys)."""
    key = get_key(session, key_id)
    if key.role == Role.ADMIN and key.revoked_at is None:
        # Locked: two admins revoking each other's keys at once must not both succeed.
        active_admins = session.scalars(
            select(ApiKey.id).where(ApiKey.role == Role.ADMIN, ApiKey.revoked_at.is_(None)).with_for_update()
        ).all()
        if len(active_admins) <= 1:
            raise ConflictError(
                "This is the last active admin key: create another admin key before revoking it.",
                code="last_admin_key",
            )
    key.revoked_at = key.revoked_at or datetime.now(UTC)
    audit.record(session, actor, "key.revoke", "api_key", key.id, name=key.name)
    session.flush()
    return key


def authenticate(session: Session, raw_key: str) -> ApiKey | None:
    """The active key with this value, or None. Notes its use (see LAST_USED_RESOLUTION)."""
    key = session.scalar(select(ApiKey).where(ApiKey.key_hash == token_hash(raw_key), ApiKey.revoked_at.is_(None)))
    if key is not None and (key.last_used_at is None or key.last_used_at < datetime.now(UTC) - LAST_USED_RESOLUTION):
        session.execute(update(ApiKey).where(ApiKey.id == key.id).values(last_used_at=func.now()))
    return key


def allows(key: ApiKey, role: Role) -> bool:
    """admin may do everything a service key may."""
    return key.role == Role.ADMIN or key.role == role


def ensure_admin_key(session: Session, data_dir: Path) -> str | None:
    """On a first start with no keys at all, create an admin key, write it to an owner-only file and return it."""
    if session.scalar(select(func.count()).select_from(ApiKey)):
        return None
    _, raw = create_key(session, name="initial admin", role=Role.ADMIN, actor=None)
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / ADMIN_KEY_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(raw + "\n")
    os.chmod(path, 0o600)
    return raw


def start_admin_session(session: Session, key: ApiKey, *, hours: float) -> tuple[str, AdminSession]:
    """Sign a browser in: returns the cookie token (only its hash is stored) and the session with its CSRF token."""
    token = secrets.token_urlsafe(32)
    admin_session = AdminSession(
        id=token_hash(token),
        key_id=key.id,
        csrf_token=secrets.token_urlsafe(32),
        expires_at=datetime.now(UTC) + timedelta(hours=hours),
    )
    session.add(admin_session)
    return token, admin_session


def page_session_for(session: Session, token: str | None, *, role: Role) -> tuple[AdminSession, ApiKey] | None:
    """The live session of this cookie token and its key, or None (expired, revoked, or a key not allowed `role`)."""
    admin_session = session.get(AdminSession, token_hash(token)) if token else None
    if admin_session is None or admin_session.expires_at < datetime.now(UTC):
        return None
    key = session.get(ApiKey, admin_session.key_id)
    if key is None or key.revoked_at is not None or not allows(key, role):
        return None
    return admin_session, key


def end_admin_session(session: Session, admin_session: AdminSession) -> None:
    session.execute(delete(AdminSession).where(AdminSession.id == admin_session.id))


def check_csrf(admin_session: AdminSession, token: str) -> None:
    if not secrets.compare_digest(admin_session.csrf_token.encode(), token.encode()):
        raise ForbiddenError("The form's CSRF token does not match this session.", code="csrf_failed")
