"""Start-up and shutdown of the service, and its periodic jobs."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from core.settings import get_settings
from db.migrate import upgrade_to_head
from db.session import close_database, session_scope
from services.faces.pipeline import FacePipeline
from services.identity import auth
from services.identity.calibration import GalleryCalibration
from services.identity.retention import purge_expired_crops
from services.identity.streams import AttemptThrottle

log = logging.getLogger(__name__)

PURGE_INTERVAL_S = 3600


def start_services() -> FacePipeline:
    """Bring the database schema up to date, make sure an admin can get in, and load the models.

    Each step fails loudly with the reason."""
    settings = get_settings()
    upgrade_to_head()
    with session_scope() as session:
        admin_key = auth.ensure_admin_key(session, settings.data_dir)
    if admin_key:
        # Shown this once (and kept in an owner-only file): only its hash is stored.
        print(
            f"\nFaceGate created an admin API key (also in {settings.data_dir / auth.ADMIN_KEY_FILE}):\n"
            f"    {admin_key}\n",
            flush=True,
        )
    pipeline = FacePipeline(settings)
    if settings.preload_models:
        pipeline.load()
    return pipeline


def purge_crops() -> None:
    with session_scope() as session:
        purged = purge_expired_crops(session, get_settings().crop_retention_days)
    if purged:
        log.info("erased %d probe crops older than the retention period", purged)


async def purge_crops_periodically() -> None:
    while True:
        try:
            await run_in_threadpool(purge_crops)
        except Exception:  # a failed purge is retried next time; it must not stop the service
            log.exception("crop purge failed")
        await asyncio.sleep(PURGE_INTERVAL_S)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    app.state.pipeline = await run_in_threadpool(start_services)
    app.state.gallery = GalleryCalibration(get_settings())
    app.state.stream_throttle = AttemptThrottle(get_settings().stream_record_seconds)
    purger = asyncio.create_task(purge_crops_periodically())
    yield
    purger.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await purger
    await run_in_threadpool(close_database, get_settings())
