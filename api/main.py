"""The FastAPI application: migrations and model loading at start-up, then the v1 routers."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from api.errors import install_error_handlers
from api.routes import admin_pages, detect, health, members, recognition, review
from db.migrate import upgrade_to_head
from db.session import close_database, session_scope
from services import auth
from services.pipeline import FacePipeline
from services.review import purge_expired_crops
from services.settings import get_settings

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
        print(f"\nFaceGate created an admin API key (also in {settings.data_dir / auth.ADMIN_KEY_FILE}):\n"
              f"    {admin_key}\n", flush=True)
    pipeline = FacePipeline(settings)
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
    purger = asyncio.create_task(purge_crops_periodically())
    yield
    purger.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await purger
    await run_in_threadpool(close_database, get_settings())


def create_app() -> FastAPI:
    app = FastAPI(
        title="FaceGate",
        version="0.1.0",
        description="Enroll members, verify (1:1) and identify (1:N) faces, with an honest 'unknown'.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    admin_pages.install_handlers(app)
    for module in (health, members, recognition, detect, review, admin_pages):
        app.include_router(module.router)
    return app


app = create_app()
