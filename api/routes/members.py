import json
import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, File, Query, Request, Response, UploadFile
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.datastructures import UploadFile as StarletteUpload

from api.deps import AdminCaller, PipelineDep, SessionDep, SettingsDep, ThresholdDep, read_upload, require_role
from api.schemas import FaceOut, FaceUpdate, MemberCreate, MemberOut, MemberPage, MemberUpdate
from services import audit, members, review
from services.errors import FaceGateError, NotFoundError, UnsupportedImageTypeError
from services.pipeline import FacePipeline
from services.quality import QualityGate

# Service keys enroll; deleting members and switching faces off are admin actions (checked per route).
router = APIRouter(prefix="/v1/members", tags=["members"], dependencies=[Depends(require_role("service"))])

_SIGNUP_FORM = {
    "type": "object",
    "required": ["external_id", "display_name"],
    "properties": {
        "external_id": {"type": "string"},
        "display_name": {"type": "string"},
        "metadata": {"type": "string", "description": "A JSON object"},
        "file": {"type": "array", "items": {"type": "string", "format": "binary"}},
    },
}
_SIGNUP_BODY = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": MemberCreate.model_json_schema()},
    "multipart/form-data": {"schema": _SIGNUP_FORM},
}}}


@dataclass
class Signup:
    member: MemberCreate
    photos: list[tuple[str, bytes]]  # (filename, bytes)


async def read_signup(request: Request, settings: SettingsDep) -> Signup:
    """A signup as JSON, or as multipart with the same fields (metadata as a JSON string) plus photos in `file`."""
    content_type = request.headers.get("content-type", "")
    try:
        if content_type.startswith("application/json"):
            return Signup(MemberCreate.model_validate_json(await request.body()), [])
        if content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
            form = await request.form()
            fields = {k: v for k, v in form.multi_items() if not isinstance(v, StarletteUpload)}
            if "metadata" in fields:
                try:
                    fields["metadata"] = json.loads(fields["metadata"])
                except json.JSONDecodeError:
                    raise FaceGateError("metadata must be a JSON object.", code="validation_error",
                                        status_code=422) from None
            photos = [(u.filename or f"file {i}", read_upload(u, settings))
                      for i, u in enumerate(form.getlist("file")) if isinstance(u, StarletteUpload)]
            return Signup(MemberCreate.model_validate(fields), photos)
    except ValidationError as exc:
        # Reported like any other invalid request (api/errors.py).
        raise RequestValidationError(exc.errors()) from None
    raise UnsupportedImageTypeError("Send the member as application/json or as a (multipart) form.",
                                    code="unsupported_content_type", content_type=content_type)


def _enrollment_face(pipeline: FacePipeline, gate: QualityGate, data: bytes, *, largest: bool):
    return members.select_enrollment_face(pipeline.analyze(pipeline.decode(data)), gate, largest=largest)


@router.post("", status_code=201, response_model=MemberOut, openapi_extra=_SIGNUP_BODY)
def create_member(
    signup: Annotated[Signup, Depends(read_signup)], session: SessionDep, pipeline: PipelineDep,
    settings: SettingsDep, threshold: ThresholdDep, largest: bool = False, allow_duplicate: bool = False,
) -> MemberOut:
    """Sign a member up, optionally with face photos: all of it is stored, or none of it."""
    gate = QualityGate.from_settings(settings)
    faces = []
    for index, (filename, data) in enumerate(signup.photos):
        try:
            faces.append(_enrollment_face(pipeline, gate, data, largest=largest))
        except FaceGateError as exc:
            exc.details.update(photo_index=index, filename=filename)
            raise
    body = signup.member
    member = members.create_member(session, external_id=body.external_id, display_name=body.display_name,
                                   attributes=body.metadata)
    for index, face in enumerate(faces):
        try:
            members.enroll_face(session, settings, member, face, allow_duplicate=allow_duplicate,
                                threshold=threshold)
        except FaceGateError as exc:
            exc.details.update(photo_index=index, filename=signup.photos[index][0])
            raise
    session.refresh(member)
    return MemberOut.of(member)


