"""API keys (admin)."""

import uuid

from fastapi import APIRouter, Depends

from api.deps import AdminCaller, SessionDep, require_role
from api.schemas import KeyCreate, KeyCreated, KeyOut
from core.enums import Role
from services.identity import auth

router = APIRouter(prefix="/v1/keys", tags=["keys"], dependencies=[Depends(require_role(Role.ADMIN))])


@router.post("", status_code=201, response_model=KeyCreated, operation_id="keys-create")
def create_key(body: KeyCreate, session: SessionDep, caller: AdminCaller) -> KeyCreated:
    key, raw = auth.create_key(session, name=body.name, role=body.role, actor=caller)
    return KeyCreated(**KeyOut.model_validate(key).model_dump(), key=raw)


@router.get("", response_model=list[KeyOut], operation_id="keys-list")
def list_keys(session: SessionDep) -> list[KeyOut]:
    return [KeyOut.model_validate(k) for k in auth.list_keys(session)]


@router.delete("/{key_id}", response_model=KeyOut, operation_id="keys-revoke")
def revoke_key(key_id: uuid.UUID, session: SessionDep, caller: AdminCaller) -> KeyOut:
    return KeyOut.model_validate(auth.revoke_key(session, key_id, actor=caller))
