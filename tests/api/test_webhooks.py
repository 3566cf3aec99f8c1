"""Webhooks: a verdict that overturns a key's decision is POSTed to the key's webhook, signed, retried until the
receiver takes it, and logged. The receiver is a real HTTP server on 127.0.0.1, so these tests allow private
networks (FACEGATE_WEBHOOK_ALLOW_PRIVATE_NETWORKS), except those that check what is refused without it."""

import hashlib
import hmac
import json
import re
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import text

from core.settings import get_settings
from db.session import session_scope
from services.identity import webhooks
from tests.support import client_with_key, lfw_photo, upload


class Receiver:
    """An integrator's endpoint: records every POST (headers, body, when) and answers with the next of `statuses`
    (then 200), or as `answer(handler)` does."""

    def __init__(self, statuses: list[int] = (), answer: Callable[[BaseHTTPRequestHandler], None] | None = None):
        self.statuses, self.received, self.received_at = list(statuses), [], []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((dict(self.headers), body))
                receiver.received_at.append(time.monotonic())
                if answer:
                    answer(self)
                    return
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


@pytest.fixture(autouse=True)
def private_networks_allowed(monkeypatch):
    monkeypatch.setattr(get_settings(), "webhook_allow_private_networks", True)


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
    """What the service's periodic job does, at a chosen time (retries are minutes apart), until all is tried."""
    sender = webhooks.WebhookSender(get_settings())
    try:
        sender.deliver_due(now)
    finally:
        sender.close()


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
    # The same words for every way of not reaching a receiver: the log is no map of what the service can reach.
    assert failed["last_status_code"] is None and failed["last_error"] == "could not connect to the receiver"


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


def queue_event(admin, key_id: str) -> None:
    """A reviewer names the member an unknown face of the key's was: one event for its webhook."""
    member = admin.post("/v1/members", json={"external_id": f"m-{time.monotonic_ns()}", "display_name": "Kim"})
    attempt_id = insert_attempt("identify", "unknown", key_id)
    verdict = {"verdict": "false_non_match", "member_id": member.json()["id"]}
    assert admin.post(f"/v1/review/attempts/{attempt_id}/verdict", json=verdict).status_code == 200


INTERNAL_TARGETS = [
    "http://127.0.0.1/hook",
    "http://2130706433/hook",  # 127.0.0.1 in decimal
    "http://0x7f000001/hook",
    "http://0177.0.0.1/hook",
    "http://127.1/hook",
    "http://localhost:8000/hook",
    "http://[::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://[::ffff:a9fe:a9fe]/hook",  # 169.254.169.254, IPv4-mapped
    "http://169.254.169.254/latest/meta-data/",
    "http://10.1.2.3/hook",
    "http://172.16.0.1/hook",
    "http://192.168.1.10/hook",
    "http://100.64.0.1/hook",
    "http://0.0.0.0:8000/hook",
    "http://[fc00::1]/hook",
    "http://[fe80::1]/hook",
    "http://224.0.0.1/hook",
]


@pytest.mark.parametrize("url", INTERNAL_TARGETS)
def test_webhook_urls_that_reach_inside_are_refused_in_every_spelling(admin, monkeypatch, url):
    monkeypatch.setattr(get_settings(), "webhook_allow_private_networks", False)
    created = admin.post("/v1/keys", json={"name": "door", "role": "service", "webhook_url": url})
    assert created.status_code == 422, created.text
    assert created.json()["error"]["code"] == "webhook_target_not_allowed"
    key = admin.post("/v1/keys", json={"name": "door", "role": "service"}).json()
    changed = admin.put(f"/v1/keys/{key['id']}/webhook", json={"url": url})
    assert changed.status_code == 422 and changed.json()["error"]["code"] == "webhook_target_not_allowed"
    assert admin.get("/v1/keys").json()[-1]["webhook_url"] is None


def test_allowing_private_networks_still_refuses_link_local_and_unspecified(admin):
    for url in ("http://169.254.169.254/latest/", "http://[fe80::1]/hook", "http://0.0.0.0/hook"):
        response = admin.post("/v1/keys", json={"name": "door", "role": "service", "webhook_url": url})
        assert response.status_code == 422 and response.json()["error"]["code"] == "webhook_target_not_allowed"
    assert admin.post(
        "/v1/keys", json={"name": "door", "role": "service", "webhook_url": "http://10.0.0.8/h"}
    ).is_success


