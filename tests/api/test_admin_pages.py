"""The /admin pages without a browser: sessions, CSRF and what a page shows (tests/test_admin_browser.py walks it)."""

import re

import pytest

from tests.support import lfw_photo, sign_in, upload


def test_pages_need_an_admin_session(anonymous, service_key, admin_key):
    anonymous.cookies.clear()
    assert anonymous.get("/admin", follow_redirects=False).headers["location"] == "/admin/login"
    refused = sign_in(anonymous, service_key)
    assert refused.status_code == 401 and "not an active admin API key" in refused.text
    signed_in = sign_in(anonymous, admin_key)
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/admin"
    cookie = signed_in.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert "Review queue" in anonymous.get("/admin").text
    anonymous.cookies.clear()


@pytest.mark.models
def test_forms_need_the_sessions_csrf_token(anonymous, admin_key, client):
    anonymous.cookies.clear()
    client.post(
        "/v1/members",
        data={"external_id": "g", "display_name": "Bill Gates"},
        files=[("file", ("1.jpg", lfw_photo("Bill_Gates", 1), "image/jpeg"))],
    )
    (face,) = client.post("/v1/identify", files=upload(lfw_photo("Bill_Gates", 2))).json()["faces"]
    sign_in(anonymous, admin_key)
    page = anonymous.get(f"/admin/attempts/{face['attempt_id']}")
    assert page.status_code == 200 and "Bill Gates" in page.text and "Save verdict" in page.text
    url = f"/admin/attempts/{face['attempt_id']}/verdict"
    forged = anonymous.post(url, data={"verdict": "correct", "csrf_token": "forged"})
    assert forged.status_code == 403 and forged.json()["error"]["code"] == "csrf_failed"
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    refused = anonymous.post(url, data={"verdict": "false_non_match", "member_id": "nobody", "csrf_token": token})
    assert refused.status_code == 422 and "Not saved" in refused.text
    saved = anonymous.post(url, data={"verdict": "correct", "csrf_token": token}, follow_redirects=True)
    assert "Verdict saved: correct" in saved.text
    anonymous.post("/admin/logout", data={"csrf_token": token})
    assert anonymous.get("/admin", follow_redirects=False).status_code == 303
    anonymous.cookies.clear()
