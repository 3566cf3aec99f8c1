"""Request dependencies: the database session, the loaded face pipeline, settings, the caller, uploads and
thresholds."""

from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AfterValidator
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile

from core.enums import Role
from core.errors import ForbiddenError, PayloadTooLargeError, UnauthorizedError, UnprocessableError
from core.settings import Settings, get_settings
from db.models import ApiKey
from db.session import session_scope
from services.faces.pipeline import FacePipeline
from services.identity import auth
from services.identity.calibration import GalleryCalibration


def get_db() -> Iterator[Session]:
    with session_scope() as session:
        yield session


# Dependencies that neither block nor wait are `async def`: FastAPI calls those on the event loop, where each
# plain `def` one costs a hop to the thread pool and back (docs/performance.md).
async def get_pipeline(request: Request) -> FacePipeline:
    pipeline: FacePipeline = request.app.state.pipeline
    return pipeline


async def get_gallery(request: Request) -> GalleryCalibration:
    gallery: GalleryCalibration = request.app.state.gallery
    return gallery


async def current_settings() -> Settings:
    return get_settings()


# scope="function": the session commits when the route returns, before the response leaves, so a client never
# sees a success that did not reach the database. Routes run the models before their first query, so no
# transaction is open while a request waits for inference.
SessionDep = Annotated[Session, Depends(get_db, scope="function")]
PipelineDep = Annotated[FacePipeline, Depends(get_pipeline)]
SettingsDep = Annotated[Settings, Depends(current_settings)]
GalleryDep = Annotated[GalleryCalibration, Depends(get_gallery)]


_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <API key>")
_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False)


def get_caller(
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    header_key: Annotated[str | None, Depends(_api_key_header)],
) -> ApiKey:
    return caller_with_key(bearer.credentials if bearer else header_key)


def caller_with_key(raw: str | None) -> ApiKey:
    """The active key of this value (from a header), or 401."""
    if not raw:
        raise UnauthorizedError(
            "Send an API key as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'.", code="missing_api_key"
        )
    # Its own short transaction, committed before the route runs: the request's own stays free of the key row.
    with session_scope() as session:
        key = auth.authenticate(session, raw)
    if key is None:
        raise UnauthorizedError("The API key is unknown or revoked.", code="invalid_api_key")
    return key


def require_role(role: Role) -> Callable[[ApiKey], Awaitable[ApiKey]]:
    async def check(caller: Annotated[ApiKey, Depends(get_caller)]) -> ApiKey:
        check_role(caller, role)
        return caller

    return check


def check_role(caller: ApiKey, role: Role, what: str = "This") -> None:
    """403 forbidden unless the caller's role reaches `role`; `what` names the action in the message."""
    if not auth.allows(caller, role):
        raise ForbiddenError(
            f"{what} needs a key with the {role} role; this one has {caller.role}.",
            required_role=role,
            role=caller.role,
        )


IdentifyCaller = Annotated[ApiKey, Depends(require_role(Role.IDENTIFY))]
ServiceCaller = Annotated[ApiKey, Depends(require_role(Role.SERVICE))]
AdminCaller = Annotated[ApiKey, Depends(require_role(Role.ADMIN))]


ALLOW_DUPLICATE_DOC = "Enroll even if a face matches another member (admin keys only; audited)"


def check_allow_duplicate(caller: ApiKey, allow_duplicate: bool) -> None:
    """Skipping the duplicate-signup check is an admin decision: with it one service key could enroll one face as
    many members, and a gallery full of such twins breaks identify for everyone."""
    if allow_duplicate and not auth.allows(caller, Role.ADMIN):
        raise ForbiddenError(
            "allow_duplicate=true needs an admin key; without it a face that matches another member is refused.",
            code="allow_duplicate_forbidden",
            required_role=Role.ADMIN,
            role=caller.role,
        )


async def get_allow_mismatch(
    caller: Annotated[ApiKey, Depends(get_caller)],
    allow_mismatch: Annotated[
        bool, Query(description="Enroll faces that do not look like one person (admin; audited)")
    ] = False,
) -> bool:
    """The override of the one-person-per-member check: an admin's decision, never a camera's or an app's."""
    if allow_mismatch and caller.role != Role.ADMIN:
        raise ForbiddenError("allow_mismatch needs an admin key.", required_role=Role.ADMIN, role=caller.role)
    return allow_mismatch


AllowMismatch = Annotated[bool, Depends(get_allow_mismatch)]


def read_upload(upload: UploadFile, settings: Settings) -> bytes:
    """The upload's bytes, refusing files over the size limit without reading them whole."""
    data = upload.file.read(settings.max_upload_bytes + 1)
    if len(data) > settings.max_upload_bytes:
        raise PayloadTooLargeError(
            f"{upload.filename or 'The file'} is larger than {settings.max_upload_bytes} bytes.",
            max_bytes=settings.max_upload_bytes,
        )
    return data


async def get_threshold(
    settings: SettingsDep,
    threshold: Annotated[
        float | None,
        Query(description="A fixed distance threshold instead of the calibrated decision (no review band)"),
    ] = None,
) -> float | None:
    if threshold is None:
        return None
    if not settings.threshold_min <= threshold <= settings.threshold_max:  # also refuses NaN
        raise UnprocessableError(
            f"threshold must lie between {settings.threshold_min} and {settings.threshold_max}.",
            code="invalid_threshold",
            threshold=threshold,
            min=settings.threshold_min,
            max=settings.threshold_max,
        )
    return threshold


ThresholdDep = Annotated[float | None, Depends(get_threshold)]

MIN_FACE_SIZE_MAX = 8192
MIN_FACE_SIZE_DOC = (
    "Faces whose box is smaller than this many pixels (its shorter side) are neither looked for nor returned, which"
    " makes large frames faster (a door camera's 1280x720 frames at 80: about half the detection time). At least"
    " the service's FACEGATE_DETECTOR_MIN_FACE_SIZE"
)


def checked_min_face_size(settings: Settings, min_face_size: int | None) -> int | None:
    """The caller's smallest face, refused below the service's own: looking for smaller faces costs every other
    caller CPU time, so only the operator lowers it (FACEGATE_DETECTOR_MIN_FACE_SIZE)."""
    if min_face_size is None:
        return None
    floor = settings.detector_min_face_size
    if not floor <= min_face_size <= MIN_FACE_SIZE_MAX:
        raise UnprocessableError(
            f"min_face_size must lie between {floor} (the service's smallest face) and {MIN_FACE_SIZE_MAX} pixels.",
            code="invalid_min_face_size",
            min_face_size=min_face_size,
            min=floor,
            max=MIN_FACE_SIZE_MAX,
        )
    return min_face_size


async def get_min_face_size(
    settings: SettingsDep, min_face_size: Annotated[int | None, Query(description=MIN_FACE_SIZE_DOC)] = None
) -> int | None:
    return checked_min_face_size(settings, min_face_size)


MinFaceSizeDep = Annotated[int | None, Depends(get_min_face_size)]


def _storable_moment(value: datetime) -> datetime:
    """A moment PostgreSQL can compare: in UTC (it refuses offsets past 16 h), naive taken as UTC, years 1900-9000."""
    if not 1900 <= value.year <= 9000:
        raise ValueError("must lie between the years 1900 and 9000")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


Moment = Annotated[datetime, AfterValidator(_storable_moment)]

# Paging: an offset past any real table, refused before it reaches PostgreSQL's bigint.
MAX_OFFSET = 10_000_000
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET)]
