"""The signup body: JSON, or a multipart form with the same fields (metadata as a JSON string) and photos in
`file`. FastAPI cannot declare "either of two content types" on one route, so it is read here and described to
OpenAPI by hand. The batch signup's form, whose file fields are named by its `members` JSON, likewise."""

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import Field, TypeAdapter, ValidationError
from starlette.datastructures import FormData, UploadFile

from api.deps import SettingsDep, read_upload
from api.schemas import BatchMemberIn, MemberCreate
from core.errors import PayloadTooLargeError, UnprocessableError, UnsupportedImageTypeError
from core.settings import Settings
from services.identity.enrollment import BatchMember, Photo

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
SIGNUP_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": MemberCreate.model_json_schema()},
            "multipart/form-data": {"schema": _SIGNUP_FORM},
        },
    }
}


@dataclass
class Signup:
    member: MemberCreate
    photos: list[Photo]


async def read_signup(request: Request, settings: SettingsDep) -> Signup:
    content_type = request.headers.get("content-type", "")
    try:
        if content_type.startswith("application/json"):
            return Signup(MemberCreate.model_validate_json(await request.body()), [])
        if content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
            form = await request.form()
            fields: dict[str, Any] = {k: v for k, v in form.multi_items() if not isinstance(v, UploadFile)}
            if "metadata" in fields:
                fields["metadata"] = _metadata_field(fields["metadata"])
            member = MemberCreate.model_validate(fields)
            uploads = [u for u in form.getlist("file") if isinstance(u, UploadFile)]
            if problem := _too_many_photos(len(uploads), settings):
                raise problem
            photos = [Photo(u.filename or f"file {i}", read_upload(u, settings)) for i, u in enumerate(uploads)]
            return Signup(member, photos)
    except ValidationError as exc:
        # Reported like any other invalid request (api/errors.py).
        raise RequestValidationError(exc.errors()) from None
    raise UnsupportedImageTypeError(
        "Send the member as application/json or as a (multipart) form.",
        code="unsupported_content_type",
        content_type=content_type,
    )


def _metadata_field(text: str) -> Any:
    """A form's metadata field, parsed as pydantic parses a JSON body (its depth limit: no RecursionError)."""
    try:
        return _JSON.validate_json(text)
    except ValidationError:
        raise UnprocessableError("metadata must be a JSON object.") from None


_JSON: TypeAdapter[Any] = TypeAdapter(Any)


def _too_many_photos(count: int, settings: Settings) -> UnprocessableError | None:
    """A signup brings at most max_faces_per_member photos: a member has no use for more faces."""
    if count <= settings.max_faces_per_member:
        return None
    return UnprocessableError(
        f"A member is signed up with at most {settings.max_faces_per_member} photos, not {count}.",
        code="too_many_photos",
        count=count,
        max_photos=settings.max_faces_per_member,
    )


_BATCH_MEMBERS: TypeAdapter[list[BatchMemberIn]] = TypeAdapter(Annotated[list[BatchMemberIn], Field(min_length=1)])
_BATCH_FORM = {
    "type": "object",
    "required": ["members"],
    "properties": {
        "members": {
            "type": "string",
            "description": "A JSON array, one object per member: external_id, display_name, metadata (optional "
            "object) and photos, the names of the file fields below that hold its photos",
            "contentMediaType": "application/json",
            "contentSchema": {"type": "array", "minItems": 1, "items": BatchMemberIn.model_json_schema()},
        },
    },
    "additionalProperties": {"type": "string", "format": "binary", "description": "A photo, named in `members`"},
}
BATCH_OPENAPI: dict[str, Any] = {
    "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": _BATCH_FORM}}}
}


async def read_batch(request: Request, settings: SettingsDep) -> list[BatchMember]:
    """The members of a batch signup with their photos; anything wrong with the request as a whole is refused
    here, before any member is looked at."""
    content_type = request.headers.get("content-type", "")
    # A form without any file (members without photos) is url-encoded by most clients.
    if not content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        raise UnsupportedImageTypeError(
            "Send the batch as a (multipart) form.", code="unsupported_content_type", content_type=content_type
        )
    form = await request.form()
    listed = form.get("members")
    if not isinstance(listed, str):
        raise UnprocessableError(
            "The form needs a `members` field: a JSON array of members.",
            code="missing_field",
            field="members",
        )
    try:
        items = _BATCH_MEMBERS.validate_json(listed)
    except ValidationError as exc:  # reported like any other invalid request, at its place in `members`
        raise RequestValidationError([{**e, "loc": ("body", "members", *e["loc"])} for e in exc.errors()]) from None
    if len(items) > settings.max_batch_members:
        raise UnprocessableError(
            f"A batch holds at most {settings.max_batch_members} members, not {len(items)}.",
            code="too_many_members",
            count=len(items),
            max_members=settings.max_batch_members,
        )
    return [_member(form, index, item, settings) for index, item in enumerate(items)]


def _member(form: FormData, index: int, item: BatchMemberIn, settings: Settings) -> BatchMember:
    """The member with its photos; a photo over the size limit is that member's refusal, not the batch's."""
    uploads = []
    for name in item.photos:
        found = [u for u in form.getlist(name) if isinstance(u, UploadFile)]
        if not found:
            raise UnprocessableError(
                f"Member {index} ({item.external_id}) names the photo field {name!r}, which holds no file.",
                code="missing_file",
                member_index=index,
                field=name,
            )
        uploads += found
    if problem := _too_many_photos(len(uploads), settings):
        return BatchMember(item.external_id, item.display_name, item.metadata, [], problem=problem)
    photos = []
    for photo_index, upload in enumerate(uploads):
        upload.file.seek(0)  # several members may name the same file
        try:
            photos.append(Photo(upload.filename or f"file {photo_index}", read_upload(upload, settings)))
        except PayloadTooLargeError as exc:
            exc.details.update(photo_index=photo_index, filename=upload.filename)
            return BatchMember(item.external_id, item.display_name, item.metadata, [], problem=exc)
    return BatchMember(item.external_id, item.display_name, item.metadata, photos)
