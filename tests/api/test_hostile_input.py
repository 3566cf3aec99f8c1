"""What an attacker or a careless client sends: every request gets a 4xx JSON error with a code, never a 500."""

import io
import json
import struct
import zlib

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image, PngImagePlugin

from core.settings import get_settings
from tests.api.test_errors import error_code
from tests.support import jpeg, lfw_photo, sign_in, upload


def png(pixels: np.ndarray, **save_args) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG", **save_args)
    return out.getvalue()


def png_with_text_bomb() -> bytes:
    """A small PNG whose compressed text chunk inflates to 64 MB."""
    info = PngImagePlugin.PngInfo()
    info.add_text("comment", "x")  # placeholder, replaced by the bomb below
    data = png(np.zeros((32, 32, 3), np.uint8))
    payload = b"comment\x00\x00" + zlib.compress(b"A" * (64 << 20), 9)
    chunk = struct.pack(">I", len(payload)) + b"zTXt" + payload
    chunk += struct.pack(">I", zlib.crc32(b"zTXt" + payload) & 0xFFFFFFFF)
    end = data.rindex(b"IEND") - 4
    return data[:end] + chunk + data[end:]


def mpo(photo: bytes) -> bytes:
    """A two-frame MPO (what phone cameras write) whose first frame is the photo."""
    frame = Image.open(io.BytesIO(photo))
    out = io.BytesIO()
    frame.save(out, format="MPO", save_all=True, append_images=[frame.transpose(Image.Transpose.FLIP_LEFT_RIGHT)])
    return out.getvalue()


HOSTILE_FILES = [
    ("side under 20 px", png(np.full((12, 40, 3), 128, np.uint8)), 422, "image_too_small"),
    ("one pixel", jpeg(np.zeros((1, 1, 3), np.uint8)), 422, "image_too_small"),
    ("20000x5", png(np.full((5, 20000, 3), 90, np.uint8)), 422, "image_too_small"),
    ("extreme aspect ratio", png(np.full((24, 6000, 3), 90, np.uint8)), 422, "bad_aspect_ratio"),
    ("malformed BMP header", b"BM" + b"\xff" * 60, 400, "corrupt_image"),
    (
        "BMP with absurd size",
        b"BM" + struct.pack("<IHHI", 70, 0, 0, 54) + struct.pack("<IiiHH", 40, 1 << 30, 1 << 30, 1, 24) + b"\0" * 24,
        413,
        "image_too_large",
    ),  # fmt: skip
    ("PNG text-chunk bomb", png_with_text_bomb(), 400, "corrupt_image"),
]


@pytest.mark.models
@pytest.mark.parametrize("name,data,status,code", HOSTILE_FILES, ids=[f[0] for f in HOSTILE_FILES])
@pytest.mark.parametrize("endpoint", ["identify", "detect", "signup"])
def test_hostile_images(client, endpoint, name, data, status, code):
    files = upload(data, "x.img", "application/octet-stream")
    if endpoint == "signup":
        response = client.post("/v1/members", data={"external_id": "h", "display_name": "H"}, files=files)
    else:
        response = client.post(f"/v1/{endpoint}", files=files)
    assert error_code(response, status) == code


@pytest.mark.models
def test_an_mpo_from_a_phone_camera_is_a_photo(client):
    (face,) = client.post("/v1/detect", files=upload(mpo(lfw_photo("Bill_Gates", 1)))).json()["faces"]
    assert face["box"]["width"] > 50


def test_invalid_json_bodies(client):
    for body in (b"{", b"", b"[1, 2]", b'{"external_id": "x", "display_name": "y", "metadata": NaN}', b"\xff\xfe"):
        response = client.post("/v1/members", content=body, headers={"content-type": "application/json"})
        assert error_code(response, 422) in {"validation_error", "missing_field"}, body


def test_nul_characters_and_non_finite_numbers(client):
    assert error_code(client.post("/v1/members", json={"external_id": "a\x00b", "display_name": "y"}), 422)
    assert error_code(client.post("/v1/members", data={"external_id": "x", "display_name": "a\x00"}), 422)
    assert error_code(client.post("/v1/members", json={"external_id": "x", "display_name": "y", "metadata": {"k\x00": 1}}), 422)  # fmt: skip
    nan_metadata = '{"external_id": "x", "display_name": "y", "metadata": {"k": Infinity}}'
    assert error_code(client.post("/v1/members", content=nan_metadata, headers={"content-type": "application/json"}), 422)  # fmt: skip
    assert error_code(client.get("/v1/members", params={"external_id": "a\x00"}), 422) == "validation_error"
    assert client.get("/v1/members").json()["total"] == 0


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e400"])
def test_non_finite_threshold(client, value):
    response = client.post("/v1/identify", files=upload(b"x"), params={"threshold": value})
    assert error_code(response, 422) in {"invalid_threshold", "validation_error"}


