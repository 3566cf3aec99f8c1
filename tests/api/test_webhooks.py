"""Webhooks: a verdict that overturns a key's decision is POSTed to the key's webhook, signed, retried until the
receiver takes it, and logged. The receiver is a real HTTP server on 127.0.0.1."""

import hashlib
import hmac
import json
import socket
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from sqlalchemy import text

from core.settings import get_settings
from db.session import session_scope
from services.identity import webhooks
from tests.support import client_with_key, lfw_photo, upload


class Receiver:
    """An integrator's endpoint: records every POST and answers with the next of `statuses` (then 200)."""

    def __init__(self, statuses: list[int]):
        self.statuses, self.received = list(statuses), []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((dict(self.headers), body))
                self.send_response(receiver.statuses.pop(0) if receiver.statuses else 200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/facegate-events"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    started = Receiver([500])  # the first try fails: the second must come
    yield started
    started.close()


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/gone"


def deliver_due(now: datetime) -> None:
    """What the service's periodic job does, at a chosen time (retries are minutes apart)."""
    with httpx.Client() as http:
        while True:
            with session_scope() as session:
                if webhooks.deliver_next(session, get_settings(), http, now) is None:
                    return


def key_with_webhook(admin, url: str) -> dict:
    response = admin.post("/v1/keys", json={"name": "door system", "role": "service", "webhook_url": url})
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["webhook_url"] == url and created["webhook_secret"].startswith("whsec_")
    return created


def deliveries(admin, key_id: str) -> list[dict]:
    response = admin.get(f"/v1/keys/{key_id}/webhook/deliveries")
    assert response.status_code == 200, response.text
    return response.json()


def verify_signature(secret: str, headers: dict, body: bytes) -> None:
    fields = dict(part.split("=", 1) for part in headers["X-FaceGate-Signature"].split(","))
    expected = hmac.new(secret.encode(), f"{fields['t']}.".encode() + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(fields["v1"], expected)


@pytest.mark.models
def test_a_false_match_reaches_the_keys_webhook_signed_and_retried(anonymous, admin, receiver):
    key = key_with_webhook(admin, receiver.url)
    door = client_with_key(anonymous.app, key["key"])
    gates = door.post(
        "/v1/members",
        data={"external_id": "gates", "display_name": "Bill Gates"},
        files=[("file", (f"{n}.jpg", lfw_photo("Bill_Gates", n), "image/jpeg")) for n in (1, 2)],
    ).json()
    (face,) = door.post(
        "/v1/identify", files=upload(lfw_photo("Donald_Rumsfeld", 1)), params={"threshold": 1.5}
    ).json()["faces"]
    assert face["match"]["member_id"] == gates["id"]
    (genuine,) = door.post("/v1/identify", files=upload(lfw_photo("Bill_Gates", 3))).json()["faces"]

    # A verdict that agrees with the decision is no event; one that overturns it is.
    admin.post(f"/v1/review/attempts/{genuine['attempt_id']}/verdict", json={"verdict": "correct"})
    assert deliveries(admin, key["id"]) == []
    admin.post(f"/v1/review/attempts/{face['attempt_id']}/verdict", json={"verdict": "false_match"})
    (queued,) = deliveries(admin, key["id"])
    assert queued["status"] == "pending" and queued["url"] == receiver.url

    now = datetime.now(UTC)
    deliver_due(now)  # answered 500
    (failed_once,) = deliveries(admin, key["id"])
    assert (failed_once["status"], failed_once["attempts"], failed_once["last_status_code"]) == ("pending", 1, 500)
    assert datetime.fromisoformat(failed_once["next_attempt_at"]) > now + timedelta(seconds=25)
    deliver_due(now + timedelta(seconds=31))  # the retry: 200
    (delivered,) = deliveries(admin, key["id"])
    assert (delivered["status"], delivered["attempts"], delivered["last_status_code"]) == ("delivered", 2, 200)

    assert len(receiver.received) == 2
    headers, body = receiver.received[-1]
    verify_signature(key["webhook_secret"], headers, body)
    assert headers["X-FaceGate-Event"] == "review.verdict_changed_decision"
    assert headers["X-FaceGate-Delivery"] == delivered["id"] == receiver.received[0][0]["X-FaceGate-Delivery"]
    event = json.loads(body)
    assert event["attempt_id"] == face["attempt_id"] and event["delivery_id"] == delivered["id"]
    assert (event["kind"], event["decision"], event["matched_member_id"]) == ("identify", "match", gates["id"])
    assert (event["previous_verdict"], event["verdict"]) == ("pending", "false_match")

    # Taking the verdict back is an event too.
    admin.post(f"/v1/review/attempts/{face['attempt_id']}/verdict", json={"verdict": "correct"})
    withdrawn = deliveries(admin, key["id"])[0]["payload"]
    assert (withdrawn["previous_verdict"], withdrawn["verdict"]) == ("false_match", "correct")


def insert_attempt(kind: str, decision: str, caller_key_id: str) -> str:
    zero = "[" + ",".join(["0"] * 127 + ["1"]) + "]"
    with session_scope() as session:
        return str(
            session.execute(
                text(
                    "INSERT INTO attempts (id, request_id, kind, face_index, box, detection_score, probe_embedding,"
                    "                      candidates, threshold, decision, needs_review, caller_key_id) "
                    'VALUES (gen_random_uuid(), gen_random_uuid(), :kind, 0, \'{"x": 0, "y": 0, "width": 60,'
                    " \"height\": 60}', 0.99, CAST(:zero AS vector), '[]', 0.5, :decision, true, :key) RETURNING id"
                ),
                {"kind": kind, "decision": decision, "zero": zero, "key": caller_key_id},
            ).scalar_one()
        )


def test_a_confirmed_duplicate_signup_is_an_event_and_an_unreachable_webhook_fails_after_its_tries(admin, client):
    key = key_with_webhook(admin, closed_port_url())
    existing = client.post("/v1/members", json={"external_id": "emp-1", "display_name": "Ada"}).json()
    # A signup queued as a possible duplicate (kind enroll), made with the key that has the webhook.
    attempt_id = insert_attempt("enroll", "enrolled", key["id"])
    response = admin.post(
        f"/v1/review/attempts/{attempt_id}/verdict", json={"verdict": "false_non_match", "member_id": existing["id"]}
    )
    assert response.status_code == 200, response.text
    (queued,) = deliveries(admin, key["id"])
    assert (queued["payload"]["kind"], queued["payload"]["member_id"]) == ("enroll", existing["id"])

    settings = get_settings()
    now = datetime.now(UTC)
    for _ in range(settings.webhook_max_attempts):
        now += timedelta(days=1)  # past any retry delay
        deliver_due(now)
    (failed,) = deliveries(admin, key["id"])
    assert (failed["status"], failed["attempts"]) == ("failed", settings.webhook_max_attempts)
    assert failed["last_status_code"] is None and "ConnectError" in failed["last_error"]


def test_webhook_can_be_changed_removed_and_must_be_a_url(admin):
    key = key_with_webhook(admin, closed_port_url())
    changed = admin.put(f"/v1/keys/{key['id']}/webhook", json={"url": "https://example.test/hook"}).json()
    assert changed["key"]["webhook_url"] == "https://example.test/hook"
    assert changed["secret"] != key["webhook_secret"]
    attempt_id = insert_attempt("identify", "unknown", key["id"])
    member = admin.post("/v1/members", json={"external_id": "emp-2", "display_name": "Grace"}).json()
    admin.post(
        f"/v1/review/attempts/{attempt_id}/verdict", json={"verdict": "false_non_match", "member_id": member["id"]}
    )

    removed = admin.put(f"/v1/keys/{key['id']}/webhook", json={"url": None}).json()
    assert removed == {"key": {**removed["key"], "webhook_url": None}, "secret": None}
    deliver_due(datetime.now(UTC))
    (dropped,) = deliveries(admin, key["id"])
    assert dropped["status"] == "failed" and dropped["last_error"] == "the key's webhook was removed"

    bad = admin.put(f"/v1/keys/{key['id']}/webhook", json={"url": "not a url"})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "validation_error"
    unknown = admin.get("/v1/keys/00000000-0000-0000-0000-000000000000/webhook/deliveries")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "api_key_not_found"
