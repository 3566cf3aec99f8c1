"""Logging of the service: one JSON object per line (or plain text), each carrying the request id of the request it
belongs to, with repeated identical messages rate-limited.

Log lines say what happened to which record id; they never hold image bytes, embeddings, request bodies, names or
API keys (tests/api/test_observability.py drives a signup and an identify and checks)."""

import json
import logging
import re
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from contextvars import ContextVar
from datetime import UTC, datetime
from types import TracebackType
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import ValidationError
from sqlalchemy.exc import StatementError

REQUEST_ID_HEADER = "X-Request-ID"
# A caller's id is kept when it is short and plain (UUIDs, trace ids); anything else could forge or bloat log lines.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)

# LogRecord's own attributes; anything else on a record came from `extra=` and is written as a field (except
# color_message: uvicorn's copy of the message with terminal colours).
_SKIPPED_ATTRIBUTES = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "color_message",
}


def request_id_from(header: str | None) -> str:
    """The caller's X-Request-ID when it is sane, else a new one."""
    if header and _SANE_REQUEST_ID.fullmatch(header):
        return header
    return uuid.uuid4().hex


_URL_SAFE_RUN = re.compile(r"[A-Za-z0-9._~%-]{16,}")


def _token_like(segment: str) -> bool:
    """A path segment that reads as a token or an id rather than a word: 16 or more URL-safe characters with a digit
    or both cases (Slack's and Discord's webhook URLs carry their secret so)."""
    return bool(_URL_SAFE_RUN.fullmatch(segment)) and (
        any(c.isdigit() for c in segment) or (segment.lower() != segment and segment.upper() != segment)
    )


def redact_url(url: str) -> str:
    """A URL as logs and listings show it: credentials (user:password@), the values of its query parameters
    (?token=...) and token-like path segments (/hooks/T0A1B2/Xq9fG2hLk8mN3pR5) replaced by ***, so a secret an
    integrator put in a webhook URL is not shown again."""
    parts = urlsplit(url)
    netloc = parts.netloc if "@" not in parts.netloc else "***@" + parts.netloc.rsplit("@", 1)[1]
    path = "/".join("***" if _token_like(segment) else segment for segment in parts.path.split("/"))
    query = "&".join(
        f"{name}=***" if sep else name for name, sep, _ in (p.partition("=") for p in parts.query.split("&"))
    )
    return urlunsplit((parts.scheme, netloc, path, query if parts.query else "", ""))


def safe_message(exc: BaseException) -> str:
    """An exception's message without the data some carry: PostgreSQL errors quote the failed statement with its
    values (names, embeddings), validation errors the rejected input."""
    if isinstance(exc, StatementError):
        return f"[SQL: {exc.statement}]"  # the statement's text has placeholders; the driver's error follows
    if sqlstate := getattr(exc, "pgcode", None):
        diag = getattr(exc, "diag", None)
        where = [
            f"{name}={getattr(diag, name)}" for name in ("table_name", "constraint_name") if getattr(diag, name, None)
        ]
        return " ".join([f"SQLSTATE {sqlstate}", *where])
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['type']}" for e in exc.errors(include_input=False))
    return str(exc)


def format_exception_safely(
    exc_info: tuple[type[BaseException], BaseException, TracebackType | None] | tuple[None, None, None],
) -> str:
    """The traceback of an exception and of those it came from (newest first), each with its safe_message."""
    exc, seen, parts = exc_info[1], set(), []
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        frames = "".join(traceback.format_tb(exc.__traceback__))
        parts.append(f"Traceback:\n{frames}{type(exc).__module__}.{type(exc).__qualname__}: {safe_message(exc)}")
        exc = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    return "\nwhich came from:\n".join(parts)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, then the record's extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": request_id.get(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _SKIPPED_ATTRIBUTES and k not in entry})
        if record.exc_info:
            entry["exception"] = format_exception_safely(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """Plain lines for people at a terminal, with the request id when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{self.formatTime(record)} {record.levelname} {record.name} [{request_id.get() or '-'}]: "
        line += record.getMessage()
        if record.exc_info:
            line += "\n" + format_exception_safely(record.exc_info)
        return line


class HandshakeQueryFilter(logging.Filter):
    """uvicorn logs every WebSocket handshake ('"WebSocket %s" [accepted]', on uvicorn.error, which access_log=False
    does not silence) with the raw path and query string, where a client may have put its API key or a name:
    the line keeps the path and drops the query."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and '"WebSocket %s"' in record.msg and isinstance(record.args, tuple):
            record.args = tuple(str(a).split("?", 1)[0] if i == 1 else a for i, a in enumerate(record.args))
        return True


def hide_handshake_queries() -> None:
    server_log = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, HandshakeQueryFilter) for f in server_log.filters):
        server_log.addFilter(HandshakeQueryFilter())


class RepeatFilter(logging.Filter):
    """Lets the first `limit` warnings or errors of a kind through per `interval` seconds; the rest are dropped and
    counted, and the next record of that kind after the interval comes with one "suppressed K similar" line first.

    A kind is the logger, level, message template and exception type: a database outage makes every request
    fail the same way, and one traceback per request floods the log. Info lines (one per request) pass."""

    MAX_KINDS = 10_000

    def __init__(self, limit: int, interval: float, clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self.limit, self.interval, self.clock = limit, interval, clock
        self._lock = threading.Lock()
        # kind -> (start of its current interval, records seen in it)
        self._seen: dict[tuple, tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or record.name == __name__:  # __name__: our own "suppressed" lines
            return True
        kind = (record.name, record.levelno, str(record.msg), record.exc_info[0] if record.exc_info else None)
        now = self.clock()
        with self._lock:
            if len(self._seen) > self.MAX_KINDS:  # messages formatted before logging make a kind each
                self._seen = {k: v for k, v in self._seen.items() if now - v[0] < self.interval}
            start, count = self._seen.get(kind, (now, 0))
            if now - start >= self.interval:
                suppressed = count - self.limit
                start, count = now, 0
            else:
                suppressed = 0
            self._seen[kind] = (start, count + 1)
        if suppressed > 0:
            logging.getLogger(__name__).log(
                record.levelno,
                "suppressed %d similar messages in %.0f s: %s",
                suppressed,
                self.interval,
                record.msg,
                extra={"suppressed": suppressed, "logger_of_suppressed": record.name},
            )
        return count < self.limit


def configure_logging(
    log_format: Literal["json", "text"], level: str, *, repeat_limit: int, repeat_interval: float
) -> None:
    """Send every logger's records to stderr through one handler, in the chosen format (uvicorn's too, when it is
    started with log_config=None: its loggers then have no handlers of their own)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(RepeatFilter(repeat_limit, repeat_interval))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
