"""The FastAPI application: migrations and model loading at start-up, then the v1 routers."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from api.errors import install_error_handlers
from api.routes import detect, health, members, recognition
from db.migrate import upgrade_to_head
from services.pipeline import FacePipeline
from services.settings import get_settings

log = logging.getLogger(__name__)


def start_services() -> FacePipeline:
    """Bring the database schema up to date and load the models; both fail loudly with the reason."""
    settings = get_settings()
    upgrade_to_head()
    pipeline = FacePipeline(settings)
    pipeline.load()
    return pipeline


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    app.state.pipeline = await run_in_threadpool(start_services)
    yield


def create_app() -> FastAPI:
    app = FastAPI(
        title="FaceGate",
        version="0.1.0",
        description="Enroll members, verify (1:1) and identify (1:N) faces, with an honest 'unknown'.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    for module in (health, members, recognition, detect):
        app.include_router(module.router)
    return app


app = create_app()
