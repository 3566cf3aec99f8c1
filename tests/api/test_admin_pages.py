"""The /admin pages without a browser: sessions, CSRF and what a page shows (tests/test_admin_browser.py walks it)."""

import re

import pytest

from tests.support import lfw_photo, upload


def sign_in(anonymous, key: str):
    page = anonymous.get("/admin/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    return anonymous.post("/admin/login", data={"api_key": key, "csrf_token": token}, follow_redirects=False)


def test_pages_need_an_admin_session(anonymous, service_key, admin_key):
    anonymous.cookies.clear()
    assert anonymous.get("/admin", follow_redirects=False).headers["location"] == "/admin/login"
    refused = sign_in(anonymous, service_key)
    assert refused.status_code == 401 and "not an active admin API key" in refused.text
    signed_in = sign_in(anonymous, admin_key)
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/admin"
    cookie = signed_in.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert "<h1>Overview</h1>" in anonymous.get("/admin").text
    assert "Review queue" in anonymous.get("/admin/queue").text
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


@pytest.mark.models
def test_overview_counts_decisions_reviews_and_the_gallery(anonymous, admin_key, client, admin):
    anonymous.cookies.clear()
    for person in ("Bill_Gates", "Angelina_Jolie", "Alvaro_Uribe"):
        response = client.post(
            "/v1/members",
            data={"external_id": person, "display_name": person},
            files=[("file", (f"{n}.jpg", lfw_photo(person, n), "image/jpeg")) for n in (1, 2)],
            params={"allow_duplicate": True},
        )
        assert response.status_code == 201, response.text
    (genuine,) = client.post("/v1/identify", files=upload(lfw_photo("Bill_Gates", 3))).json()["faces"]
    assert genuine["decision"] == "match"
    (impostor,) = client.post(
        "/v1/identify", files=upload(lfw_photo("Arnold_Schwarzenegger", 1)), params={"threshold": 1.6}
    ).json()["faces"]
    assert impostor["decision"] == "match"
    marked = admin.post(f"/v1/review/attempts/{impostor['attempt_id']}/verdict", json={"verdict": "false_match"})
    assert marked.status_code == 200

    sign_in(anonymous, admin_key)
    page = anonymous.get("/admin")
    assert page.status_code == 200
    figures = {
        name: re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", block)).strip()
        for name, block in re.findall(r'<div class="figure" id="([a-z-]+)">(.*?)</div>', page.text, re.S)
    }
    assert figures["automatic"].startswith("2 decided automatically in 30 days")
    assert figures["false-matches"].startswith("1 false matches in 1 reviewed matches (100.0%)")
    assert figures["gallery"].startswith("3 members (3 with a template), 6 enabled faces")
    assert figures["backlog"].startswith("0 waiting for a person")
    # Today's bar holds the two matches; the comparison charts mark both decision points.
    assert len(re.findall(r'<rect class="bar" data-series="match"', page.text)) == 1
    assert "2 match</title>" in page.text
    assert page.text.count('<polygon class="histogram" data-series="genuine"') == 2
    assert page.text.count('class="marker" data-marker="accept"') == 2
    assert page.text.count('class="marker" data-marker="review"') == 2
    assert "(6 comparisons" in page.text and "templates (12)" in page.text
    anonymous.cookies.clear()