def test_the_target_is_checked_again_when_a_delivery_is_tried(admin, receiver, monkeypatch):
    """A name may resolve elsewhere by the time of the try (DNS changes): the try checks before it connects."""
    key = key_with_webhook(admin, receiver.url)
    queue_event(admin, key["id"])
    monkeypatch.setattr(get_settings(), "webhook_allow_private_networks", False)
    deliver_due(datetime.now(UTC))
    assert receiver.received == []
    (refused,) = deliveries(admin, key["id"])
    assert (refused["status"], refused["attempts"]) == ("pending", 1)
    # The same words as a closed port: nothing said about what is behind the service.
    assert refused["last_error"] == "could not connect to the receiver"


def test_a_try_has_one_deadline_however_slowly_the_receiver_answers(admin, monkeypatch):
    def trickle(handler):  # a byte every 0.2 s, for 30 s if let
        handler.wfile.write(b"HTTP/1.1 200 OK\r\n")
        for _ in range(150):
            handler.wfile.write(b"X")
            handler.wfile.flush()
            time.sleep(0.2)

    slow = Receiver(answer=trickle)
    try:
        monkeypatch.setattr(get_settings(), "webhook_timeout_seconds", 1.0)
        key = key_with_webhook(admin, slow.url)
        queue_event(admin, key["id"])
        started = time.monotonic()
        deliver_due(datetime.now(UTC))
        took = time.monotonic() - started
    finally:
        slow.close()
    (timed_out,) = deliveries(admin, key["id"])
    assert (timed_out["status"], timed_out["last_error"]) == ("pending", "no answer within 1 s")
    assert took < 10, f"a 1 s try took {took:.1f} s"  # per read, the 0.2 s bytes would have held it 30 s


