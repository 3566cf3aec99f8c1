"""Bad input gets a 4xx with a machine-readable code, and leaves nothing behind."""

import io
import uuid

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import func, select

from core.settings import get_settings
from db.models import Attempt, Face, Member
from db.session import session_scope
from tests.support import lfw_photo, upload


def error_code(response, status):
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body["error"]) == {"code", "message", "details"} and body["error"]["message"]
    return body["error"]["code"]


def image_bytes(fmt: str, size=(64, 64)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (120, 80, 40)).save(out, format=fmt)
    return out.getvalue()


@pytest.fixture
def member(client):
    return client.post("/v1/members", json={"external_id": "m", "display_name": "M"}).json()


BAD_FILES = [
    ("not an image", b"hello, this is text", "text/plain", 415, "unsupported_media_type"),
    ("empty file", b"", "image/jpeg", 400, "empty_file"),
    ("truncated jpeg", lfw_photo("Bill_Gates", 1)[:6000], "image/jpeg", 400, "corrupt_image"),
    ("jpeg cut in its header", lfw_photo("Bill_Gates", 1)[:200], "image/jpeg", 400, "corrupt_image"),
    ("gif", image_bytes("GIF"), "image/gif", 415, "unsupported_media_type"),
    ("too many pixels", image_bytes("PNG", size=(8000, 6000)), "image/png", 413, "image_too_large"),
]


@pytest.mark.models
@pytest.mark.parametrize("name,data,content_type,status,code", BAD_FILES, ids=[b[0] for b in BAD_FILES])
@pytest.mark.parametrize("endpoint", ["identify", "detect", "enroll", "verify", "signup"])
def test_bad_files(client, member, endpoint, name, data, content_type, status, code):
    files = upload(data, "x", content_type)
    if endpoint == "enroll":
        response = client.post(f"/v1/members/{member['id']}/faces", files=files)
    elif endpoint == "verify":
        # The member needs a face for verify to look at the photo at all.
        client.post(f"/v1/members/{member['id']}/faces", files=upload(lfw_photo("Bill_Gates", 1)))
        response = client.post("/v1/verify", data={"member_id": member["id"]}, files=files)
    elif endpoint == "signup":
        response = client.post("/v1/members", data={"external_id": "new", "display_name": "New"}, files=files)
    else:
        response = client.post(f"/v1/{endpoint}", files=files)
    assert error_code(response, status) == code
    with session_scope() as session:
        assert session.scalar(select(func.count()).select_from(Attempt)) == 0
        assert session.scalar(select(func.count()).select_from(Member).where(Member.external_id == "new")) == 0
        assert session.scalar(select(func.count()).select_from(Face)) == (1 if endpoint == "verify" else 0)


def test_too_many_bytes(client):
    limit = get_settings().max_upload_bytes
    assert error_code(client.post("/v1/detect", files=upload(b"\xff" * (limit + 1))), 413) == "file_too_large"


@pytest.mark.models
def test_missing_fields(client, member):
    assert error_code(client.post("/v1/identify"), 422) == "missing_field"
    assert error_code(client.post("/v1/verify", files=upload(lfw_photo("Bill_Gates", 1))), 422) == "missing_field"
    assert error_code(client.post("/v1/members", json={"external_id": "x"}), 422) == "missing_field"
    assert error_code(client.post("/v1/members", data={"display_name": "x"}), 422) == "missing_field"
    assert (
        error_code(client.post("/v1/members", content=b"x=1", headers={"content-type": "text/plain"}), 415)
        == "unsupported_content_type"
    )
    assert (
        error_code(client.post("/v1/members", json={"external_id": "x", "display_name": "y", "age": 3}), 422)
        == "validation_error"
    )
    assert (
        error_code(client.post("/v1/members", data={"external_id": "x", "display_name": "y", "metadata": "{"}), 422)
        == "validation_error"
    )


@pytest.mark.models
def test_unknown_member_and_bad_ids(client, admin):
    unknown = str(uuid.uuid4())
    photo = upload(lfw_photo("Bill_Gates", 1))
    assert error_code(client.get(f"/v1/members/{unknown}"), 404) == "member_not_found"
    assert error_code(client.post(f"/v1/members/{unknown}/faces", files=photo), 404) == "member_not_found"
    assert error_code(client.post("/v1/verify", data={"member_id": unknown}, files=photo), 404) == "member_not_found"
    assert error_code(admin.delete(f"/v1/members/{unknown}"), 404) == "member_not_found"
    assert error_code(client.get("/v1/members/not-a-uuid"), 422) == "validation_error"
    assert error_code(client.get("/v1/nowhere"), 404) == "not_found"


@pytest.mark.models
def test_threshold_and_paging_bounds(client, member):
    photo = upload(lfw_photo("Bill_Gates", 1))
    assert error_code(client.post("/v1/identify", files=photo, params={"threshold": 5}), 422) == "invalid_threshold"
    assert error_code(client.post("/v1/identify", files=photo, params={"threshold": -1}), 422) == "invalid_threshold"
    assert error_code(client.post("/v1/identify", files=photo, params={"top_k": 0}), 422) == "validation_error"
    assert error_code(client.get("/v1/members", params={"limit": 100000}), 422) == "validation_error"


@pytest.mark.models
def test_verify_a_member_without_faces_and_a_photo_without_face(client, member):
    photo = upload(lfw_photo("Bill_Gates", 1))
    assert (
        error_code(client.post("/v1/verify", data={"member_id": member["id"]}, files=photo), 409)
        == "member_has_no_faces"
    )
    client.post(f"/v1/members/{member['id']}/faces", files=photo)
    blank = io.BytesIO()
    Image.fromarray(np.full((120, 120, 3), 200, np.uint8)).save(blank, format="JPEG")
    assert (
        error_code(client.post("/v1/verify", data={"member_id": member["id"]}, files=upload(blank.getvalue())), 422)
        == "no_face"
    )


def test_health_needs_no_key(anonymous):
    assert anonymous.get("/health/live").json()["status"] == "ok"
    ready = anonymous.get("/health/ready")
    assert ready.status_code == 200 and ready.json()["checks"] == {"models": "ok", "database": "ok"}
