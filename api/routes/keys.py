"""API keys and their webhooks (admin)."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from api.deps import AdminCaller, SessionDep, SettingsDep, require_role
from api.schemas import KeyCreate, KeyCreated, KeyOut, WebhookDeliveryOut, WebhookIn, WebhookSet
from core.enums import Role
from services.identity import auth, webhooks

router = APIRouter(prefix="/v1/keys", tags=["keys"], dependencies=[Depends(require_role(Role.ADMIN))])


@router.post("", status_code=201, response_model=KeyCreated, operation_id="keys-create")
def create_key(body: KeyCreate, session: SessionDep, settings: SettingsDep, caller: AdminCaller) -> KeyCreated:
    key, raw = auth.create_key(session, name=body.name, role=body.role, actor=caller)
    url = str(body.webhook_url) if body.webhook_url else None
    secret = webhooks.set_webhook(session, settings, key, url, actor=caller) if url else None
    return KeyCreated(**KeyOut.model_validate(key).model_dump(), key=raw, webhook_secret=secret)


@router.get("", response_model=list[KeyOut], operation_id="keys-list")
def list_keys(session: SessionDep) -> list[KeyOut]:
    return [KeyOut.model_validate(k) for k in auth.list_keys(session)]


@router.delete("/{key_id}", response_model=KeyOut, operation_id="keys-revoke")
def revoke_key(key_id: uuid.UUID, session: SessionDep, caller: AdminCaller) -> KeyOut:
    return KeyOut.model_validate(auth.revoke_key(session, key_id, actor=caller))


@router.put("/{key_id}/webhook", response_model=WebhookSet, operation_id="keys-set-webhook")
def set_webhook(
    key_id: uuid.UUID, body: WebhookIn, session: SessionDep, settings: SettingsDep, caller: AdminCaller
) -> WebhookSet:
    """Point the key's webhook at a URL, with a new signing secret (shown this once), or remove it (url: null).
    Refused (422 webhook_target_not_allowed) when its host resolves to an internal address."""
    key = auth.get_key(session, key_id)
    secret = webhooks.set_webhook(session, settings, key, str(body.url) if body.url else None, actor=caller)
    return WebhookSet(key=KeyOut.model_validate(key), secret=secret)


@router.get(
    "/{key_id}/webhook/deliveries", response_model=list[WebhookDeliveryOut], operation_id="keys-webhook-deliveries"
)
def webhook_deliveries(
    key_id: uuid.UUID, session: SessionDep, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> list[WebhookDeliveryOut]:
    """The delivery log of the key's webhook, newest first: each event, its tries and the last answer."""
    auth.get_key(session, key_id)
    return [WebhookDeliveryOut.model_validate(d) for d in webhooks.deliveries(session, key_id, limit=limit)]
