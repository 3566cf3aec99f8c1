"""Faces in a photo, nothing stored."""

from typing import Annotated

from fastapi import APIRouter, Depends, File, UploadFile

from api.deps import MinFaceSizeDep, PipelineDep, SettingsDep, read_upload, require_role
from api.schemas import DetectedFaceOut, DetectResponse
from core.enums import Role

router = APIRouter(prefix="/v1", tags=["detection"], dependencies=[Depends(require_role(Role.IDENTIFY))])


@router.post("/detect", response_model=DetectResponse, operation_id="detect")
def detect(
    file: Annotated[UploadFile, File()], pipeline: PipelineDep, settings: SettingsDep, min_face_size: MinFaceSizeDep
) -> DetectResponse:
    """Faces in a photo with boxes, landmarks and apparent expression. Nothing is stored."""
    faces = pipeline.analyze_photo(read_upload(file, settings), min_face_size)
    return DetectResponse(faces=[DetectedFaceOut.from_face(face) for face in faces])
