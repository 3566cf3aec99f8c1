"""facegate_client against the real service, in process: every operation round-trips through the app, its
database and its models; refusals come back as FaceGateAPIError with the service's code."""

import time

import httpx
import pytest
from fastapi.testclient import TestClient

from facegate_client import FaceGate, FaceGateAPIError, NewMember
from tests.support import LFW_IMAGES, lfw_photo

BASE_URL = "http://testserver"  # the TestClient's; the client sends absolute URLs to it


@pytest.fixture
def service(anonymous, service_key):
    with FaceGate(BASE_URL, service_key, http=TestClient(anonymous.app)) as facegate:
        yield facegate


@pytest.fixture
def admin_client(anonymous, admin_key):
    with FaceGate(BASE_URL, admin_key, http=TestClient(anonymous.app)) as facegate:
        yield facegate


def photo_path(person: str, number: int):
    return LFW_IMAGES / person / f"{person}_{number:04d}.jpg"


def refusal(call, *args, **kwargs) -> FaceGateAPIError:
    with pytest.raises(FaceGateAPIError) as raised:
        call(*args, **kwargs)
    return raised.value


def test_members_without_photos_round_trip(service):
    member = service.signup("emp-1", "Ada L.", metadata={"team": "ops"}, consent_text_version="v1")
    assert member["faces"] == [] and member["metadata"] == {"team": "ops"}
    assert member["consent"] is not None and member["consent"]["text_version"] == "v1"
    assert service.get_member(member["id"])["display_name"] == "Ada L."
    service.signup("emp-2", "Grace H.")
    page = service.list_members(limit=1)
    assert page["total"] == 2 and len(page["items"]) == 1
    assert [m["id"] for m in service.list_members(external_id="emp-1")["items"]] == [member["id"]]
    updated = service.update_member(member["id"], display_name="Ada Lovelace")
    assert updated["display_name"] == "Ada Lovelace" and updated["metadata"] == {"team": "ops"}

    duplicate = refusal(service.signup, "emp-1", "Someone else")
    assert (duplicate.status_code, duplicate.code) == (409, "duplicate_external_id")
    forbidden = refusal(service.signup, "emp-3", "Someone else", allow_duplicate=True)
    assert (forbidden.status_code, forbidden.code) == (403, "allow_duplicate_forbidden")
    exported = service.export_member(member["id"])
    assert exported["member"]["id"] == member["id"] and exported["faces"] == [] and exported["attempts"] == []
    assert [e["action"] for e in exported["audit"]] == ["member.consent", "member.update"]
    service.delete_member(member["id"])  # the member system erases
    gone = refusal(service.get_member, member["id"])
    assert (gone.status_code, gone.code, gone.details["member_id"]) == (404, "member_not_found", member["id"])


def test_key_and_url_come_from_the_environment(anonymous, service_key, monkeypatch):
    monkeypatch.setenv("FACEGATE_URL", BASE_URL)
    monkeypatch.setenv("FACEGATE_API_KEY", service_key)
    with FaceGate(http=TestClient(anonymous.app)) as facegate:
        assert facegate.base_url == BASE_URL
        assert facegate.list_members()["total"] == 0
        assert facegate.ready()
    monkeypatch.delenv("FACEGATE_API_KEY")
    with FaceGate(http=TestClient(anonymous.app)) as keyless:
        assert refusal(keyless.list_members).code == "missing_api_key"
    with FaceGate(api_key="fg_not_a_key", http=TestClient(anonymous.app)) as wrong:
        assert refusal(wrong.list_members).code == "invalid_api_key"


class UnavailableAtFirst(httpx.BaseTransport):
    """A proxy in front of the service that answers 503 (with Retry-After) to the first `refusals` requests, as
    one does while the service restarts, then passes requests through to the app."""

    def __init__(self, app_client: TestClient, refusals: int, retry_after: str):
        self.app_client, self.refusals, self.retry_after = app_client, refusals, retry_after
        self.requests = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        if self.requests <= self.refusals:
            return httpx.Response(503, headers={"Retry-After": self.retry_after}, text="<h1>restarting</h1>")
        forwarded = self.app_client.request(
            request.method, str(request.url), headers=request.headers, content=request.read()
        )
        return httpx.Response(forwarded.status_code, headers=forwarded.headers, content=forwarded.content)


def test_503_is_retried_after_retry_after(anonymous, service_key):
    proxy = UnavailableAtFirst(TestClient(anonymous.app), refusals=2, retry_after="1")
    with FaceGate(BASE_URL, service_key, http=httpx.Client(transport=proxy)) as facegate:
        start = time.monotonic()
        member = facegate.signup("emp-3", "Retried")
        assert time.monotonic() - start >= 2.0  # two waits of the 1 s the proxy asked for
    assert proxy.requests == 3 and member["external_id"] == "emp-3"

    never = UnavailableAtFirst(TestClient(anonymous.app), refusals=10, retry_after="0")
    with FaceGate(BASE_URL, service_key, retries=2, http=httpx.Client(transport=never)) as facegate:
        error = refusal(facegate.list_members)
    assert never.requests == 3 and (error.status_code, error.code) == (503, "http_error")
    assert "restarting" in error.message


