"""The signup body: JSON, or a multipart form with the same fields (metadata as a JSON string) and photos in
`file`. FastAPI cannot declare "either of two content types" on one route, so it is read here and described to
OpenAPI by hand."""

import json
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from api.deps import SettingsDep, read_upload
from api.schemas import MemberCreate
from core.errors import FaceGateError, UnsupportedImageTypeError
from services.identity.enrollment import Photo

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
                try:
                    fields["metadata"] = json.loads(fields["metadata"])
                except json.JSONDecodeError:
                    raise FaceGateError(
                        "metadata must be a JSON object.", code="validation_error", status_code=422
                    ) from None
            photos = [
                Photo(u.filename or f"file {i}", read_upload(u, settings))
                for i, u in enumerate(form.getlist("file"))
                if isinstance(u, UploadFile)
            ]
            return Signup(MemberCreate.model_validate(fields), photos)
    except ValidationError as exc:
        # Reported like any other invalid request (api/errors.py).
        raise RequestValidationError(exc.errors()) from None
    raise UnsupportedImageTypeError(
        "Send the member as application/json or as a (multipart) form.",
        code="unsupported_content_type",
        content_type=content_type,
    )
