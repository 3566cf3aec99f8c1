"""Test set-up: a real embedded PostgreSQL (pgvector) in a temporary folder, the real models and LFW images."""

import io
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("FACEGATE_SHARED_DIR", REPO.parent / "shared"))
LFW_IMAGES = SHARED / "data" / "lfw" / "images"

# Settings are read once per process: point them at a private database before anything imports them.
_DATA_DIR = Path(tempfile.mkdtemp(prefix="facegate-test-"))
os.environ["FACEGATE_DATA_DIR"] = str(_DATA_DIR)
os.environ.setdefault("FACEGATE_WEIGHTS_DIR", str(SHARED / "models"))
os.environ.pop("DATABASE_URL", None)
os.environ.pop("FACEGATE_DATABASE_URL", None)


def pytest_sessionfinish(session, exitstatus):
    # The app's shutdown (end of the `anonymous` fixture) has stopped the embedded server by now.
    shutil.rmtree(_DATA_DIR, ignore_errors=True)


@pytest.fixture(scope="session")
def anonymous():
    """A client with no API key; its start-up runs migrations, creates the first admin key and loads models."""
    from fastapi.testclient import TestClient

    from api.main import app

    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def admin_key(anonymous) -> str:
    from services.auth import ADMIN_KEY_FILE

    return (_DATA_DIR / ADMIN_KEY_FILE).read_text().strip()


def client_with_key(app, key: str):
    from fastapi.testclient import TestClient

    return TestClient(app, headers={"Authorization": f"Bearer {key}"})


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
        session.execute(text("TRUNCATE members, faces, attempts, false_match_blacklist, audit_log, admin_sessions "
                             "CASCADE"))
    yield


def lfw_photo(person: str, number: int) -> bytes:
    return (LFW_IMAGES / person / f"{person}_{number:04d}.jpg").read_bytes()


def jpeg(pixels: np.ndarray, **save_args) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="JPEG", quality=92, **save_args)
    return out.getvalue()


def lfw_pixels(person: str, number: int) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(lfw_photo(person, number))).convert("RGB"))


def upload(data: bytes, name: str = "photo.jpg", content_type: str = "image/jpeg") -> dict:
    return {"file": (name, data, content_type)}


@pytest.fixture(scope="session")
def pipeline(anonymous):
    """The service's own loaded pipeline (models load once per test session)."""
    return anonymous.app.state.pipeline
