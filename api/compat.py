"""What the CompreFace- and DeepStack-compatible routers share: their error shapes, and how they read a request.

Their clients read errors in their own shape, so each router's routes (route_class) turn FaceGate's errors, the
caller checks and invalid parameters into it: CompreFace's {"message", "code"} with CompreFace's codes, DeepStack's
{"success": false, "error"}; the HTTP status stays FaceGate's 4xx."""

import base64
import binascii
import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException

from api.deps import caller_with_key, check_role, read_upload
from core.enums import Role
from core.errors import (
    FaceGateError,
    PayloadTooLargeError,
    UnauthorizedError,
    UnprocessableError,
    UnsupportedImageTypeError,
)
from core.settings import Settings
from db.models import ApiKey


def _validation_error(exc: RequestValidationError) -> FaceGateError:
    problems = [(".".join(str(p) for p in e["loc"][1:]) or "body", e["type"], e["msg"]) for e in exc.errors()]
    field, kind, problem = problems[0] if problems else ("body", "value_error", "invalid")
    if kind == "missing":
        return FaceGateError(f"Required parameter {field} is missing", code="missing_field", field=field)
    return FaceGateError(f"Validation for field {field} failed: {problem}", code="validation_error", field=field)


class ShapedError(Exception):
    """An error already rendered in a client's shape. Raised, not returned, so that it passes the request's
    dependencies on its way out (the database session rolls back) before install_shaped_errors sends it."""

    def __init__(self, response: Response):
        super().__init__(response.status_code)
        self.response = response


def install_shaped_errors(app: FastAPI) -> None:
    @app.exception_handler(ShapedError)
    async def shaped(_: Request, exc: ShapedError) -> Response:
        return exc.response


class _TranslatedRoute(APIRoute):
    """A route whose errors leave in its API's own shape."""

    @staticmethod
    def render(exc: FaceGateError) -> Response:
        raise NotImplementedError

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def translated(request: Request) -> Response:
            try:
                return await handler(request)
            except FaceGateError as exc:
                raise ShapedError(self.render(exc)) from exc
            except RequestValidationError as exc:
                raise ShapedError(self.render(_validation_error(exc))) from exc
            except HTTPException as exc:  # Starlette's form parser: a malformed multipart body
                refused = FaceGateError(str(exc.detail), code="validation_error")
                raise ShapedError(self.render(refused)) from exc

        return translated


# FaceGate's error codes as CompreFace's (java/common/.../handler/CommonExceptionCode.java): (code, status,
# CompreFace's own message where clients may look for it). Others go out as 26 (a constraint violated) with
# FaceGate's message, which says what to change (the enrollment gate's refusals: too small, blurry, a duplicate).
_COMPREFACE_CODES: dict[str, tuple[int, int | None, str | None]] = {
    "no_face": (28, 400, "No face is found in the given image"),
    "multiple_faces": (31, 400, "More than one face in the source image"),
    "subject_not_found": (42, 404, None),
    "face_not_found": (11, 404, None),
    "crop_not_found": (11, 404, None),
    "duplicate_external_id": (43, 400, "Subject already exists"),
    "missing_api_key": (20, None, "Missing header: x-api-key"),
    "invalid_api_key": (10, None, "Recognition service with this API Key not found"),
    "forbidden": (1, None, None),
    "missing_field": (33, 400, None),
    "validation_error": (26, 400, None),
    "unsupported_media_type": (21, None, None),
    "unsupported_content_type": (21, None, None),
    "invalid_base64": (21, 400, "Provided value is not Base64"),
}
COMPREFACE_UNMAPPED = 26


def compreface_error(exc: FaceGateError) -> JSONResponse:
    code, status, message = _COMPREFACE_CODES.get(exc.code, (COMPREFACE_UNMAPPED, None, None))
    return JSONResponse({"message": message or exc.message, "code": code}, status_code=status or exc.status_code)


class CompreFaceRoute(_TranslatedRoute):
    @staticmethod
    def render(exc: FaceGateError) -> Response:
        return compreface_error(exc)


def deepstack_error(exc: FaceGateError) -> JSONResponse:
    return JSONResponse({"success": False, "error": exc.message}, status_code=exc.status_code)


class DeepStackRoute(_TranslatedRoute):
    @staticmethod
    def render(exc: FaceGateError) -> Response:
        return deepstack_error(exc)


