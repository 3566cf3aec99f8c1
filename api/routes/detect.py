from typing import Annotated

from fastapi import APIRouter, Depends, File, UploadFile

from api.deps import PipelineDep, SettingsDep, read_upload, require_role
from api.schemas import DetectResponse, DetectedFaceOut

router = APIRouter(prefix="/v1", tags=["recognition"], dependencies=[Depends(require_role("service"))])


@router.post("/detect", response_model=DetectResponse)
def detect(file: Annotated[UploadFile, File()], pipeline: PipelineDep, settings: SettingsDep) -> DetectResponse:
    """Faces in a photo with boxes, landmarks and apparent expression. Nothing is stored."""
    faces = pipeline.analyze(pipeline.decode(read_upload(file, settings)))
    return DetectResponse(faces=[DetectedFaceOut.of(face) for face in faces])
