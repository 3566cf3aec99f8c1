"""Every endpoint with no key, a service key, an admin key and a revoked key."""

import os
import stat
import uuid

import pytest

from core.settings import get_settings
from services.identity.auth import ADMIN_KEY_FILE
from tests.support import client_with_key, lfw_photo

ID = str(uuid.uuid4())
PHOTO = {"file": ("p.jpg", lfw_photo("Bill_Gates", 1), "image/jpeg")}

# (method, path, request arguments, role needed)
ENDPOINTS = [
    ("post", "/v1/members", {"json": {"external_id": "x", "display_name": "X"}}, "service"),
    ("get", "/v1/members", {}, "service"),
    ("get", f"/v1/members/{ID}", {}, "service"),
    ("patch", f"/v1/members/{ID}", {"json": {"display_name": "Y"}}, "service"),
    ("post", f"/v1/members/{ID}/faces", {"files": PHOTO}, "service"),
    ("get", f"/v1/members/{ID}/faces/{ID}/crop", {}, "service"),
    ("delete", f"/v1/members/{ID}/faces/{ID}", {}, "service"),
    ("post", "/v1/identify", {"files": PHOTO}, "service"),
    ("post", "/v1/verify", {"files": PHOTO, "data": {"member_id": ID}}, "service"),
    ("post", "/v1/detect", {"files": PHOTO}, "service"),
    ("delete", f"/v1/members/{ID}", {}, "admin"),
    ("patch", f"/v1/members/{ID}/faces/{ID}", {"json": {"enabled": False}}, "admin"),
    ("get", "/v1/review/attempts", {}, "admin"),
    ("get", f"/v1/review/attempts/{ID}", {}, "admin"),
    ("get", f"/v1/review/attempts/{ID}/crop", {}, "admin"),
    ("post", f"/v1/review/attempts/{ID}/verdict", {"json": {"verdict": "correct"}}, "admin"),
    ("get", "/v1/blacklist", {}, "admin"),
    ("delete", f"/v1/blacklist/{ID}", {}, "admin"),
    ("get", "/v1/keys", {}, "admin"),
    ("post", "/v1/keys", {"json": {"name": "k", "role": "service"}}, "admin"),
    ("delete", f"/v1/keys/{ID}", {}, "admin"),
    ("get", "/v1/audit", {}, "admin"),
]


@pytest.fixture(scope="module")
def revoked(admin, anonymous):
    clients = {}
    for role in ("service", "admin"):
        created = admin.post("/v1/keys", json={"name": f"revoked {role}", "role": role}).json()
        assert admin.delete(f"/v1/keys/{created['id']}").json()["revoked_at"] is not None
        clients[role] = client_with_key(anonymous.app, created["key"])
    return clients


def call(http, method, path, kwargs):
    return getattr(http, method)(path, **kwargs)


@pytest.mark.models
@pytest.mark.parametrize("method,path,kwargs,role", ENDPOINTS, ids=[f"{e[0]} {e[1]}" for e in ENDPOINTS])
def test_role_boundaries(anonymous, client, admin, revoked, method, path, kwargs, role):
    response = call(anonymous, method, path, kwargs)
    assert response.status_code == 401 and response.json()["error"]["code"] == "missing_api_key"

    for revoked_client in revoked.values():
        response = call(revoked_client, method, path, kwargs)
        assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_api_key"

    as_service = call(client, method, path, kwargs)
    if role == "admin":
        assert as_service.status_code == 403 and as_service.json()["error"]["code"] == "forbidden"
    else:
        assert as_service.status_code not in (401, 403), as_service.text

    assert call(admin, method, path, kwargs).status_code not in (401, 403)


def test_health_is_open(anonymous):
    assert anonymous.get("/health/live").status_code == 200
    assert anonymous.get("/health/ready").status_code == 200


def test_x_api_key_header_and_wrong_key(anonymous, service_key):
    assert anonymous.get("/v1/members", headers={"X-API-Key": service_key}).status_code == 200
    wrong = anonymous.get("/v1/members", headers={"Authorization": "Bearer fg_not-a-key"})
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_api_key"


def test_keys_are_shown_once_and_stored_hashed(admin, anonymous):
    created = admin.post("/v1/keys", json={"name": "door camera", "role": "service"})
    assert created.status_code == 201
    raw = created.json()["key"]
    listed = admin.get("/v1/keys").json()
    assert all("key" not in k for k in listed) and raw not in str(listed)
    assert any(k["id"] == created.json()["id"] and raw.startswith(k["prefix"]) for k in listed)
    assert client_with_key(anonymous.app, raw).get("/v1/members").status_code == 200
    from sqlalchemy import select

    from db.models import ApiKey
    from db.session import session_scope

    with session_scope() as session:
        assert raw not in session.scalars(select(ApiKey.key_hash)).all()


def test_first_admin_key_file_is_owner_only(admin_key):
    path = get_settings().data_dir / ADMIN_KEY_FILE
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert path.read_text().strip() == admin_key


def test_admin_actions_are_audited(client, admin):
    member = client.post("/v1/members", json={"external_id": "gone", "display_name": "Gone"}).json()
    key = admin.post("/v1/keys", json={"name": "temp", "role": "service"}).json()
    admin.delete(f"/v1/keys/{key['id']}")
    admin.delete(f"/v1/members/{member['id']}")
    entries = admin.get("/v1/audit").json()
    actions = [(e["action"], e["target_id"]) for e in entries]
    assert ("member.delete", member["id"]) in actions
    assert ("key.create", key["id"]) in actions and ("key.revoke", key["id"]) in actions
    assert all(e["actor_name"] == "initial admin" for e in entries)
    assert admin.get("/v1/audit", params={"action": "member.delete"}).json()[0]["details"]["external_id"] == "gone"


def test_the_last_admin_key_cannot_be_revoked(admin, admin_key, anonymous):
    mine = next(k for k in admin.get("/v1/keys").json() if admin_key.startswith(k["prefix"]) and not k["revoked_at"])
    others = [k for k in admin.get("/v1/keys").json() if k["role"] == "admin" and not k["revoked_at"]]
    for other in others:  # admin keys other tests left: revoked, so that the session's own is the last
        if other["id"] != mine["id"]:
            assert admin.delete(f"/v1/keys/{other['id']}").status_code == 200
    second = admin.post("/v1/keys", json={"name": "second admin", "role": "admin"}).json()
    # With another admin key there, either may go; then the one left cannot.
    assert admin.delete(f"/v1/keys/{second['id']}").status_code == 200
    refused = admin.delete(f"/v1/keys/{mine['id']}")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "last_admin_key"
    assert admin.get("/v1/keys").status_code == 200  # still in


def test_sign_in_failures_are_throttled_per_address(anonymous, admin_key):
    from fastapi.testclient import TestClient

    from api.pages.signin import SignInThrottle
    from tests.support import sign_in

    state = anonymous.app.state
    shared, state.signin_throttle = state.signin_throttle, SignInThrottle(3, 60)  # (monkeypatch deletes from State)
    try:
        browser = TestClient(anonymous.app)
        assert [sign_in(browser, f"fg_guess_{n}", "/admin").status_code for n in range(3)] == [401, 401, 401]
        throttled = sign_in(browser, admin_key, "/admin")  # even the right key waits
        assert throttled.status_code == 429 and 55 <= int(throttled.headers["retry-after"]) <= 60
        # Another address is not held back.
        elsewhere = TestClient(anonymous.app, client=("203.0.113.7", 50000))
        assert sign_in(elsewhere, admin_key, "/admin").status_code == 303
    finally:
        state.signin_throttle = shared
