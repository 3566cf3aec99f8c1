"""Request ids, /metrics and what the logs hold, through the API."""

import json
import logging
import re
import uuid

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from api.main import create_app
from core.logs import JsonFormatter
from core.settings import get_settings
from tests.support import lfw_photo, upload

# Eight or more numbers with decimals in a row: what a logged embedding (or a slice of one) looks like.
FLOAT_RUN = re.compile(r"(?:-?\d+\.\d{3,}(?:e-?\d+)?[\s,;\[\]()]+){8,}")


def metrics(client: TestClient) -> dict[tuple[str, frozenset], float]:
    response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def log_lines():
    """Every log record of the service while the test runs, as it writes them (JSON lines, DEBUG and up)."""
    lines: list[str] = []
    formatter = JsonFormatter()
    handler = logging.Handler(logging.DEBUG)
    # httpx: the test's own client, which logs the URLs it requests.
    handler.addFilter(lambda record: not record.name.startswith("httpx"))
    handler.emit = lambda record: lines.append(formatter.format(record))  # type: ignore[method-assign]
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield lines
    root.removeHandler(handler)
    root.setLevel(level)


def test_the_request_id_comes_back_on_successes_and_errors(anonymous, admin, log_lines):
    assert anonymous.get("/health/live", headers={"X-Request-ID": "door-7f3a"}).headers["X-Request-ID"] == "door-7f3a"
    missing = admin.get(f"/v1/members/{uuid.uuid4()}", headers={"X-Request-ID": "two words"})
    assert missing.status_code == 404 and re.fullmatch("[0-9a-f]{32}", missing.headers["X-Request-ID"])
    unauthorized = anonymous.get("/v1/members")
    assert unauthorized.status_code == 401
    assert unauthorized.headers["X-Request-ID"] not in ("", missing.headers["X-Request-ID"])

    access = [json.loads(line) for line in log_lines if '"logger": "facegate.access"' in line]
    assert [(e["request_id"], e["route"], e["status"]) for e in access] == [
        ("door-7f3a", "/health/live", 200),
        (missing.headers["X-Request-ID"], "/v1/members/{member_id}", 404),
        (unauthorized.headers["X-Request-ID"], "/v1/members", 401),
    ]


def test_an_unexpected_error_is_logged_and_answered_with_the_request_id(log_lines):
    app = create_app()

    @app.get("/fails")
    def fails() -> None:
        raise RuntimeError("a bug")

    response = TestClient(app, raise_server_exceptions=False).get("/fails", headers={"X-Request-ID": "bug-1"})
    assert response.status_code == 500 and response.json()["error"]["code"] == "internal_error"
    assert response.headers["X-Request-ID"] == "bug-1"
    errors = [json.loads(line) for line in log_lines if '"level": "ERROR"' in line]
    assert errors and all(e["request_id"] == "bug-1" for e in errors)
    assert "RuntimeError: a bug" in errors[0]["exception"]


def test_metrics_count_requests_by_route_template_not_path(anonymous, admin):
    member_id = uuid.uuid4()
    before = metrics(anonymous)
    admin.get(f"/v1/members/{member_id}")
    anonymous.get(f"/no/such/{member_id}")
    text = anonymous.get("/metrics").text
    after = metrics(anonymous)
    assert str(member_id) not in text

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("facegate_http_requests_total", method="GET", route="/v1/members/{member_id}", status="404") == 1
    assert grew("facegate_http_requests_total", method="GET", route="unmatched", status="404") == 1
    assert grew("facegate_http_request_duration_seconds_count", method="GET", route="/v1/members/{member_id}") == 1
    # Between requests no connection stays checked out of the pool.
    assert value(after, "facegate_db_pool_checked_out") == 0 and value(after, "facegate_db_pool_limit") == 20


def test_metrics_can_be_turned_off(monkeypatch):
    monkeypatch.setenv("FACEGATE_METRICS_ENABLED", "false")
    get_settings.cache_clear()
    try:
        app = create_app()
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    assert TestClient(app).get("/metrics").status_code == 404


def signup_and_identify(client: TestClient, external_id: str, display_name: str) -> None:
    signup = client.post(
        "/v1/members",
        data={"external_id": external_id, "display_name": display_name},
        files=[("file", ("a.jpg", lfw_photo("Andre_Agassi", n), "image/jpeg")) for n in (2, 3)],
    )
    assert signup.status_code == 201, signup.text
    identified = client.post("/v1/identify", files=upload(lfw_photo("Andre_Agassi", 4))).json()
    assert [face["decision"] for face in identified["faces"]] == ["match"]


@pytest.mark.models
def test_metrics_time_every_stage_and_count_decisions(client):
    before = metrics(client)
    signup_and_identify(client, "agassi", "Andre Agassi")
    after = metrics(client)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    # Two signup photos and one probe, one face each: each photo is decoded and detected on its own; the
    # signup's two go through the embedding stage's networks in one pass, the probe in another.
    for stage, timed in (("decode", 3), ("detect", 3), ("align", 2), ("embed", 2), ("expression", 2)):
        assert grew("facegate_model_stage_seconds_count", stage=stage) == timed, stage
        assert grew("facegate_model_stage_seconds_sum", stage=stage) > 0, stage
    assert grew("facegate_decisions_total", kind="identify", decision="match") == 1
    assert value(after, "facegate_gallery_members") == 1
    assert value(after, "facegate_inference_queue_depth") == 0


@pytest.mark.models
def test_logs_hold_no_names_keys_or_embeddings(client, service_key, log_lines):
    external_id, display_name = "agassi-7f3a", "Andre Agassi"
    signup_and_identify(client, external_id, display_name)
    assert client.get("/v1/members", params={"external_id": external_id}).status_code == 200
    again = client.post("/v1/members", json={"external_id": external_id, "display_name": display_name})
    assert again.status_code == 409

    written = "\n".join(log_lines)
    assert len(log_lines) >= 4 and all(json.loads(line)["request_id"] for line in log_lines if "access" in line)
    for secret in (external_id, display_name, "Agassi", service_key, service_key[:12]):
        assert secret not in written, secret
    assert not FLOAT_RUN.search(written)


def test_websocket_handshake_lines_do_not_log_the_query(anonymous, caplog):
    """uvicorn's own handshake line ('"WebSocket <path>" 403') would carry a key a client put in the query."""
    import socket
    import threading
    import time

    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # As `facegate serve` runs it: log_config=None, uvicorn's lines at info.
    server = uvicorn.Server(
        uvicorn.Config(anonymous.app, host="127.0.0.1", port=port, lifespan="off", log_config=None, log_level="info")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    with caplog.at_level(logging.INFO):
        thread.start()
        while not server.started:
            time.sleep(0.05)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as ws:
                ws.sendall(
                    b"GET /v1/identify/stream?api_key=fg_leaked-key-value&camera=door HTTP/1.1\r\n"
                    b"Host: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
                )
                assert ws.recv(4096).startswith(b"HTTP/1.1 401")
        finally:
            server.should_exit = True
            thread.join(15)
    assert '"WebSocket /v1/identify/stream" 401' in caplog.text
    assert "leaked-key-value" not in caplog.text and "camera=door" not in caplog.text