@pytest.mark.parametrize("offset", [2**63, 2**64 + 5, 10**30])
def test_huge_offsets(client, admin, offset):
    assert error_code(client.get("/v1/members", params={"offset": offset}), 422) == "validation_error"
    assert error_code(admin.get("/v1/review/attempts", params={"offset": offset}), 422) == "validation_error"
    assert error_code(admin.get("/v1/audit", params={"offset": offset}), 422) == "validation_error"


def test_json_body_and_metadata_size_limits(client):
    big = {"external_id": "x", "display_name": "y", "metadata": {"blob": "a" * (2 << 20)}}
    assert error_code(client.post("/v1/members", json=big), 413) == "body_too_large"
    wide = {"external_id": "x", "display_name": "y", "metadata": {f"k{i}": "v" * 100 for i in range(200)}}
    assert error_code(client.post("/v1/members", json=wide), 422) == "metadata_too_large"
    assert client.get("/v1/members").json()["total"] == 0


def test_non_ascii_csrf_token_on_the_login_form(anonymous):
    response = anonymous.post("/admin/login", data={"api_key": "x", "csrf_token": "ünïcödé\u2603"})
    assert response.status_code == 403
    raw_cookie = {"cookie": "facegate_login_csrf=café".encode()}  # as a browser may send it: UTF-8 bytes
    response = anonymous.post("/admin/login", data={"api_key": "x", "csrf_token": "café"}, headers=raw_cookie)
    assert response.status_code in {401, 403}


def test_admin_pages_cannot_be_framed(anonymous):
    response = anonymous.get("/admin/login")
    assert response.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"


def signup_form(client, metadata: str, *, multipart: bool):
    form = {"external_id": "x", "display_name": "y", "metadata": metadata}
    # A file field the signup does not read makes the body multipart rather than url-encoded.
    files = {"unused": ("a.txt", b"x", "text/plain")} if multipart else None
    return client.post("/v1/members", data=form, files=files)


NUL_METADATA = [json.dumps({"note": "a\x00b"}), json.dumps({"k\x00": 1}), json.dumps({"list": [{"deep": "\x00"}]})]
DEEP_METADATA = '{"a": ' * 600 + "1" + "}" * 600


@pytest.mark.parametrize("multipart", [True, False])
def test_nul_and_deep_nesting_in_form_metadata(client, multipart):
    for metadata in [*NUL_METADATA, DEEP_METADATA, "[" * 100_000 + "]" * 100_000]:
        assert error_code(signup_form(client, metadata, multipart=multipart), 422) == "validation_error", metadata[:40]
    deep_json = f'{{"external_id": "x", "display_name": "y", "metadata": {DEEP_METADATA}}}'
    response = client.post("/v1/members", content=deep_json, headers={"content-type": "application/json"})
    assert error_code(response, 422) == "validation_error"
    assert client.get("/v1/members").json()["total"] == 0


def test_nul_in_a_batch_members_metadata_is_a_4xx(client):
    members = [
        {"external_id": "ok", "display_name": "Fine", "photos": []},
        {"external_id": "nul", "display_name": "Bad", "metadata": {"note": "a\x00b"}, "photos": []},
    ]
    files = {"unused": ("a.txt", b"x", "text/plain")}
    response = client.post("/v1/members/batch", data={"members": json.dumps(members)}, files=files)
    assert error_code(response, 422) == "validation_error"
    assert client.get("/v1/members").json()["total"] == 0


def test_photos_per_signup_are_capped(client):
    cap = get_settings().max_faces_per_member
    photos = [("file", (f"{i}.jpg", b"not read", "image/jpeg")) for i in range(cap + 1)]
    response = client.post("/v1/members", data={"external_id": "many", "display_name": "Many"}, files=photos)
    assert error_code(response, 422) == "too_many_photos"
    assert response.json()["error"]["details"] == {"count": cap + 1, "max_photos": cap}
    members = [{"external_id": "many", "display_name": "Many", "photos": [f"p{i}" for i in range(cap + 1)]}]
    files = [(f"p{i}", (f"{i}.jpg", b"not read", "image/jpeg")) for i in range(cap + 1)]
    response = client.post("/v1/members/batch", data={"members": json.dumps(members)}, files=files)
    assert response.status_code == 200, response.text
    (refused,) = response.json()["items"]
    assert refused["error"]["code"] == "too_many_photos"
    assert client.get("/v1/members").json()["total"] == 0


@pytest.mark.parametrize(
    "position",
    [
        "2026-01-01T00:00:00+23:59_00000000-0000-0000-0000-000000000000",
        "2026-01-01T00:00:00-20:00_00000000-0000-0000-0000-000000000000",
        "0001-01-01T00:00:00+05:00_00000000-0000-0000-0000-000000000000",
        "9999-12-31T23:59:59-05:00_00000000-0000-0000-0000-000000000000",
    ],
)
def test_queue_positions_with_far_time_zones(anonymous, admin_key, position):
    browser = TestClient(anonymous.app)
    sign_in(browser, admin_key, "/admin")
    response = browser.get("/admin/queue", params={"after": position})
    assert response.status_code in {200, 422}, response.text[:300]
