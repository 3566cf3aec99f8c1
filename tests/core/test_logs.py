import json
import logging

import pytest
from pydantic import BaseModel, ValidationError
from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError

from core.logs import JsonFormatter, RepeatFilter, TextFormatter, redact_url, request_id, request_id_from
from db.session import session_scope


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def limited():
    """A logger whose handler keeps what passes a RepeatFilter of 3 per 60 s, on a clock the test moves."""
    clock = Clock()
    handler = logging.Handler()
    passed: list[logging.LogRecord] = []
    handler.emit = passed.append  # type: ignore[method-assign]
    handler.addFilter(RepeatFilter(3, 60, clock=clock))
    # The filter's "suppressed" lines go through the root logger's handlers, as in the service.
    root = logging.getLogger()
    root.addHandler(handler)
    logger = logging.getLogger("tests.repeats")
    logger.setLevel(logging.INFO)
    yield logger, clock, passed
    root.removeHandler(handler)


def test_repeated_errors_pass_up_to_the_limit_then_one_line_counts_the_rest(limited):
    logger, clock, passed = limited
    for attempt in range(20):
        logger.error("database unreachable on %s", f"/v1/members/{attempt}")
    assert [r.getMessage() for r in passed] == [f"database unreachable on /v1/members/{n}" for n in range(3)]

    clock.now += 61
    logger.error("database unreachable on %s", "/v1/identify")
    assert [r.getMessage() for r in passed[3:]] == [
        "suppressed 17 similar messages in 60 s: database unreachable on %s",
        "database unreachable on /v1/identify",
    ]
    assert passed[3].suppressed == 17 and passed[3].levelno == logging.ERROR


def test_other_messages_and_info_lines_are_not_limited(limited):
    logger, clock, passed = limited
    for _ in range(5):
        logger.error("database unreachable")
        logger.warning("database unreachable")  # another level: another kind
        logger.error("crop purge failed")
        logger.info("GET /v1/identify 200")
    counts = {(r.levelname, r.getMessage()): 0 for r in passed}
    for r in passed:
        counts[(r.levelname, r.getMessage())] += 1
    assert counts == {
        ("ERROR", "database unreachable"): 3,
        ("WARNING", "database unreachable"): 3,
        ("ERROR", "crop purge failed"): 3,
        ("INFO", "GET /v1/identify 200"): 5,
    }
    clock.now += 61
    logger.error("crop purge failed")
    assert [r.getMessage() for r in passed[-2:]] == [
        "suppressed 2 similar messages in 60 s: crop purge failed",
        "crop purge failed",
    ]
    # Nothing suppressed in the last interval: no "suppressed" line.
    clock.now += 61
    before = len(passed)
    logger.error("crop purge failed")
    assert [r.getMessage() for r in passed[before:]] == ["crop purge failed"]


def test_json_lines_carry_the_request_id_and_extra_fields():
    record = logging.LogRecord("facegate.access", logging.INFO, __file__, 1, "GET %s %d", ("/v1/identify", 200), None)
    record.status = 200
    token = request_id.set("req-1")
    try:
        line = JsonFormatter().format(record)
    finally:
        request_id.reset(token)
    entry = json.loads(line)
    assert entry["level"] == "INFO" and entry["logger"] == "facegate.access"
    assert entry["message"] == "GET /v1/identify 200" and entry["request_id"] == "req-1" and entry["status"] == 200
    assert entry["time"].endswith("+00:00") and "\n" not in line


def test_a_callers_request_id_is_kept_only_when_sane():
    assert request_id_from("3f2b9c1e-0c4d-4a8e-9f0a-1d2e3f4a5b6c") == "3f2b9c1e-0c4d-4a8e-9f0a-1d2e3f4a5b6c"
    for hostile in ("two words", "x" * 65, "id\nforged line", "", None, "ï"):
        made = request_id_from(hostile)
        assert made != hostile and len(made) == 32 and int(made, 16) >= 0
    assert request_id_from(None) != request_id_from(None)


def logged_error(exc_info) -> logging.LogRecord:
    return logging.LogRecord("api.errors", logging.ERROR, __file__, 1, "unhandled error", None, exc_info)


def test_logged_database_errors_hold_neither_names_nor_embeddings(anonymous):
    """PostgreSQL quotes a failed statement with its values (psycopg2 fills them in before sending it)."""
    embedding = str([0.123456] * 128)
    with pytest.raises(ProgrammingError) as failed, session_scope() as session:
        session.execute(
            text("INSERT INTO no_such_table VALUES (:name, :embedding)"),
            {"name": "Andre Agassi", "embedding": embedding},
        )
    record = logged_error((failed.type, failed.value, failed.tb))
    for written in (json.loads(JsonFormatter().format(record))["exception"], TextFormatter().format(record)):
        assert "Andre Agassi" not in written and "0.123456" not in written
        # What happened is still there: the statement with its placeholders, the SQLSTATE, the stack.
        assert "[SQL: INSERT INTO no_such_table VALUES (%(name)s, %(embedding)s)]" in written
        assert "psycopg2.errors.UndefinedTable: SQLSTATE 42P01" in written and "test_logs.py" in written


def test_logged_validation_errors_hold_no_input():
    class Member(BaseModel):
        external_id: int

    name = "Andre Agassi"  # a variable: the traceback quotes the source line
    with pytest.raises(ValidationError) as failed:
        Member(external_id=name)
    written = json.loads(JsonFormatter().format(logged_error((failed.type, failed.value, failed.tb))))
    assert "Andre Agassi" not in written["exception"] and "external_id: int_parsing" in written["exception"]


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        # Slack and Discord put the secret in the path; ids and tokens go, words stay.
        (
            "https://hooks.slack.com/services/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",
            "https://hooks.slack.com/services/T0AB12CD3/B0XY98ZW7/***",
        ),
        (
            "https://discord.com/api/webhooks/1234567890123456789/AbCdEfGhIjKlMnOpQrStUvWxYz_0123456789-abcdef",
            "https://discord.com/api/webhooks/***/***",
        ),
        (
            "https://crm.example.com/facegate/notifications-webhook-endpoint",
            "https://crm.example.com/facegate/notifications-webhook-endpoint",
        ),
        ("https://u:p@crm.example.com/hook?token=abc&debug", "https://***@crm.example.com/hook?token=***&debug"),
    ],
)
def test_redacted_urls_keep_where_and_drop_secrets(url, shown):
    assert redact_url(url) == shown
