"""Request dependencies: the database session, the loaded face pipeline, settings, uploads and thresholds."""

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Query, Request, UploadFile
from sqlalchemy.orm import Session

from db.session import session_scope
from services.errors import FaceGateError, PayloadTooLargeError
from services.pipeline import FacePipeline
from services.settings import Settings, get_settings


def get_db() -> Iterator[Session]:
    with session_scope() as session:
        yield session


def get_pipeline(request: Request) -> FacePipeline:
    return request.app.state.pipeline


# scope="function": the session commits when the route returns, before the response leaves, so a client never
# sees a success that did not reach the database.
SessionDep = Annotated[Session, Depends(get_db, scope="function")]
PipelineDep = Annotated[FacePipeline, Depends(get_pipeline)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


def read_upload(upload: UploadFile, settings: Settings) -> bytes:
    """The upload's bytes, refusing files over the size limit without reading them whole."""
    data = upload.file.read(settings.max_upload_bytes + 1)
    if len(data) > settings.max_upload_bytes:
        raise PayloadTooLargeError(
            f"{upload.filename or 'The file'} is larger than {settings.max_upload_bytes} bytes.",
            max_bytes=settings.max_upload_bytes,
        )
    return data


def get_threshold(
    settings: SettingsDep,
    threshold: Annotated[float | None, Query(description="Distance threshold; default: the calibrated one")] = None,
) -> float:
    if threshold is None:
        return settings.match_threshold
    if not settings.threshold_min <= threshold <= settings.threshold_max:
        raise FaceGateError(
            f"threshold must lie between {settings.threshold_min} and {settings.threshold_max}.",
            code="invalid_threshold", status_code=422,
            threshold=threshold, min=settings.threshold_min, max=settings.threshold_max,
        )
    return threshold


ThresholdDep = Annotated[float, Depends(get_threshold)]
