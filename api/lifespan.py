"""Start-up and shutdown of the service, and its periodic jobs (crop purge, webhook deliveries, memory trim)."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from functools import partial

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from api.pages.signin import SignInThrottle
from core.memory import fix_mmap_threshold, limit_arenas, release_free_memory
from core.settings import get_settings
from db.migrate import upgrade_to_head
from db.session import close_database, ensure_embedded_running, session_scope
from services.faces.pipeline import FacePipeline
from services.identity import auth, webhooks
from services.identity.calibration import GalleryCalibration
from services.identity.retention import purge_expired_crops

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


async def every(seconds: float, job: Callable[[], object], what: str) -> None:
    while True:
        try:
            await run_in_threadpool(job)
        except Exception:  # a failed run is retried next time; it must not stop the service
            log.exception("%s failed", what)
        await asyncio.sleep(seconds)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = get_settings()
    limit_arenas(settings.malloc_arenas)  # before the thread pool's threads exist
    fix_mmap_threshold(settings.malloc_mmap_threshold_bytes)
    app.state.pipeline = await run_in_threadpool(start_services)
    app.state.gallery = GalleryCalibration(settings)
    app.state.signin_throttle = SignInThrottle(settings.signin_failures_limit, settings.signin_failures_window_seconds)
    webhook_sender = webhooks.WebhookSender(settings)
    try:
        jobs = [
            asyncio.create_task(every(PURGE_INTERVAL_S, purge_crops, "crop purge")),
            asyncio.create_task(
                every(
                    settings.webhook_poll_seconds,
                    lambda: webhook_sender.dispatch(datetime.now(UTC)),
                    "webhook delivery",
                )  # fmt: skip
            ),
            asyncio.create_task(every(settings.memory_trim_seconds, release_free_memory, "memory trim")),
        ]
        if not settings.database_url:
            # The embedded PostgreSQL is this service's to keep alive: restarted when it stops. (With DATABASE_URL
            # the database is someone else's; requests answer 503 until it is back.)
            supervise = partial(ensure_embedded_running, settings.data_dir)
            jobs.append(asyncio.create_task(every(settings.embedded_check_seconds, supervise, "embedded PostgreSQL check")))  # fmt: skip
        yield
        for job in jobs:
            job.cancel()
        for job in jobs:
            with contextlib.suppress(asyncio.CancelledError):
                await job
    finally:
        webhook_sender.close()
    await run_in_threadpool(close_database, settings)
