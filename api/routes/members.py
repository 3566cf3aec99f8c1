"""Members: sign up (with photos), read, list, update, delete. Their faces: api/routes/faces.py."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from api.deps import (
    AdminCaller,
    AllowMismatch,
    GalleryDep,
    Offset,
    PipelineDep,
    ServiceCaller,
    SessionDep,
    SettingsDep,
    ThresholdDep,
    require_role,
)
from api.forms import BATCH_OPENAPI, SIGNUP_OPENAPI, Signup, read_batch, read_signup
from api.middleware import BATCH_SIGNUP_PATH
from api.schemas import MemberBatchOut, MemberOut, MemberPage, MemberUpdate
from core.enums import Role
from services.identity import enrollment, members
from services.identity.enrollment import BatchMember

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
    allow_mismatch: AllowMismatch,
    largest: bool = False,
    allow_duplicate: bool = False,
) -> MemberOut:
    """Sign a member up, optionally with face photos (three good ones make a much better template than one):
    all of it is stored, or none of it. The photos must show one person: one that clearly shows somebody else
    is refused (422 face_mismatch, naming the photo), a borderline one is stored disabled and queued for review.
    A face that confidently matches another member is refused (409 duplicate_face); one in the review band is
    enrolled and queued for review as a possible duplicate."""
    body = signup.member
    member = enrollment.signup_with_photos(
        session,
        settings,
        gallery,
        pipeline,
        external_id=body.external_id,
        display_name=body.display_name,
        metadata=body.metadata,
        photos=signup.photos,
        largest=largest,
        allow_duplicate=allow_duplicate,
        allow_mismatch=allow_mismatch,
        threshold=threshold,
        caller=caller,
    )
    return MemberOut.from_member(member)


@router.post(
    BATCH_SIGNUP_PATH.removeprefix(router.prefix),
    response_model=MemberBatchOut,
    openapi_extra=BATCH_OPENAPI,
    operation_id="members-create-batch",
)
def create_members(
    batch: Annotated[list[BatchMember], Depends(read_batch)],
    pipeline: PipelineDep,
    settings: SettingsDep,
    gallery: GalleryDep,
    threshold: ThresholdDep,
    caller: ServiceCaller,
    allow_mismatch: AllowMismatch,
    largest: bool = False,
    allow_duplicate: bool = False,
) -> MemberBatchOut:
    """Sign up to FACEGATE_MAX_BATCH_MEMBERS members in one multipart request: a `members` field holding a JSON
    array of {external_id, display_name, metadata, photos}, where `photos` names the file fields that carry the
    member's photos (e.g. `-F 'members=[{"external_id": "e1", "display_name": "Ada", "photos": ["p1", "p2"]}]'
    -F p1=@ada1.jpg -F p2=@ada2.jpg`). Each member is signed up as by POST /v1/members, on its own: the answer
    lists per member `created`, `exists` (its external id is taken: nothing written, so an interrupted batch is
    simply sent again) or `error` with the code and message its single signup would have had. The photos of the
    whole batch go through the networks together. A malformed request (members JSON, a missing file, too many
    members) is refused as a whole and writes nothing."""
    outcomes = enrollment.signup_batch(
        pipeline,
        settings,
        gallery,
        batch,
        largest=largest,
        allow_duplicate=allow_duplicate,
        allow_mismatch=allow_mismatch,
        threshold=threshold,
        caller=caller,
    )
    return MemberBatchOut.of(outcomes)


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
