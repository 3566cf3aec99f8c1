"""Per-request observability: the request id (read from X-Request-ID or made, kept in a contextvar for the log
lines, returned in the response header), one access log line, and the HTTP metrics by route template."""

import logging
import time

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.logs import REQUEST_ID_HEADER, request_id, request_id_from
from core.metrics import HTTP_LATENCY, HTTP_REQUESTS

log = logging.getLogger("facegate.access")

# Metric labels must stay few: unknown paths and methods each share one value.
UNMATCHED_ROUTE = "unmatched"
_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


def route_template(scope: Scope) -> str:
    """The path template of the route that took the request ("/v1/members/{member_id}"), never the raw path."""
    return getattr(scope.get("route"), "path", None) or UNMATCHED_ROUTE


class RequestObservabilityMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        current_id = request_id_from(Headers(scope=scope).get(REQUEST_ID_HEADER))
        # Not reset on the way out: the 500 handler (outside every middleware) and the server's own lines after
        # the app returns belong to this request too; each request runs in a context of its own.
        request_id.set(current_id)
        method = scope["method"] if scope["method"] in _METHODS else "other"
        status = 500  # unless a response starts: an exception on its way to the 500 handler
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = current_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = route_template(scope)
            HTTP_REQUESTS.labels(method, route, str(status)).inc()
            HTTP_LATENCY.labels(method, route).observe(elapsed)
            # The route template, not the path and query, which can hold names (?external_id=...).
            log.info(
                "%s %s %d %.1f ms",
                method,
                route,
                status,
                elapsed * 1000,
                extra={"method": method, "route": route, "status": status, "duration_ms": round(elapsed * 1000, 1)},
            )
