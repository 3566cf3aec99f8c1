"""Webhooks: an integrator's backend hears when a reviewer overturns a decision the service gave its key (a match
later marked false, a signup later confirmed as a duplicate of another member, an unknown that was a member).

Each API key may have a webhook URL and a secret. A verdict that contradicts the recorded decision, or withdraws
such a verdict, queues one delivery per event in webhook_deliveries (in the verdict's own transaction, so an
event exists exactly when its verdict does). A periodic job (api.lifespan) POSTs the due ones as JSON, signed:

    X-FaceGate-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" under the secret>

A 2xx answer delivers; anything else is retried after webhook_retry_seconds, doubling, up to
webhook_max_attempts tries. Every try is written to the delivery (status code or error): the delivery log."""

import hashlib
import hmac
import json
import secrets
import time
import uuid
from datetime import datetime, timedelta

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.enums import DeliveryStatus, ReviewStatus
from core.settings import Settings
from db.models import ApiKey, Attempt, WebhookDelivery
from services.identity import audit

VERDICT_EVENT = "review.verdict_changed_decision"
# Verdicts that say the service decided wrongly.
OVERTURNING = {ReviewStatus.FALSE_MATCH, ReviewStatus.FALSE_NON_MATCH}


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The X-FaceGate-Signature header of a body sent at `timestamp`."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def set_webhook(session: Session, key: ApiKey, url: str | None, *, actor: ApiKey | None) -> str | None:
    """Point the key's webhook at `url` with a new secret (returned, to be shown once), or remove it (None)."""
    key.webhook_url = url
    key.webhook_secret = "whsec_" + secrets.token_urlsafe(32) if url else None
    audit.record(session, actor, "key.webhook", "api_key", key.id, url=url)
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


def deliver_next(session: Session, settings: Settings, http: httpx.Client, now: datetime) -> WebhookDelivery | None:
    """Try the most overdue pending delivery, if one is due; the row stays locked for the try (other workers
    skip it). Returns the delivery tried."""
    delivery = session.scalar(
        select(WebhookDelivery)
        .where(WebhookDelivery.status == DeliveryStatus.PENDING, WebhookDelivery.next_attempt_at <= now)
        .order_by(WebhookDelivery.next_attempt_at)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    if delivery is None:
        return None
    key = session.get(ApiKey, delivery.key_id)
    delivery.attempts += 1
    if key is None or key.webhook_secret is None:
        delivery.status, delivery.last_error = DeliveryStatus.FAILED, "the key's webhook was removed"
        return delivery
    body = json.dumps({**delivery.payload, "delivery_id": str(delivery.id)}).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "FaceGate-Webhook",
        "X-FaceGate-Event": delivery.event,
        "X-FaceGate-Delivery": str(delivery.id),
        "X-FaceGate-Signature": sign(key.webhook_secret, int(time.time()), body),
    }
    try:
        response = http.post(delivery.url, content=body, headers=headers, timeout=settings.webhook_timeout_seconds)
        delivery.last_status_code, delivery.last_error = response.status_code, None
        delivered = response.is_success
    except httpx.HTTPError as exc:
        delivery.last_status_code, delivery.last_error = None, f"{exc.__class__.__name__}: {exc}"[:1000]
        delivered = False
    if delivered:
        delivery.status, delivery.delivered_at = DeliveryStatus.DELIVERED, now
    elif delivery.attempts >= settings.webhook_max_attempts:
        delivery.status = DeliveryStatus.FAILED
    else:
        delay = settings.webhook_retry_seconds * 2 ** (delivery.attempts - 1)
        delivery.next_attempt_at = now + timedelta(seconds=delay)
    return delivery
