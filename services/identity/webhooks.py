"""Webhooks: an integrator's backend hears when a reviewer overturns a decision the service gave its key (a match
later marked false, a signup later confirmed as a duplicate of another member, an unknown that was a member).

Each API key may have a webhook URL and a secret. A verdict that contradicts the recorded decision, or withdraws
such a verdict, queues one delivery per event in webhook_deliveries (in the verdict's own transaction, so an
event exists exactly when its verdict does). A periodic job (api.lifespan) POSTs the due ones as JSON, signed:

    X-FaceGate-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" under the secret>

A 2xx answer delivers; anything else is retried after webhook_retry_seconds, doubling, up to
webhook_max_attempts tries. Every try is written to the delivery (status code or error): the delivery log.
Webhook URLs may carry credentials: logs, listings, the audit trail and the delivery log show them redacted
(core.logs.redact_url); the receiver's address is checked when the URL is set and at every try
(services.identity.webhook_transport)."""

import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.enums import DeliveryStatus, ReviewStatus
from core.errors import UnprocessableError
from core.logs import redact_url
from core.settings import Settings
from db.models import ApiKey, Attempt, WebhookDelivery
from db.session import session_scope
from services.identity import audit, webhook_transport

log = logging.getLogger(__name__)

VERDICT_EVENT = "review.verdict_changed_decision"
# Verdicts that say the service decided wrongly.
OVERTURNING = {ReviewStatus.FALSE_MATCH, ReviewStatus.FALSE_NON_MATCH}


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The X-FaceGate-Signature header of a body sent at `timestamp`."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def check_target(url: str, settings: Settings) -> None:
    """Refuse a URL whose host resolves to an address webhooks may not reach (webhook_transport.address_allowed).
    A name that does not resolve (yet), or not within a try's time, is taken: every try checks again before it
    connects."""
    parts = urlsplit(url)
    host = (parts.hostname or "").strip("[]")
    try:
        webhook_transport.allowed_addresses(
            host,
            parts.port or 443,
            allow_private=settings.webhook_allow_private_networks,
            timeout_s=settings.webhook_timeout_seconds,
        )
    except webhook_transport.TargetRefused as exc:
        raise UnprocessableError(
            "The webhook URL's host is a loopback, private, link-local or otherwise internal address, which"
            " webhooks may not reach (an operator can allow private networks: FACEGATE_WEBHOOK_ALLOW_PRIVATE_NETWORKS).",
            code="webhook_target_not_allowed",
        ) from exc
    except (OSError, ValueError, webhook_transport.LookupTimedOut):  # no such name (yet), or no resolver answer
        return


def set_webhook(
    session: Session, settings: Settings, key: ApiKey, url: str | None, *, actor: ApiKey | None
) -> str | None:
    """Point the key's webhook at `url` with a new secret (returned, to be shown once), or remove it (None).
    Pending deliveries follow: each try goes to the key's URL of the moment, signed with its secret."""
    if url:
        check_target(url, settings)
    key.webhook_url = url
    key.webhook_secret = "whsec_" + secrets.token_urlsafe(32) if url else None
    audit.record(session, actor, "key.webhook", "api_key", key.id, url=redact_url(url) if url else None)
    session.flush()
    return key.webhook_secret


def verdict_given(
    session: Session, attempt: Attempt, previous: ReviewStatus, *, member_id: uuid.UUID | None
) -> WebhookDelivery | None:
    """Queue the event for the webhook of the key behind the attempt when the verdict overturns its decision or
    withdraws an earlier verdict that did. `member_id`: the member a false_non_match names."""
    verdict = ReviewStatus(attempt.review_status)
    if verdict == previous or not ({verdict, previous} & OVERTURNING) or attempt.caller_key_id is None:
        return None
    key = session.get(ApiKey, attempt.caller_key_id)
    if key is None or key.webhook_url is None or key.revoked_at is not None:
        return None
    payload = {
        "event": VERDICT_EVENT,
        "attempt_id": str(attempt.id),
        "request_id": str(attempt.request_id),
        "kind": attempt.kind,
        "decision": attempt.decision,
        "claimed_member_id": str(attempt.claimed_member_id) if attempt.claimed_member_id else None,
        "matched_member_id": str(attempt.matched_member_id) if attempt.matched_member_id else None,
        "previous_verdict": previous,
        "verdict": verdict,
        "member_id": str(member_id) if member_id else None,
        "reviewed_at": attempt.reviewed_at.isoformat() if attempt.reviewed_at else None,
    }
    delivery = WebhookDelivery(key_id=key.id, event=VERDICT_EVENT, url=key.webhook_url, payload=payload)
    session.add(delivery)
    return delivery


def deliveries(session: Session, key_id: uuid.UUID, *, limit: int) -> list[WebhookDelivery]:
    query = select(WebhookDelivery).where(WebhookDelivery.key_id == key_id)
    return list(session.scalars(query.order_by(WebhookDelivery.created_at.desc()).limit(limit)))


@dataclass(frozen=True)
class Try:
    """One try of one delivery, claimed and counted: sent after the claim's transaction has committed."""

    delivery_id: uuid.UUID
    key_id: uuid.UUID
    url: str
    headers: dict[str, str]
    body: bytes


