"""Test set-up: a real embedded PostgreSQL (pgvector) in a temporary folder, the real models and LFW images.

Tests marked `models` run the face models (weights from FACEGATE_WEIGHTS_DIR); `browser` ones drive Chromium.
The others are the fast tier (`make test-fast`): the app starts without loading the models, which load on
first use."""

import contextlib
import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from tests.support import SHARED, client_with_key

# Settings are read once per process: point them at a private database before anything imports them.
DATA_DIR = Path(tempfile.mkdtemp(prefix="facegate-test-"))
os.environ["FACEGATE_DATA_DIR"] = str(DATA_DIR)
# Absolute: the Makefile passes a relative ../shared/models, and some tests start the service in other folders.
os.environ["FACEGATE_WEIGHTS_DIR"] = str(Path(os.environ.get("FACEGATE_WEIGHTS_DIR", SHARED / "models")).resolve())
os.environ["FACEGATE_PRELOAD_MODELS"] = "false"
os.environ["FACEGATE_EMBEDDED_CHECK_SECONDS"] = "3"  # tests/api/test_outage.py waits for the restart
# The webhook tests send the due deliveries themselves, at chosen times: the app's periodic job must not race them.
os.environ["FACEGATE_WEBHOOK_POLL_SECONDS"] = "3600"
# Every test client signs in from one address ("testclient"): tests/api/test_auth.py checks the throttle with its own.
os.environ["FACEGATE_SIGNIN_FAILURES_LIMIT"] = "1000"
os.environ.pop("DATABASE_URL", None)
os.environ.pop("FACEGATE_DATABASE_URL", None)


def pytest_sessionfinish(session, exitstatus):
    # The app's shutdown (end of the `anonymous` fixture) has stopped the embedded server by now.
    shutil.rmtree(DATA_DIR, ignore_errors=True)


@pytest.fixture(scope="session")
def anonymous():
    """A client with no API key; its start-up runs migrations and creates the first admin key."""
    from fastapi.testclient import TestClient

    from api.main import app

    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def admin_key(anonymous) -> str:
    from services.identity.auth import ADMIN_KEY_FILE

    return (DATA_DIR / ADMIN_KEY_FILE).read_text().strip()


@pytest.fixture(scope="session")
def admin(anonymous, admin_key):
    return client_with_key(anonymous.app, admin_key)


@pytest.fixture(scope="session")
def service_key(admin) -> str:
    response = admin.post("/v1/keys", json={"name": "tests", "role": "service"})
    assert response.status_code == 201, response.text
    return response.json()["key"]


@pytest.fixture(scope="session")
def client(anonymous, service_key):
    """The API as a service (enroll, identify, verify, detect) calls it."""
    return client_with_key(anonymous.app, service_key)


@pytest.fixture(autouse=True)
def empty_database(request):
    """Every test that uses the API starts from empty tables (API keys stay)."""
    if not {"anonymous", "client", "admin"} & set(request.fixturenames):
        yield
        return
    request.getfixturevalue("anonymous")
    from sqlalchemy import text

    from db.session import session_scope

    with session_scope() as session:
        session.execute(
            text(
                "TRUNCATE members, faces, attempts, false_match_blacklist, audit_log, admin_sessions,"
                " webhook_deliveries CASCADE"
            )
        )
    yield


@pytest.fixture(scope="session")
def pipeline(anonymous):
    """The service's own pipeline, with its models loaded (once per test session)."""
    anonymous.app.state.pipeline.load()
    return anonymous.app.state.pipeline


CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium's own connections are refused on the closed network.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextlib.contextmanager
def serve_app(app, **ssl: Any) -> Iterator[int]:
    """The application over real HTTP (or HTTPS, given uvicorn's ssl_certfile and ssl_keyfile) on a free port of
    127.0.0.1, in a thread; yields the port. Its models and database are already set up."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning", **ssl)
    )
    thread = threading.Thread(target=server.run, name="uvicorn-browser-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive(), "uvicorn stopped during start-up"
        assert time.monotonic() < deadline, "uvicorn did not start in 30 s"
        time.sleep(0.05)
    yield port
    server.should_exit = True
    thread.join(15)
    assert not thread.is_alive(), "uvicorn did not stop"


@pytest.fixture
def live_server(anonymous):
    """The same application over real HTTP for the browser."""
    with serve_app(anonymous.app) as port:
        yield f"http://127.0.0.1:{port}"


def only_the_service(page, live_server: str) -> list[str]:
    """Let the page reach only the live server, as on a machine without internet: any other request is refused
    and listed in the returned list, which the test checks is empty (a CDN link, a web font)."""
    offsite: list[str] = []

    def route(request_route):
        if request_route.request.url.startswith(live_server):
            request_route.continue_()
        else:
            offsite.append(request_route.request.url)
            request_route.abort()

    page.route("**/*", route)
    return offsite


@pytest.fixture
def page(live_server):
    """A Chromium page that can reach only the live server (only_the_service)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            new_page = browser.new_page(viewport={"width": 1200, "height": 1000})
            offsite = only_the_service(new_page, live_server)
            yield new_page
        finally:
            browser.close()
    assert not offsite, f"the page asked for something outside the service: {offsite}"


@pytest.fixture
def strict(monkeypatch):
    """Settings under which a genuine photo falls in the review band: almost nothing is a confident match."""
    from core.settings import get_settings

    monkeypatch.setattr(get_settings(), "identify_fpir", 1e-12)
    monkeypatch.setattr(get_settings(), "review_fpir", 0.45)
    monkeypatch.setattr(get_settings(), "verify_far", 1e-12)
    monkeypatch.setattr(get_settings(), "verify_review_far", 0.45)
