"""Members and their faces."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, File, Query, Response, UploadFile

from api.deps import (
    AdminCaller,
    GalleryDep,
    Offset,
    PipelineDep,
    ServiceCaller,
    SessionDep,
    SettingsDep,
    ThresholdDep,
    read_upload,
    require_role,
)
from api.forms import SIGNUP_OPENAPI, Signup, read_signup
from api.schemas import FaceOut, FaceUpdate, MemberOut, MemberPage, MemberUpdate
from core.enums import Role
from core.errors import NotFoundError
from services.identity import enrollment, members

# Service keys enroll; deleting members and switching faces off are admin actions (checked per route).
router = APIRouter(prefix="/v1/members", tags=["members"], dependencies=[Depends(require_role(Role.SERVICE))])


@router.post("", status_code=201, response_model=MemberOut, openapi_extra=SIGNUP_OPENAPI)
def create_member(
    signup: Annotated[Signup, Depends(read_signup)],
    session: SessionDep,
    pipeline: PipelineDep,
    settings: SettingsDep,
    gallery: GalleryDep,
    threshold: ThresholdDep,
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
    )
    return MemberOut.from_member(member)


@router.get("", response_model=MemberPage)
def list_members(
    session: SessionDep,
    offset: Offset = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    external_id: str | None = None,
) -> MemberPage:
    items, total = members.list_members(session, offset=offset, limit=limit, external_id=external_id)
    return MemberPage(items=[MemberOut.from_member(m) for m in items], total=total, offset=offset, limit=limit)


@router.get("/{member_id}", response_model=MemberOut)
def get_member(member_id: uuid.UUID, session: SessionDep) -> MemberOut:
    return MemberOut.from_member(members.get_member(session, member_id))


@router.patch("/{member_id}", response_model=MemberOut)
def update_member(member_id: uuid.UUID, body: MemberUpdate, session: SessionDep, caller: ServiceCaller) -> MemberOut:
    member = members.update_member(
        session, members.get_member(session, member_id), body.model_dump(exclude_unset=True), actor=caller
    )
    return MemberOut.from_member(member)


@router.delete("/{member_id}", status_code=204)
def delete_member(member_id: uuid.UUID, session: SessionDep, caller: AdminCaller) -> Response:
    """Erase the member with its faces, face crops and blacklist entries (admin)."""
    members.delete_member(session, members.get_member(session, member_id), actor=caller)
    return Response(status_code=204)


@router.post("/{member_id}/faces", status_code=201, response_model=FaceOut)
def enroll_face(
    member_id: uuid.UUID,
    file: Annotated[UploadFile, File()],
    session: SessionDep,
    pipeline: PipelineDep,
    settings: SettingsDep,
    gallery: GalleryDep,
    threshold: ThresholdDep,
    largest: Annotated[bool, Query(description="With several faces, enroll the largest instead of refusing")] = False,
    allow_duplicate: Annotated[bool, Query(description="Enroll even if the face matches another member")] = False,
) -> FaceOut:
    """Add a face photo to a member, through the quality gate and the duplicate-signup check."""
    face = enrollment.gate_photo(pipeline, read_upload(file, settings), largest=largest)
    stored = enrollment.add_face(
        session,
        settings,
        gallery,
        members.get_member(session, member_id, hold=True),
        face,
        allow_duplicate=allow_duplicate,
        threshold=threshold,
    )
    return FaceOut.from_face(stored)


@router.get(
    "/{member_id}/faces/{face_id}/crop", response_class=Response, responses={200: {"content": {"image/jpeg": {}}}}
)
def face_crop(member_id: uuid.UUID, face_id: uuid.UUID, session: SessionDep) -> Response:
    """The 160x160 face crop that was embedded, when crops are stored."""
    face = members.get_face(session, member_id, face_id)
    if face.crop_jpeg is None:
        raise NotFoundError("No crop is stored for this face.", code="crop_not_found", face_id=str(face_id))
    return Response(content=face.crop_jpeg, media_type="image/jpeg")


@router.patch("/{member_id}/faces/{face_id}", response_model=FaceOut)
def update_face(
    member_id: uuid.UUID, face_id: uuid.UUID, body: FaceUpdate, session: SessionDep, caller: AdminCaller
) -> FaceOut:
    """Disable a face that causes false matches (it stays stored, and can be enabled again) (admin)."""
    face = members.get_face(session, member_id, face_id)
    return FaceOut.from_face(members.set_face_enabled(session, face, body.enabled, actor=caller))


@router.delete("/{member_id}/faces/{face_id}", status_code=204)
def remove_face(member_id: uuid.UUID, face_id: uuid.UUID, session: SessionDep, caller: ServiceCaller) -> Response:
    members.remove_face(session, members.get_face(session, member_id, face_id), actor=caller)
    return Response(status_code=204)