@router.get("", response_model=MemberPage)
def list_members(
    session: SessionDep, offset: Annotated[int, Query(ge=0)] = 0, limit: Annotated[int, Query(ge=1, le=500)] = 50,
    external_id: str | None = None,
) -> MemberPage:
    items, total = members.list_members(session, offset=offset, limit=limit, external_id=external_id)
    return MemberPage(items=[MemberOut.of(m) for m in items], total=total, offset=offset, limit=limit)


@router.get("/{member_id}", response_model=MemberOut)
def get_member(member_id: uuid.UUID, session: SessionDep) -> MemberOut:
    return MemberOut.of(members.get_member(session, member_id))


@router.patch("/{member_id}", response_model=MemberOut)
def update_member(member_id: uuid.UUID, body: MemberUpdate, session: SessionDep) -> MemberOut:
    member = members.get_member(session, member_id)
    changes = body.model_dump(exclude_unset=True)
    if "metadata" in changes:
        changes["attributes"] = changes.pop("metadata") or {}
    members.update_member(session, member, {k: v for k, v in changes.items() if v is not None})
    session.flush()
    session.refresh(member)
    return MemberOut.of(member)


@router.delete("/{member_id}", status_code=204)
def delete_member(member_id: uuid.UUID, session: SessionDep, caller: AdminCaller) -> Response:
    """Erase the member with its faces, face crops and blacklist entries (admin)."""
    member = members.get_member(session, member_id)
    audit.record(session, caller, "member.delete", "member", member.id, external_id=member.external_id)
    members.delete_member(session, member)
    return Response(status_code=204)


@router.post("/{member_id}/faces", status_code=201, response_model=FaceOut)
def enroll_face(
    member_id: uuid.UUID, file: Annotated[UploadFile, File()], session: SessionDep, pipeline: PipelineDep,
    settings: SettingsDep, threshold: ThresholdDep,
    largest: Annotated[bool, Query(description="With several faces, enroll the largest instead of refusing")] = False,
    allow_duplicate: Annotated[bool, Query(description="Enroll even if the face matches another member")] = False,
) -> FaceOut:
    """Add a face photo to a member, through the quality gate and the duplicate-signup check."""
    member = members.get_member(session, member_id)
    face = _enrollment_face(pipeline, QualityGate.from_settings(settings), read_upload(file, settings),
                            largest=largest)
    stored = members.enroll_face(session, settings, member, face, allow_duplicate=allow_duplicate,
                                 threshold=threshold)
    session.refresh(stored)
    return FaceOut.of(stored)


@router.get("/{member_id}/faces/{face_id}/crop", response_class=Response,
            responses={200: {"content": {"image/jpeg": {}}}})
def face_crop(member_id: uuid.UUID, face_id: uuid.UUID, session: SessionDep) -> Response:
    """The 160x160 face crop that was embedded, when crops are stored."""
    face = members.get_face(session, members.get_member(session, member_id), face_id)
    if face.crop_jpeg is None:
        raise NotFoundError("No crop is stored for this face.", code="crop_not_found", face_id=str(face_id))
    return Response(content=face.crop_jpeg, media_type="image/jpeg")


@router.patch("/{member_id}/faces/{face_id}", response_model=FaceOut)
def update_face(member_id: uuid.UUID, face_id: uuid.UUID, body: FaceUpdate, session: SessionDep,
                caller: AdminCaller) -> FaceOut:
    """Disable a face that causes false matches (it stays stored, and can be enabled again) (admin)."""
    face = members.get_face(session, members.get_member(session, member_id), face_id)
    return FaceOut.of(review.set_face_enabled(session, face, body.enabled, actor=caller))


@router.delete("/{member_id}/faces/{face_id}", status_code=204)
def remove_face(member_id: uuid.UUID, face_id: uuid.UUID, session: SessionDep) -> Response:
    members.remove_face(session, members.get_member(session, member_id), face_id)
    return Response(status_code=204)
