"""A member's faces: add one through the quality gate, fetch its crop, switch it off or on, remove it."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, File, Query, Response, UploadFile

from api.deps import (
    AdminCaller,
    AllowMismatch,
    GalleryDep,
    PipelineDep,
    ServiceCaller,
    SessionDep,
    SettingsDep,
    ThresholdDep,
    read_upload,
    require_role,
)
from api.schemas import FaceOut, FaceUpdate
from core.enums import Role
from core.errors import NotFoundError
from services.identity import enrollment, members

# Service keys add and remove faces; switching one off is an admin action (checked per route).
router = APIRouter(
    prefix="/v1/members/{member_id}/faces", tags=["faces"], dependencies=[Depends(require_role(Role.SERVICE))]
)


@router.post("", status_code=201, response_model=FaceOut, operation_id="faces-add")
def enroll_face(
    member_id: uuid.UUID,
    file: Annotated[UploadFile, File()],
    session: SessionDep,
    pipeline: PipelineDep,
    settings: SettingsDep,
    gallery: GalleryDep,
    threshold: ThresholdDep,
    caller: ServiceCaller,
    allow_mismatch: AllowMismatch,
    largest: Annotated[bool, Query(description="With several faces, enroll the largest instead of refusing")] = False,
    allow_duplicate: Annotated[bool, Query(description="Enroll even if the face matches another member")] = False,
) -> FaceOut:
    """Add a face photo to a member, through the quality gate, the check that it shows the member (422
    face_mismatch; a borderline face is stored disabled and queued for review) and the duplicate-signup check."""
    face = enrollment.gate_photo(pipeline, read_upload(file, settings), largest=largest)
    stored = enrollment.add_face(
        session,
        settings,
        gallery,
        members.get_member(session, member_id, hold=True),
        face,
        allow_duplicate=allow_duplicate,
        allow_mismatch=allow_mismatch,
        threshold=threshold,
        caller=caller,
    )
    return FaceOut.from_face(stored)


@router.get(
    "/{face_id}/crop",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}}},
    operation_id="faces-crop",
)
def face_crop(member_id: uuid.UUID, face_id: uuid.UUID, session: SessionDep) -> Response:
    """The 160x160 face crop that was embedded, when crops are stored."""
    face = members.get_face(session, member_id, face_id)
    if face.crop_jpeg is None:
        raise NotFoundError("No crop is stored for this face.", code="crop_not_found", face_id=str(face_id))
    return Response(content=face.crop_jpeg, media_type="image/jpeg")


@router.patch("/{face_id}", response_model=FaceOut, operation_id="faces-update")
def update_face(
    member_id: uuid.UUID, face_id: uuid.UUID, body: FaceUpdate, session: SessionDep, caller: AdminCaller
) -> FaceOut:
    """Disable a face that causes false matches (it stays stored, and can be enabled again) (admin)."""
    face = members.get_face(session, member_id, face_id)
    return FaceOut.from_face(members.set_face_enabled(session, face, body.enabled, actor=caller))


@router.delete("/{face_id}", status_code=204, operation_id="faces-delete")
def remove_face(member_id: uuid.UUID, face_id: uuid.UUID, session: SessionDep, caller: ServiceCaller) -> Response:
    members.remove_face(session, members.get_face(session, member_id, face_id), actor=caller)
    return Response(status_code=204)
