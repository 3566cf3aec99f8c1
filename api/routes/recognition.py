import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Query, UploadFile

from api.deps import PipelineDep, SessionDep, SettingsDep, ThresholdDep, read_upload, require_role
from api.schemas import DetectedFaceOut, IdentifiedFaceOut, IdentifyResponse, VerifyResponse
from services import members, recognition
from services.errors import ConflictError, FaceRejectedError

router = APIRouter(prefix="/v1", tags=["recognition"], dependencies=[Depends(require_role("service"))])


@router.post("/identify", response_model=IdentifyResponse)
def identify(
    file: Annotated[UploadFile, File()], session: SessionDep, pipeline: PipelineDep, settings: SettingsDep,
    threshold: ThresholdDep, top_k: Annotated[int | None, Query(ge=1)] = None,
) -> IdentifyResponse:
    """Who is in the photo? Every face gets its nearest members and a match, or null when it is unknown."""
    k = min(top_k or settings.top_k, settings.top_k_max)
    faces = pipeline.analyze(pipeline.decode(read_upload(file, settings)))
    results = recognition.identify(session, settings, faces, threshold=threshold, k=k)
    return IdentifyResponse(faces=[IdentifiedFaceOut.of(r) for r in results], threshold=threshold)


@router.post("/verify", response_model=VerifyResponse)
def verify(
    file: Annotated[UploadFile, File()], member_id: Annotated[uuid.UUID, Form()], session: SessionDep,
    pipeline: PipelineDep, settings: SettingsDep, threshold: ThresholdDep,
) -> VerifyResponse:
    """Is the person in the photo this member? With several faces, the largest one is compared."""
    member = members.get_member(session, member_id)
    if not any(face.enabled for face in member.faces):
        raise ConflictError("The member has no enabled face to compare with.", code="member_has_no_faces",
                            member_id=str(member_id))
    faces = pipeline.analyze(pipeline.decode(read_upload(file, settings)))
    if not faces:
        raise FaceRejectedError("No face was found in the photo.", code="no_face")
    largest = max(faces, key=lambda f: f.detection.size)
    result = recognition.verify(session, settings, member, largest, threshold=threshold)
    return VerifyResponse(
        member_id=member.id, match=result.match is not None,
        distance=round(result.candidates[0].distance, 5) if result.candidates else None,
        threshold=threshold, faces_in_photo=len(faces), face=DetectedFaceOut.of(largest),
        attempt_id=result.attempt_id,
    )
