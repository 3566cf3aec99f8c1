"""The /desk pages' server side without a browser: sign-in, the live quality check, signup outcomes, and the live
identify stream (/v1/identify/stream and /desk/stream). tests/test_desk_browser.py drives the pages themselves."""

import re

import pytest
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketDenialResponse

from core.settings import get_settings
from tests.support import camera_frame, jpeg, lfw_photo, sign_in


@pytest.fixture
def desk(anonymous, service_key) -> tuple[TestClient, dict[str, str]]:
    """A browser-like client signed in to /desk with a service key, and the headers its page scripts send."""
    browser = TestClient(anonymous.app)
    assert sign_in(browser, service_key, "/desk").headers["location"] == "/desk"
    token = re.search(r'name="csrf-token" content="([^"]+)"', browser.get("/desk/signup").text).group(1)
    return browser, {"X-CSRF-Token": token}


def photo_files(*people: tuple[str, int]) -> list:
    return [("file", (f"{i}.jpg", lfw_photo(*person), "image/jpeg")) for i, person in enumerate(people)]


def test_desk_needs_a_service_or_admin_session(anonymous, service_key, admin_key):
    browser = TestClient(anonymous.app)
    assert browser.get("/desk/identify", follow_redirects=False).headers["location"] == "/desk/login"
    refused = sign_in(browser, "fg_not_a_key", "/desk")
    assert refused.status_code == 401 and "not an active service or admin API key" in refused.text
    signed_in = sign_in(browser, service_key, "/desk")
    cookie = signed_in.headers["set-cookie"]
    assert "facegate_desk=" in cookie and "Path=/desk" in cookie and "HttpOnly" in cookie
    page = browser.get("/desk/identify")
    assert page.status_code == 200 and "/desk/static/identify.js" in page.text and "signed in as tests" in page.text
    # A service key's desk session does not open the review pages.
    assert browser.get("/admin", follow_redirects=False).headers["location"] == "/admin/login"
    assert sign_in(TestClient(anonymous.app), admin_key, "/desk").status_code == 303
    script = browser.get("/desk/static/desk.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]


def test_page_scripts_need_the_session_and_its_csrf_token(anonymous, desk):
    browser, headers = desk
    files = {"file": ("f.jpg", b"not read", "image/jpeg")}
    forged = browser.post("/desk/check", files=files, headers={"X-CSRF-Token": "forged"})
    assert forged.status_code == 403 and forged.json()["error"]["code"] == "csrf_failed"
    signed_out = TestClient(anonymous.app).post("/desk/check", files=files, headers=headers)
    assert signed_out.status_code == 401 and signed_out.json()["error"]["code"] == "not_signed_in"
    logout = browser.post("/desk/logout", data={"csrf_token": headers["X-CSRF-Token"]}, follow_redirects=False)
    assert logout.headers["location"] == "/desk/login"
    assert browser.post("/desk/check", files=files, headers=headers).status_code == 401


def test_check_in_by_face_or_card_is_audited(anonymous, desk, admin, monkeypatch):
    from core.settings import get_settings
    from db.session import session_scope
    from services.identity import members

    browser, headers = desk
    with session_scope() as session:
        ada = str(members.create_member(session, external_id="card-17", display_name="Ada", metadata={}).id)
    by_face = browser.post("/desk/checkins", data={"member_id": ada}, headers=headers)
    assert by_face.status_code == 201, by_face.text
    assert by_face.json()["member"]["display_name"] == "Ada" and by_face.json()["how"] == "face"
    by_card = browser.post("/desk/checkins", data={"external_id": " card-17 "}, headers=headers)
    assert by_card.status_code == 201 and by_card.json()["how"] == "card"
    entries = admin.get("/v1/audit", params={"action": "member.check_in"}).json()
    assert [(e["target_id"], e["details"]["how"], e["actor_name"]) for e in entries] == [
        (ada, "card", "tests"),
        (ada, "face", "tests"),
    ]

    def refused(data: dict, headers: dict = headers) -> tuple[int, str]:
        response = browser.post("/desk/checkins", data=data, headers=headers)
        return response.status_code, response.json()["error"]["code"]

    assert refused({"external_id": "card-99"}) == (404, "member_not_found")
    assert refused({}) == (422, "missing_field")
    assert refused({"member_id": "not-a-uuid"}) == (422, "validation_error")
    assert refused({"member_id": ada}, {"X-CSRF-Token": "forged"}) == (403, "csrf_failed")
    assert len(admin.get("/v1/audit", params={"action": "member.check_in"}).json()) == 2

    # No expression on the desk unless the setting asks for it.
    assert 'data-show-expression="false"' in browser.get("/desk/identify").text
    monkeypatch.setattr(get_settings(), "desk_show_expression", True)
    assert 'data-show-expression="true"' in browser.get("/desk/identify").text


@pytest.mark.models
@pytest.mark.parametrize(
    ("frame", "problem"),
    [
        ({"people": [("Colin_Powell", 1)]}, None),
        ({"people": []}, "no_face"),
        ({"people": [("Colin_Powell", 1), ("Hugo_Chavez", 1)]}, "multiple_faces"),
        ({"people": [("Colin_Powell", 1)], "face_width": 96}, "face_too_small"),
        ({"people": [("Colin_Powell", 1)], "blur": 2.5}, "blurry"),
    ],
)
def test_check_says_what_the_enrollment_gate_would(desk, frame, problem):
    browser, headers = desk
    pixels = camera_frame(*frame.pop("people"), **frame)
    response = browser.post("/desk/check", files={"file": ("f.jpg", jpeg(pixels), "image/jpeg")}, headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["ok"] is (problem is None)
    assert (body["problem"] or {}).get("code") == problem, body
    if problem is None:
        assert body["chosen"] == 0 and len(body["faces"]) == 1 and body["faces"][0]["width"] >= 100


@pytest.mark.models
def test_check_reads_the_pose_the_signup_page_asks_for(desk):
    """A photo and its mirror image: the same turn, the other way."""
    browser, headers = desk
    pixels = camera_frame(("Colin_Powell", 1))
    turns = []
    for frame in (pixels, pixels[:, ::-1].copy()):
        response = browser.post("/desk/check", files={"file": ("f.jpg", jpeg(frame), "image/jpeg")}, headers=headers)
        body = response.json()
        assert body["ok"] and body["pose"] in ("straight", "left", "right", None), body
        turns.append(body["turn"])
    assert turns[0] == pytest.approx(-turns[1], abs=0.02)


@pytest.mark.models
def test_signup_is_enrolled_refused_as_a_duplicate_or_queued(desk, strict, monkeypatch):
    browser, headers = desk
    # Under `strict` settings Andre Agassi's second photo is only a possible duplicate of his first signup.
    first = browser.post(
        "/desk/members", data={"external_id": "aa", "display_name": "Agassi"}, files=photo_files(("Andre_Agassi", 2))
    )
    assert first.status_code == 403  # no CSRF token
    first = browser.post(
        "/desk/members",
        data={"external_id": "aa", "display_name": "Agassi"},
        files=photo_files(("Andre_Agassi", 2)),
        headers=headers,
    )
    queued = browser.post(
        "/desk/members",
        data={"external_id": "aa2", "display_name": "Agassi again"},
        files=photo_files(("Andre_Agassi", 3)),
        headers=headers,
    )
    assert queued.status_code == 201, queued.text
    assert queued.json()["outcome"] == "queued_for_review"
    assert [m["id"] for m in queued.json()["possible_duplicate_of"]] == [first.json()["member"]["id"]]

    monkeypatch.undo()  # default settings: Colin Powell's fourth photo is confidently the first signup
    enrolled = browser.post(
        "/desk/members",
        data={"external_id": "cp", "display_name": "Colin Powell"},
        files=photo_files(("Colin_Powell", 1), ("Colin_Powell", 2), ("Colin_Powell", 3)),
        headers=headers,
    )
    assert enrolled.status_code == 201, enrolled.text
    assert enrolled.json()["outcome"] == "enrolled" and enrolled.json()["member"]["template_faces"] == 3
    mixed = browser.post(
        "/desk/members",
        data={"external_id": "mixed", "display_name": "Two people"},
        files=photo_files(("Serena_Williams", 1), ("Hugo_Chavez", 1)),
        headers=headers,
    )
    assert mixed.status_code == 422 and mixed.json()["error"]["code"] == "face_mismatch", mixed.text
    refused = browser.post(
        "/desk/members",
        data={"external_id": "cp2", "display_name": "Colin again"},
        files=photo_files(("Colin_Powell", 4)),
        headers=headers,
    )
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "duplicate_face"
    assert refused.json()["error"]["details"]["member"]["external_id"] == "cp"


def frame_bytes(*people: tuple[str, int]) -> bytes:
    return jpeg(camera_frame(*people))


@pytest.mark.models
def test_stream_identifies_every_frame_and_records_each_track_once(client, admin, service_key, monkeypatch):
    monkeypatch.setattr(get_settings(), "stream_track_settle_frames", 2)
    monkeypatch.setattr(get_settings(), "stream_track_gap_seconds", 600)  # however slow the machine
    for person in ("Colin_Powell", "Hugo_Chavez"):
        files = photo_files((person, 1), (person, 2), (person, 3))
        created = client.post("/v1/members", data={"external_id": person, "display_name": person}, files=files)
        assert created.status_code == 201, created.text
    url = "/v1/identify/stream?camera=test-stream"
    with client.websocket_connect(url, headers={"X-API-Key": service_key}) as stream:
        answers = []
        for people in [("Colin_Powell", 4)], [("Colin_Powell", 5)], [("Hugo_Chavez", 4), ("Angelina_Jolie", 1)]:
            stream.send_bytes(frame_bytes(*people))
            answers.append(stream.receive_json())
        stream.send_text("hello")
        not_a_frame = stream.receive_json()
        stream.send_bytes(b"\xff\xd8 not a jpeg")
        corrupt = stream.receive_json()
        stream.send_bytes(frame_bytes(("Hugo_Chavez", 5), ("Angelina_Jolie", 1)))
        pair_again = stream.receive_json()
        # Sent faster than answered: frames waiting behind the one being identified give way to the newest.
        for _ in range(3):
            stream.send_bytes(frame_bytes(("Colin_Powell", 6)))
        hurried = [stream.receive_json()]
        while hurried[-1]["frame"] < 9:
            hurried.append(stream.receive_json())

    assert [a["frame"] for a in answers] == [1, 2, 3] and all(a["dropped"] == 0 for a in answers)
    first, second, pair = (a["faces"] for a in answers)
    assert first[0]["decision"] == "match" and first[0]["match"]["display_name"] == "Colin_Powell"
    assert first[0]["apparent_expression"]["dominant_emotion"] and first[0]["attempt_id"] is None
    # The same person a moment later: the same track, now seen on enough frames to be recorded, once.
    assert second[0]["match"]["display_name"] == "Colin_Powell" and second[0]["track_id"] == first[0]["track_id"]
    assert second[0]["track_frames"] == 2 and second[0]["attempt_id"]
    by_x = sorted(pair, key=lambda face: face["box"]["x"])
    assert [f["decision"] for f in by_x] == ["match", "unknown"] and not any(f["attempt_id"] for f in by_x)
    assert by_x[0]["match"]["display_name"] == "Hugo_Chavez"
    assert len({first[0]["track_id"], *(f["track_id"] for f in by_x)}) == 3
    assert not_a_frame["frame"] == 4 and not_a_frame["error"]["code"] == "not_a_frame"
    assert corrupt["error"]["code"] in {"corrupt_image", "unsupported_media_type"}
    again = sorted(pair_again["faces"], key=lambda face: face["box"]["x"])
    assert [f["track_id"] for f in again] == [f["track_id"] for f in by_x] and all(f["attempt_id"] for f in again)
    assert sum(1 + a["dropped"] for a in hurried) == 3 and sum(a["dropped"] for a in hurried) >= 1, hurried
    recorded = admin.get("/v1/review/attempts", params={"kind": "identify"}).json()
    # Every attempt recorded is one the stream answered with: Colin Powell's track, Hugo Chavez's, the stranger's.
    shown = {f["attempt_id"] for a in [*answers, pair_again, *hurried] for f in a.get("faces") or []}
    assert recorded["total"] == len(shown - {None}) == 3, (recorded["total"], shown)


def test_stream_handshake_needs_a_key_or_a_desk_session_from_this_site(anonymous, desk):
    with pytest.raises(WebSocketDenialResponse) as denied:
        anonymous.websocket_connect("/v1/identify/stream").__enter__()
    assert denied.value.status_code == 401 and denied.value.json()["error"]["code"] == "missing_api_key"
    with pytest.raises(WebSocketDenialResponse) as denied:
        TestClient(anonymous.app).websocket_connect("/desk/stream", headers={"Origin": "http://testserver"}).__enter__()
    assert denied.value.status_code == 401 and denied.value.json()["error"]["code"] == "not_signed_in"
    browser, _ = desk
    with pytest.raises(WebSocketDenialResponse) as denied:
        browser.websocket_connect("/desk/stream", headers={"Origin": "http://elsewhere.example"}).__enter__()
    assert denied.value.status_code == 403
    with browser.websocket_connect("/desk/stream", headers={"Origin": "http://testserver"}) as stream:
        stream.send_text("not a frame")
        assert stream.receive_json()["error"]["code"] == "not_a_frame"


def test_open_streams_close_when_their_key_is_revoked_or_the_desk_signs_out(anonymous, admin, desk):
    from starlette.websockets import WebSocketDisconnect

    key = admin.post("/v1/keys", json={"name": "door camera", "role": "service"}).json()
    with anonymous.websocket_connect("/v1/identify/stream", headers={"X-API-Key": key["key"]}) as stream:
        stream.send_text("not a frame")
        assert stream.receive_json()["error"]["code"] == "not_a_frame"  # open and answering
        assert admin.delete(f"/v1/keys/{key['id']}").status_code == 200
        stream.send_bytes(frame_bytes(("Colin_Powell", 4)))
        with pytest.raises(WebSocketDisconnect) as closed:
            stream.receive_json()
    assert (closed.value.code, closed.value.reason) == (4401, "invalid_api_key")
    assert admin.get("/v1/review/attempts", params={"kind": "identify"}).json()["total"] == 0

    browser, headers = desk
    with browser.websocket_connect("/desk/stream", headers={"Origin": "http://testserver"}) as stream:
        stream.send_text("not a frame")
        assert stream.receive_json()["error"]["code"] == "not_a_frame"
        browser.post("/desk/logout", data={"csrf_token": headers["X-CSRF-Token"]})
        stream.send_bytes(frame_bytes(("Colin_Powell", 4)))
        with pytest.raises(WebSocketDisconnect) as closed:
            stream.receive_json()
    assert (closed.value.code, closed.value.reason) == (4401, "not_signed_in")
    assert admin.get("/v1/review/attempts", params={"kind": "identify"}).json()["total"] == 0
