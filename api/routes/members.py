"""Members: sign up (with photos), read, list, update, delete. Their faces: api/routes/faces.py."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from api.deps import (
    AdminCaller,
    GalleryDep,
    Offset,
    PipelineDep,
    ServiceCaller,
    SessionDep,
    SettingsDep,
    ThresholdDep,
    require_role,
)
from api.forms import SIGNUP_OPENAPI, Signup, read_signup
from api.schemas import MemberOut, MemberPage, MemberUpdate
from core.enums import Role
from services.identity import enrollment, members

# Service keys sign members up; deleting a member is an admin action (checked on its route).
router = APIRouter(prefix="/v1/members", tags=["members"], dependencies=[Depends(require_role(Role.SERVICE))])


@router.post("", status_code=201, response_model=MemberOut, openapi_extra=SIGNUP_OPENAPI, operation_id="members-create")
def create_member(
    signup: Annotated[Signup, Depends(read_signup)],
    session: SessionDep,
    pipeline: PipelineDep,
    settings: SettingsDep,
    gallery: GalleryDep,
    threshold: ThresholdDep,
    caller: ServiceCaller,
    largest: bool = False,
    allow_duplicate: bool = False,
) -> MemberOut:
    """Sign a member up, optionally with face photos (three good ones make a much better template than one):
    all of it is stored, or none of it. A face that confidently matches another member is refused (409
    duplicate_face); one in the review band is enrolled and queued for review as a possible duplicate."""
    faces = enrollment.gate_photos(pipeline, signup.photos, largest=largest)
    body = signup.member
    member = enrollment.signup(
        session,
        settings,
        gallery,
        external_id=body.external_id,
        display_name=body.display_name,
        metadata=body.metadata,
        faces=faces,
        allow_duplicate=allow_duplicate,
        threshold=threshold,
        caller=caller,
    )
    return MemberOut.from_member(member)


@router.get("", response_model=MemberPage, operation_id="members-list")
def list_members(
    session: SessionDep,
    offset: Offset = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    external_id: str | None = None,
) -> MemberPage:
    items, total = members.list_members(session, offset=offset, limit=limit, external_id=external_id)
    return MemberPage(items=[MemberOut.from_member(m) for m in items], total=total, offset=offset, limit=limit)


@router.get("/{member_id}", response_model=MemberOut, operation_id="members-get")
def get_member(member_id: uuid.UUID, session: SessionDep) -> MemberOut:
    return MemberOut.from_member(members.get_member(session, member_id))


@router.patch("/{member_id}", response_model=MemberOut, operation_id="members-update")
def update_member(member_id: uuid.UUID, body: MemberUpdate, session: SessionDep, caller: ServiceCaller) -> MemberOut:
    member = members.update_member(
        session, members.get_member(session, member_id), body.model_dump(exclude_unset=True), actor=caller
    )
    return MemberOut.from_member(member)


@router.delete("/{member_id}", status_code=204, operation_id="members-delete")
def delete_member(member_id: uuid.UUID, session: SessionDep, caller: AdminCaller) -> Response:
    """Erase the member with its faces, face crops and blacklist entries (admin)."""
    members.delete_member(session, members.get_member(session, member_id), actor=caller)
    return Response(status_code=204)
