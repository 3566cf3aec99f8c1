"""ASGI middleware around every request: input limits before the app reads a byte, hardening headers on every
response, and the last-resort 500 that keeps the connection usable."""

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.compat import shaped_error
from api.errors import error_response
from core.errors import FaceGateError, PayloadTooLargeError, UnprocessableError
from core.settings import Settings

log = logging.getLogger(__name__)

# Text bodies that are scanned whole; anything else (multipart photos) is only counted.
_TEXT_BODIES = (b"application/json", b"application/x-www-form-urlencoded")
# NUL cannot be stored in a PostgreSQL text column: refused at the door, wherever it hides.
_NUL_MARKERS = (b"\x00", b"%00", b"\\u0000")
# The one body with the photos of many members (api/routes/members.py).
BATCH_SIGNUP_PATH = "/v1/members/batch"

SECURITY_HEADERS = [
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"frame-ancestors 'none'; base-uri 'none'; form-action 'self'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


def _invalid_characters(where: str) -> FaceGateError:
    return UnprocessableError(f"The {where} contains a NUL character.", field=where)


class RequestGuard:
    """Refuses NUL characters in the query string and text bodies, and bodies over the limits (413), before the
    app parses them; adds the hardening headers; turns an unexpected exception into a JSON 500 without re-raising
    it, so the server keeps the keep-alive connection (a re-raised error makes uvicorn drop it)."""

    def __init__(self, app: ASGIApp, settings: Settings):
        self.app = app
        self.json_limit = settings.max_json_body_bytes
        self.multipart_limit = settings.max_upload_bytes * settings.max_faces_per_member + settings.max_json_body_bytes
        self.batch_limit = settings.max_upload_bytes * settings.max_batch_members + settings.max_json_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_hardened(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = list(message.get("headers", [])) + SECURITY_HEADERS
            await send(message)

        try:
            receive = await self._checked_body(scope, receive)
            await self.app(scope, receive, send_hardened)
        except FaceGateError as exc:
            if started:
                raise
            # Clients of the CompreFace and DeepStack routes read errors in their own shape.
            response = shaped_error(scope.get("path", ""), exc) or error_response(
                exc.status_code, exc.code, exc.message, exc.details
            )
            await response(scope, receive, send_hardened)
        except Exception:
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if started:
                return  # the response is under way; nothing better can be sent
            response = error_response(500, "internal_error", "An unexpected error occurred; it has been logged.")
            await response(scope, receive, send_hardened)

    async def _checked_body(self, scope: Scope, receive: Receive) -> Receive:
        query = scope.get("query_string", b"")
        if any(marker in query for marker in _NUL_MARKERS[:2]):
            raise _invalid_characters("query string")
        headers = dict(scope.get("headers", []))
        content_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if content_type in _TEXT_BODIES:
            limit = self.json_limit
        else:
            limit = self.batch_limit if scope.get("path") == BATCH_SIGNUP_PATH else self.multipart_limit
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            raise self._too_large(limit)
        if content_type in _TEXT_BODIES:
            body = await self._read(receive, limit)
            if any(marker in body for marker in _NUL_MARKERS):
                raise _invalid_characters("request body")
            return _replay(body, receive)
        return self._counted(receive, limit)

    @staticmethod
    def _too_large(limit: int) -> PayloadTooLargeError:
        return PayloadTooLargeError(f"The request body is larger than {limit} bytes.", code="body_too_large", max_bytes=limit)  # fmt: skip

    async def _read(self, receive: Receive, limit: int) -> bytes:
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise self._too_large(limit)
            chunks.append(chunk)
            more = message.get("more_body", False)
        return b"".join(chunks)

    def _counted(self, receive: Receive, limit: int) -> Receive:
        size = 0

        async def counted() -> Message:
            nonlocal size
            message = await receive()
            size += len(message.get("body", b""))
            if size > limit:
                raise self._too_large(limit)
            return message

        return counted


def _replay(body: bytes, receive: Receive) -> Callable[[], Awaitable[MutableMapping[str, Any]]]:
    """The body already read, then the client's own messages (a disconnect, when it comes)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
