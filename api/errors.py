"""Every error leaves as JSON {"error": {"code", "message", "details"}} with a 4xx status where the caller erred."""

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.errors import FaceGateError
from core.logs import REQUEST_ID_HEADER, request_id

log = logging.getLogger(__name__)

_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "file_too_large", 415: "unsupported_media_type"}


def error_response(status_code: int, code: str, message: str, details: dict | None = None) -> JSONResponse:
    return JSONResponse(
        status_code=status_code, content={"error": {"code": code, "message": message, "details": details or {}}}
    )


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(FaceGateError)
    async def facegate_error(_: Request, exc: FaceGateError) -> JSONResponse:
        return error_response(exc.status_code, exc.code, exc.message, exc.details)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        # loc starts with where the value came from (body, query...) when FastAPI validated it.
        errors = [
            {"field": ".".join(str(p) for p in e["loc"][1:]) or str(e["loc"][0]), "problem": e["msg"]}
            for e in exc.errors()
        ]
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

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, _: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        response = error_response(500, "internal_error", "An unexpected error occurred; it has been logged.")
        # This handler answers outside every middleware, so it adds the request id itself.
        response.headers[REQUEST_ID_HEADER] = request_id.get() or ""
        return response
