"""Crop retention: probe crops of recorded attempts are erased after a while; their embeddings stay (the
blacklist needs them)."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from db.models import Attempt


def purge_expired_crops(session: Session, retention_days: float) -> int:
    """Erase attempts' probe crops older than the retention period; returns how many."""
    cutoff = datetime.now(UTC) - timedelta(days=retention_days)
    result = session.execute(
        update(Attempt)
        .where(Attempt.created_at < cutoff, Attempt.probe_crop_jpeg.is_not(None))
        .values(probe_crop_jpeg=None)
    )
    assert isinstance(result, CursorResult)
    return result.rowcount