@pytest.mark.models
def test_faces_identify_verify_and_detect_round_trip(service, admin_client):
    # Photos as paths and as bytes.
    member = service.signup(
        "gates", "Bill Gates", photos=[photo_path("Bill_Gates", 1), lfw_photo("Bill_Gates", 2)], metadata={"n": 1}
    )
    assert len(member["faces"]) == 2 and member["template_faces"] == 2
    face = service.add_face(member["id"], photo_path("Bill_Gates", 3))
    assert service.face_crop(member["id"], face["id"])[:2] == b"\xff\xd8"  # a JPEG
    assert admin_client.set_face_enabled(member["id"], face["id"], False)["enabled"] is False
    assert service.get_member(member["id"])["template_faces"] == 2
    assert admin_client.set_face_enabled(member["id"], face["id"], True)["enabled"] is True
    service.delete_face(member["id"], face["id"])
    assert len(service.get_member(member["id"])["faces"]) == 2

    (identified,) = service.identify(lfw_photo("Bill_Gates", 4), top_k=2)["faces"]
    assert identified["decision"] == "match" and identified["match"]["member_id"] == member["id"]
    verified = service.verify(member["id"], photo_path("Bill_Gates", 5))
    assert verified["match"] is True and verified["faces_in_photo"] == 1
    (detected,) = service.detect(lfw_photo("Angelina_Jolie", 1))["faces"]
    assert detected["box"]["width"] > 40 and detected["apparent_expression"]["dominant_emotion"]
    larger = int(detected["box"]["width"]) + 1  # than her face: left out
    assert service.detect(lfw_photo("Angelina_Jolie", 1), min_face_size=larger)["faces"] == []
    assert service.identify(lfw_photo("Bill_Gates", 4), min_face_size=200)["faces"] == []

    no_face = refusal(service.add_face, member["id"], b"not an image")
    assert no_face.status_code == 415 and no_face.code == "unsupported_media_type"
    refused = refusal(service.signup, "blank", "Nobody", photos=[lfw_photo("Bill_Gates", 1)[:200]])
    assert (refused.status_code, refused.code, refused.details["photo_index"]) == (400, "corrupt_image", 0)


@pytest.mark.models
def test_signup_batch_round_trip(service):
    members = [
        NewMember("gates", "Bill Gates", {"n": 1}, [photo_path("Bill_Gates", 1), lfw_photo("Bill_Gates", 2)]),
        NewMember("blank", "Nobody", photos=[b"not an image"]),
        NewMember("no-photos", "Ada L."),
    ]
    answer = service.signup_batch(members)
    assert [(i["status"], i["faces"]) for i in answer["items"]] == [("created", 2), ("error", None), ("created", 0)]
    assert answer["items"][1]["error"]["code"] == "unsupported_media_type"
    assert service.get_member(answer["items"][0]["member_id"])["metadata"] == {"n": 1}
    again = service.signup_batch(members[::2])
    assert [i["status"] for i in again["items"]] == ["exists", "exists"] and again["exists"] == 2
    too_many = refusal(service.signup_batch, [NewMember(f"m-{n}", "Many") for n in range(33)])
    assert (too_many.status_code, too_many.code) == (422, "too_many_members")


@pytest.mark.models
def test_review_and_blacklist_round_trip(service, admin_client):
    victim = service.signup("gates", "Bill Gates", photos=[lfw_photo("Bill_Gates", n) for n in (1, 2)])
    # At a loose fixed threshold this impostor matches Bill Gates (tests/test_admin_browser.py).
    (face,) = service.identify(lfw_photo("Donald_Rumsfeld", 1), threshold=1.5)["faces"]
    assert face["match"] is not None and face["match"]["member_id"] == victim["id"]

    forbidden = refusal(service.review_queue)
    assert (forbidden.status_code, forbidden.code) == (403, "forbidden")
    queue = admin_client.review_queue(status="pending", kind="identify")
    assert [a["id"] for a in queue["items"]] == [face["attempt_id"]]
    item = admin_client.review_item(face["attempt_id"])
    assert item["member"] is not None and item["member"]["id"] == victim["id"] and len(item["member_faces"]) == 2

    marked = admin_client.give_verdict(face["attempt_id"], "false_match", note="not him")
    assert marked["attempt"]["review_status"] == "false_match"
    (entry,) = admin_client.blacklist(member_id=victim["id"])
    assert entry["attempt_id"] == face["attempt_id"] and entry["note"] == "not him"
    admin_client.remove_blacklist_entry(entry["id"])
    assert admin_client.blacklist() == []
    assert admin_client.review_item(face["attempt_id"])["attempt"]["review_status"] == "pending"
    contradiction = refusal(admin_client.give_verdict, face["attempt_id"], "false_non_match", member_id=victim["id"])
    assert (contradiction.status_code, contradiction.code) == (409, "not_a_non_match")
