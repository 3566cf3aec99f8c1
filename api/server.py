"""How `facegate serve` runs uvicorn: a deadline on reading each request's headers, and which proxies' forwarded
headers (X-Forwarded-Proto, X-Forwarded-For) are believed.

uvicorn closes idle keep-alive connections, but a client that opens a connection and sends its request head a
byte at a time (slowloris) holds it for as long as it likes; a few hundred such clients use up the server's file
descriptors. HeaderDeadlineProtocol closes a connection whose request head is not complete within
header_timeout_seconds of its first byte (or of the connection opening)."""

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from core.settings import Settings


class HeaderDeadlineProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with the request head on a deadline."""

    header_timeout_s: float = 10
    _header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_deadline()

    def on_message_begin(self) -> None:  # the first byte of a request: the next one on a kept-alive connection too
        super().on_message_begin()
        self._arm_header_deadline()

    def on_headers_complete(self) -> None:
        self._cancel_header_deadline()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_deadline()
        super().connection_lost(exc)

    def _arm_header_deadline(self) -> None:
        if self._header_deadline is None:
            self._header_deadline = self.loop.call_later(self.header_timeout_s, self._headers_too_slow)

    def _cancel_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        if not self.transport.is_closing():
            self.transport.close()


def server_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's options for the service (besides host, port and logging)."""
    protocol = type("HeaderDeadlineProtocol", (HeaderDeadlineProtocol,), {"header_timeout_s": settings.header_timeout_seconds})  # fmt: skip
    return {
        "http": protocol,
        "timeout_keep_alive": settings.keep_alive_seconds,
        # Behind a TLS proxy the request's scheme is the proxy's X-Forwarded-Proto, which makes the sign-in cookies
        # Secure; believed only from these addresses.
        "proxy_headers": True,
        "forwarded_allow_ips": settings.trusted_proxies,
    }