_SHAPES: tuple[tuple[str, Callable[[FaceGateError], JSONResponse]], ...] = (
    ("/api/v1/", compreface_error),
    ("/v1/vision/", deepstack_error),
)


def shaped_error(path: str, exc: FaceGateError) -> JSONResponse | None:
    """The error in the shape of the API `path` belongs to, for errors raised before a route runs (api.middleware's
    limits); None for FaceGate's own routes."""
    return next((render(exc) for prefix, render in _SHAPES if path.startswith(prefix)), None)


def _decoded(value: Any, name: str, settings: Settings) -> bytes:
    if not isinstance(value, str):
        raise FaceGateError(f"{name} must be a base64 string.", code="invalid_base64", field=name)
    try:
        data = base64.b64decode(value.split(",", 1)[-1] if value.startswith("data:") else value, validate=True)
    except (binascii.Error, ValueError):
        raise FaceGateError("Provided value is not Base64", code="invalid_base64", field=name) from None
    if len(data) > settings.max_upload_bytes:
        raise PayloadTooLargeError(f"{name} is larger than {settings.max_upload_bytes} bytes.")
    return data


async def compreface_images(request: Request, settings: Settings, names: tuple[str, ...]) -> dict[str, bytes]:
    """The images named `names` of a CompreFace request: multipart files, or base64 strings in a JSON object
    (CompreFace's "Base64 support")."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("application/json"):
        try:
            body = json.loads(await request.body())
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise FaceGateError("The body is not valid JSON.", code="validation_error") from None
        if not isinstance(body, dict):
            raise FaceGateError("The body must be a JSON object.", code="validation_error")
        missing = [name for name in names if name not in body]
        if missing:
            raise FaceGateError(f"Required part {missing[0]} is missing", code="missing_field", field=missing[0])
        return {name: _decoded(body[name], name, settings) for name in names}
    if content_type.startswith("multipart/form-data"):
        form = await request.form()
        return {name: read_upload(_file(form, name, f"Required part {name} is missing"), settings) for name in names}
    raise UnsupportedImageTypeError(
        "Send the image as multipart/form-data or as base64 in application/json.",
        code="unsupported_content_type",
        content_type=content_type,
    )


def _file(form: FormData, name: str, missing: str) -> UploadFile:
    found = form.get(name)
    if not isinstance(found, UploadFile):
        raise FaceGateError(missing, code="missing_field", field=name)
    return found


async def deepstack_form(request: Request) -> FormData:
    """A DeepStack request's form (its key, its fields and its images travel together)."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        raise UnsupportedImageTypeError(
            "Send a (multipart) form.", code="unsupported_content_type", content_type=content_type
        )
    return await request.form()


def deepstack_caller(request: Request, form: FormData, role: Role) -> ApiKey:
    """The caller by DeepStack's `api_key` form field, or FaceGate's own headers."""
    key = form.get("api_key")
    if not isinstance(key, str) or not key:
        key = request.headers.get("x-api-key") or request.headers.get("authorization", "").removeprefix("Bearer ")
    if not key:
        raise UnauthorizedError("Send a FaceGate API key in the api_key form field.", code="missing_api_key")
    caller = caller_with_key(key)
    check_role(caller, role)
    return caller


def deepstack_images(form: FormData, settings: Settings, names: tuple[str, ...] | None = None) -> list[bytes]:
    """The images of a DeepStack form: those named `names`, in that order, or every file field (register sends
    `image` or `image1`..`imageN`)."""
    if names is not None:
        return [read_upload(_file(form, name, "No valid image file found"), settings) for name in names]
    uploads = [value for _, value in form.multi_items() if isinstance(value, UploadFile)]
    if not uploads:
        raise FaceGateError("No valid image file found", code="missing_field", field="image")
    if len(uploads) > settings.max_faces_per_member:
        raise UnprocessableError(f"At most {settings.max_faces_per_member} images per request.", code="too_many_files")
    return [read_upload(upload, settings) for upload in uploads]


def form_text(form: FormData, name: str, default: str | None = None) -> str | None:
    value = form.get(name)
    return value if isinstance(value, str) and value != "" else default


def form_fraction(form: FormData, name: str, default: float) -> float:
    """A number between 0 and 1 from a form field (DeepStack's min_confidence)."""
    text = form_text(form, name)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0.0 <= value <= 1.0:  # also refuses NaN
        raise FaceGateError(f"{name} must be a number between 0 and 1.", code="validation_error", field=name)
    return value
