"""The FastAPI application: error handlers and the routers; start-up is in api.lifespan."""

from importlib.metadata import version

from fastapi import FastAPI

from api.compat import install_shaped_errors
from api.docs import install_docs
from api.errors import install_error_handlers
from api.lifespan import lifespan
from api.middleware import RequestGuard
from api.observability import RequestObservabilityMiddleware
from api.pages import admin, desk, signin
from api.routes import (
    audit,
    blacklist,
    compreface,
    deepstack,
    detect,
    faces,
    health,
    identify_stream,
    keys,
    members,
    metrics,
    recognition,
    review,
)
from core.logs import hide_handshake_queries
from core.settings import get_settings


def create_app() -> FastAPI:
    hide_handshake_queries()  # however the app is served (facegate serve, uvicorn api.main:app)
    app = FastAPI(
        title="FaceGate",
        version=version("facegate"),  # pyproject.toml's, the one place it is written
        description="Enroll members, verify (1:1) and identify (1:N) faces, with an honest 'unknown'.",
        lifespan=lifespan,
        # Served by api.docs from local assets instead of FastAPI's CDN links.
        docs_url=None,
        redoc_url=None,
    )
    install_docs(app)
    install_error_handlers(app)
    install_shaped_errors(app)
    app.add_middleware(RequestGuard, settings=get_settings())
    signin.install_handlers(app)
    for module in (health, members, faces, recognition, detect, review, blacklist, keys, audit):
        app.include_router(module.router)
    # Clients written for CompreFace and DeepStack (docs/switching-from-compreface-deepstack.md).
    app.include_router(compreface.router)
    app.include_router(deepstack.router)
    app.include_router(admin.router)
    app.include_router(identify_stream.router)
    app.include_router(desk.router)
    app.mount("/desk/static", desk.STATIC, name="desk-static")
    if get_settings().metrics_enabled:
        app.include_router(metrics.router)
    app.add_middleware(RequestObservabilityMiddleware)
    return app


app = create_app()
