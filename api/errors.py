"""Every error leaves as JSON {"error": {"code", "message", "details"}} with a 4xx status where the caller erred,
503 with Retry-After while the database is unreachable, and 500 only for a bug (api.middleware.RequestGuard)."""

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.errors import FaceGateError
from core.settings import get_settings

log = logging.getLogger(__name__)

_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "file_too_large", 415: "unsupported_media_type"}


def _json_safe(value: Any) -> Any:
    """Details echo what the caller sent; NaN and Infinity are not JSON, so they go back as text."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def error_response(
    status_code: int, code: str, message: str, details: dict | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "details": _json_safe(details or {})}}
    return JSONResponse(status_code=status_code, content=body, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(FaceGateError)
    async def facegate_error(_: Request, exc: FaceGateError) -> JSONResponse:
        return error_response(exc.status_code, exc.code, exc.message, exc.details)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        # loc starts with where the value came from (body, query...) when FastAPI validated it.
        errors = [{"field": _field(e["loc"]), "problem": e["msg"]} for e in exc.errors()]
        missing = any(e["type"] == "missing" for e in exc.errors())
        return error_response(
            422,
            "missing_field" if missing else "validation_error",
            "; ".join(f"{e['field']}: {e['problem']}" for e in errors),
            {"errors": errors},
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(exc.status_code, _HTTP_CODES.get(exc.status_code, "http_error"), str(exc.detail))

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    async def database_unavailable(request: Request, exc: Exception) -> JSONResponse:
        # One line, no traceback: an outage fails every request the same way.
        log.warning("database unavailable on %s %s: %s", request.method, request.url.path, type(exc).__name__)
        retry_after = get_settings().database_retry_after_seconds
        return error_response(
            503,
            "database_unavailable",
            "The database is not reachable right now; retry shortly.",
            {"retry_after_seconds": retry_after},
            headers={"Retry-After": str(retry_after)},
        )


def _field(loc: tuple) -> str:
    """Where the bad value was: 'body.metadata' -> 'metadata'; an unparseable body as a whole -> 'body'."""
    return ".".join(str(p) for p in loc[1:]) or (str(loc[0]) if loc else "body")