def claim_due(
    session: Session, settings: Settings, now: datetime, *, limit: int, busy_keys: set[uuid.UUID]
) -> list[Try]:
    """Up to `limit` due deliveries, at most one per key and none of `busy_keys` (a slow receiver holds only its
    own deliveries back), counted as tried and given their next time before they are sent: a try cut off (a kill
    -9 of the service) counts, and is tried again only after its retry delay. Each goes to its key's current URL,
    signed with its current secret; deliveries of revoked keys, or keys whose webhook was removed, fail here."""
    candidates = session.scalars(
        select(WebhookDelivery)
        .where(WebhookDelivery.status == DeliveryStatus.PENDING, WebhookDelivery.next_attempt_at <= now)
        .order_by(WebhookDelivery.next_attempt_at)
        .limit(limit * 4)  # room for several deliveries of one key among them
        .with_for_update(skip_locked=True)
    )
    tries: list[Try] = []
    for delivery in candidates:
        if len(tries) == limit:
            break
        if delivery.key_id in busy_keys or any(t.key_id == delivery.key_id for t in tries):
            continue
        key = session.get(ApiKey, delivery.key_id)
        if key is None or key.revoked_at is not None:
            delivery.status, delivery.last_error = DeliveryStatus.FAILED, "the key was revoked"
        elif key.webhook_url is None or key.webhook_secret is None:
            delivery.status, delivery.last_error = DeliveryStatus.FAILED, "the key's webhook was removed"
        elif delivery.attempts >= settings.webhook_max_attempts:  # its last try was cut off
            delivery.status = DeliveryStatus.FAILED
        else:
            delivery.attempts += 1
            delivery.url = key.webhook_url
            delivery.next_attempt_at = now + timedelta(
                seconds=settings.webhook_retry_seconds * 2 ** (delivery.attempts - 1)
            )
            body = json.dumps({**delivery.payload, "delivery_id": str(delivery.id)}).encode()
            headers = {
                "Content-Type": "application/json",
                "User-Agent": "FaceGate-Webhook",
                "X-FaceGate-Event": delivery.event,
                "X-FaceGate-Delivery": str(delivery.id),
                "X-FaceGate-Signature": sign(key.webhook_secret, int(time.time()), body),
            }
            tries.append(Try(delivery.id, key.id, key.webhook_url, headers, body))
    return tries


def send(attempt: Try, settings: Settings) -> webhook_transport.Answer:
    answer = webhook_transport.post(
        attempt.url,
        attempt.body,
        attempt.headers,
        timeout_s=settings.webhook_timeout_seconds,
        allow_private=settings.webhook_allow_private_networks,
    )
    if answer.error:
        log.warning(
            "webhook delivery %s to %s got no answer: %s",
            attempt.delivery_id,
            redact_url(attempt.url),
            answer.detail or answer.error,
        )
    return answer


def record_answer(
    session: Session, settings: Settings, attempt: Try, answer: webhook_transport.Answer, now: datetime
) -> WebhookDelivery | None:
    """Write how the try went into the delivery log: delivered on a 2xx, failed after the last try, else pending
    until the next time its claim set."""
    delivery = session.get(WebhookDelivery, attempt.delivery_id, with_for_update=True)
    if delivery is None:  # its key was deleted meanwhile
        return None
    delivery.last_status_code, delivery.last_error = answer.status_code, answer.error
    if answer.status_code is not None and 200 <= answer.status_code < 300:
        delivery.status, delivery.delivered_at = DeliveryStatus.DELIVERED, now
    elif delivery.attempts >= settings.webhook_max_attempts:
        delivery.status = DeliveryStatus.FAILED
    return delivery


class WebhookSender:
    """Sends due deliveries on up to webhook_concurrency threads at once, one per key at a time: a receiver that
    answers slowly (each try ends by its deadline) delays only its own deliveries. A thread that finishes a try
    claims the next due one at once; the service's periodic job (api.lifespan) starts the rest."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._threads = ThreadPoolExecutor(settings.webhook_concurrency, thread_name_prefix="webhook")
        self._changed = threading.Condition()
        self._busy_keys: set[uuid.UUID] = set()
        self._closed = False

    def dispatch(self, now: datetime) -> int:
        """Claim what is due at `now` for the free threads and start sending it; how many tries started."""
        with self._changed:
            free = self.settings.webhook_concurrency - len(self._busy_keys)
            if self._closed or free <= 0:
                return 0
            busy = set(self._busy_keys)
            with session_scope() as session:
                tries = claim_due(session, self.settings, now, limit=free, busy_keys=busy)
            self._busy_keys |= {t.key_id for t in tries}
        for attempt in tries:
            self._threads.submit(self._try, attempt, now)
        return len(tries)

    def _try(self, attempt: Try, now: datetime) -> None:
        try:
            answer = send(attempt, self.settings)
            with session_scope() as session:
                record_answer(session, self.settings, attempt, answer, now)
        except Exception:  # the try stays counted and is retried at its next time
            log.exception("webhook delivery %s failed", attempt.delivery_id)
        with self._changed:
            self._busy_keys.discard(attempt.key_id)
        try:
            self.dispatch(now)  # this thread is free: the next due delivery need not wait for the periodic job
        except Exception:
            log.exception("claiming webhook deliveries failed")
        with self._changed:
            self._changed.notify_all()  # after the claim above, so deliver_due sees what it started

    def deliver_due(self, now: datetime) -> None:
        """Send everything due at `now` and wait until all of it has been tried (the CLI and tests)."""
        self.dispatch(now)
        with self._changed:
            self._changed.wait_for(lambda: not self._busy_keys)

    def close(self) -> None:
        """Start no more tries; those under way end by their deadline (the shutdown does not wait for them)."""
        with self._changed:
            self._closed = True
        self._threads.shutdown(wait=False, cancel_futures=True)
