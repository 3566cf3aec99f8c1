"""The /admin pages without a browser: sessions, CSRF and what a page shows (tests/test_admin_browser.py walks it)."""

import re
import time

import pytest
from sqlalchemy import text

from db.session import session_scope
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
    assert "Verdict saved." in saved.text and "Right match: the face is Bill Gates (g)." in saved.text
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
    # 6 signup faces and the confident match, learned from its visit
    assert figures["gallery"].startswith("3 members (3 with a template), 7 enabled faces")
    assert figures["backlog"].startswith("0 waiting for a person")
    # Today's bar holds the two matches; the comparison charts mark both decision points.
    assert len(re.findall(r'<rect class="bar" data-series="match"', page.text)) == 1
    assert "2 match</title>" in page.text
    assert page.text.count('<polygon class="histogram" data-series="genuine"') == 2
    assert page.text.count('class="marker" data-marker="accept"') == 2
    assert page.text.count('class="marker" data-marker="review"') == 2
    assert "(6 comparisons" in page.text and "templates (12)" in page.text
    anonymous.cookies.clear()


def insert_attempts(count: int, *, needs_review_every: int) -> None:
    """`count` identify attempts a second apart, the newest a second ago; every n-th is in the review band."""
    zero = "[" + ",".join(["0"] * 127 + ["1"]) + "]"
    with session_scope() as session:
        session.execute(
            text(
                "INSERT INTO attempts (id, request_id, kind, face_index, box, detection_score, probe_embedding,"
                "                      candidates, threshold, decision, needs_review, created_at) "
                "SELECT gen_random_uuid(), gen_random_uuid(), 'identify', 0,"
                '       \'{"x": 0, "y": 0, "width": 60, "height": 60}\', 0.99, CAST(:zero AS vector), \'[]\', 0.5,'
                "       CASE WHEN i % :every = 0 THEN 'review' ELSE 'unknown' END, i % :every = 0,"
                "       now() - make_interval(secs => i) "
                "FROM generate_series(1, :count) AS i"
            ),
            {"zero": zero, "every": needs_review_every, "count": count},
        )


def queue_rows(html: str) -> list[str]:
    return re.findall(r'<a href="/admin/attempts/([0-9a-f-]+)">Open</a>', html)


def next_link(html: str) -> str | None:
    found = re.search(r'<a href="([^"]+)" rel="next">', html)
    return found.group(1).replace("&amp;", "&") if found else None


def test_queue_pages_through_100000_attempts_showing_what_needs_a_person(anonymous, admin_key, admin):
    insert_attempts(100_000, needs_review_every=50)
    anonymous.cookies.clear()
    sign_in(anonymous, admin_key)
    first = anonymous.get("/admin/queue")
    counts = re.sub(r"<[^>]+>", "", re.search(r'<p id="counts">(.*?)</p>', first.text, re.S).group(1))
    assert "2000 need a person" in counts and "98000 pending attempts were decided automatically" in counts

    # The default view: every attempt that needs a person, newest first, each once, 50 to a page.
    seen, url, pages = [], "/admin/queue", 0
    while url:
        page = anonymous.get(url)
        assert page.status_code == 200
        seen += queue_rows(page.text)
        url, pages = next_link(page.text), pages + 1
    assert pages == 40 and len(seen) == len(set(seen)) == 2000
    with session_scope() as session:
        newest_first = session.execute(
            text("SELECT id FROM attempts WHERE needs_review ORDER BY created_at DESC, id DESC")
        ).scalars()
        assert seen == [str(i) for i in newest_first]

    # Every attempt: the page after the 99,950th comes as quickly as the first, by keyset, not offset.
    with session_scope() as session:
        created_at, attempt_id = session.execute(
            text("SELECT created_at, id FROM attempts ORDER BY created_at DESC, id DESC OFFSET 99949 LIMIT 1")
        ).one()
    for after in ("", f"{created_at.isoformat()}_{attempt_id}"):
        start = time.perf_counter()
        page = anonymous.get("/admin/queue", params={"needs": "any", "status": "", "after": after})
        elapsed = time.perf_counter() - start
        assert page.status_code == 200 and elapsed < 1.0, elapsed
    assert len(queue_rows(page.text)) == 50 and next_link(page.text) is None

    refused = anonymous.get("/admin/queue", params={"after": "not a position"})
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "invalid_cursor"
    anonymous.cookies.clear()


def test_item_page_finds_the_member_by_name(anonymous, admin_key, client):
    ada = client.post("/v1/members", json={"external_id": "emp-7", "display_name": "Ada Lovelace"}).json()
    client.post("/v1/members", json={"external_id": "ada_2", "display_name": "Ada King"})
    client.post("/v1/members", json={"external_id": "emp-9", "display_name": "Grace Hopper"})
    insert_attempts(1, needs_review_every=1)
    with session_scope() as session:
        attempt_id = session.execute(text("SELECT id FROM attempts")).scalar_one()
    anonymous.cookies.clear()
    sign_in(anonymous, admin_key)

    def found(query: str) -> list[str]:
        page = anonymous.get(f"/admin/attempts/{attempt_id}", params={"member_q": query})
        assert page.status_code == 200
        return re.findall(
            r'<label class="found"><input type="radio" name="member_id" value="[^"]+"> ([^<]+) <em>', page.text
        )

    assert found("ada") == ["Ada King (ada_2)", "Ada Lovelace (emp-7)"]
    assert found("EMP-") == ["Ada Lovelace (emp-7)", "Grace Hopper (emp-9)"]
    assert found("_") == ["Ada King (ada_2)"]  # a literal underscore, not LIKE's any-character
    assert found("%") == []

    page = anonymous.get(f"/admin/attempts/{attempt_id}", params={"member_q": "lovelace"})
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    saved = anonymous.post(
        f"/admin/attempts/{attempt_id}/verdict",
        data={"verdict": "false_non_match", "member_id": ada["id"], "csrf_token": token},
        follow_redirects=True,
    )
    assert "Verdict saved." in saved.text and "Missed: the face is Ada Lovelace (emp-7)." in saved.text
    with session_scope() as session:
        assert session.execute(text("SELECT review_status FROM attempts")).scalar_one() == "false_non_match"
    anonymous.cookies.clear()