def test_a_resolver_that_does_not_answer_ends_with_the_try(admin, monkeypatch):
    """getaddrinfo has no timeout of its own: a hung lookup must not hold the request that sets the URL, nor the
    try, past the try's time."""
    lookup = socket.getaddrinfo

    def hung_for_one_name(host, *args, **kwargs):
        if host == "hung-resolver.example":
            time.sleep(6)
        return lookup(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", hung_for_one_name)
    monkeypatch.setattr(get_settings(), "webhook_timeout_seconds", 1.0)
    started = time.monotonic()
    key = key_with_webhook(admin, "http://hung-resolver.example/hook")  # taken: every try checks again
    queue_event(admin, key["id"])
    deliver_due(datetime.now(UTC))
    took = time.monotonic() - started
    (unanswered,) = deliveries(admin, key["id"])
    assert (unanswered["status"], unanswered["last_error"]) == ("pending", "could not connect to the receiver")
    assert took < 5, f"two 1 s lookups took {took:.1f} s"  # each waited out the 6 s resolver before


def test_the_answer_is_not_read_past_its_headers_nor_decoded(admin):
    """A receiver that answers with an endless (gzip-declared) body: the try ends at the headers."""
    sent = []

    def endless(handler):
        handler.send_response(200)
        handler.send_header("Content-Encoding", "gzip")
        handler.send_header("Content-Length", str(200 * 2**20))
        handler.end_headers()
        try:
            for _ in range(200 * 16):
                handler.wfile.write(b"\0" * 65536)
                sent.append(65536)
        except OSError:  # the service hung up
            pass

    flood = Receiver(answer=endless)
    try:
        key = key_with_webhook(admin, flood.url)
        queue_event(admin, key["id"])
        deliver_due(datetime.now(UTC))
        deadline = time.monotonic() + 10
        while flood.thread.is_alive() and time.monotonic() < deadline and len(sent) < 3200:
            time.sleep(0.1)
    finally:
        flood.close()
    (delivered,) = deliveries(admin, key["id"])
    assert (delivered["status"], delivered["last_status_code"]) == ("delivered", 200)
    headers, _ = flood.received[0]
    assert headers.get("Accept-Encoding", "identity") == "identity"
    assert sum(sent) < 20 * 2**20, f"the receiver could send {sum(sent) / 2**20:.0f} MiB"


def test_a_try_is_counted_before_it_is_sent(admin):
    """The receiver sees the try already counted, and rescheduled: a service killed mid-try does not lose it."""
    seen = []

    def look_at_the_log(handler):
        with session_scope() as session:
            seen.append(
                session.execute(
                    text("SELECT attempts, next_attempt_at > now() + interval '20 seconds' FROM webhook_deliveries")
                ).one()
            )
        handler.send_response(200)
        handler.end_headers()

    watching = Receiver(answer=look_at_the_log)
    try:
        key = key_with_webhook(admin, watching.url)
        queue_event(admin, key["id"])
        deliver_due(datetime.now(UTC))
    finally:
        watching.close()
    assert seen == [(1, True)]
    assert deliveries(admin, key["id"])[0]["status"] == "delivered"


def test_a_slow_receiver_does_not_hold_up_another(admin, monkeypatch):
    monkeypatch.setattr(get_settings(), "webhook_timeout_seconds", 5.0)

    def stall(handler):
        time.sleep(4)
        handler.send_response(200)
        handler.end_headers()

    slow, healthy = Receiver(answer=stall), Receiver()
    try:
        slow_key, healthy_key = key_with_webhook(admin, slow.url), key_with_webhook(admin, healthy.url)
        queue_event(admin, slow_key["id"])
        queue_event(admin, slow_key["id"])
        queue_event(admin, healthy_key["id"])
        started = time.monotonic()
        deliver_due(datetime.now(UTC))
    finally:
        slow.close()
        healthy.close()
    assert len(healthy.received) == 1 and len(slow.received) == 2
    assert healthy.received_at[0] - started < 2, "the healthy receiver waited for the slow one"
    assert {d["status"] for d in deliveries(admin, slow_key["id"]) + deliveries(admin, healthy_key["id"])} == {
        "delivered"
    }


def test_retries_follow_the_url_and_secret_and_stop_at_revocation(admin):
    old, new = Receiver([500]), Receiver()
    try:
        key = key_with_webhook(admin, old.url)
        queue_event(admin, key["id"])
        now = datetime.now(UTC)
        deliver_due(now)  # 500: to be retried
        changed = admin.put(f"/v1/keys/{key['id']}/webhook", json={"url": new.url}).json()
        deliver_due(now + timedelta(minutes=5))
        assert len(old.received) == 1 and len(new.received) == 1
        headers, body = new.received[0]
        verify_signature(changed["secret"], headers, body)
        (delivered,) = deliveries(admin, key["id"])
        assert (delivered["status"], delivered["url"]) == ("delivered", new.url)

        queue_event(admin, key["id"])
        assert admin.delete(f"/v1/keys/{key['id']}").status_code == 200
        deliver_due(now + timedelta(minutes=10))
        assert len(new.received) == 1
        stopped = deliveries(admin, key["id"])[0]
        assert (stopped["status"], stopped["last_error"]) == ("failed", "the key was revoked")
    finally:
        old.close()
        new.close()


def test_webhook_credentials_are_not_shown_in_listings_logs_audit_or_delivery_log(admin, caplog):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://hookuser:hunter2-secret@127.0.0.1:{port}/events/T0AB12CD3/Xq9fG2hLk8mN3pR5sT7v?token=tok-secret&v=2"
    key = admin.post("/v1/keys", json={"name": "door", "role": "service", "webhook_url": url}).json()
    assert key["webhook_url"] == f"http://***@127.0.0.1:{port}/events/T0AB12CD3/***?token=***&v=***"
    queue_event(admin, key["id"])
    with caplog.at_level("INFO"):
        deliver_due(datetime.now(UTC))
    shown = [
        admin.get("/v1/keys").text,
        admin.get("/v1/audit").text,
        admin.get(f"/v1/keys/{key['id']}/webhook/deliveries").text,
        caplog.text,
    ]
    for text_shown in shown:
        assert not {"hunter2-secret", "tok-secret", "Xq9fG2hLk8mN3pR5sT7v"} & set(re.findall(r"[\w-]+", text_shown))
    assert key["webhook_url"] in shown[0] and key["webhook_url"] in shown[1] and key["webhook_url"] in shown[2]
    assert f"127.0.0.1:{port}" in caplog.text  # the operator's log still says where it went
