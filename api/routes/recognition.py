"""Identify (1:N) and verify (1:1)."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Query, UploadFile

from api.deps import (
    GalleryDep,
    IdentifyCaller,
    MinFaceSizeDep,
    PipelineDep,
    SessionDep,
    SettingsDep,
    ThresholdDep,
    read_upload,
    require_role,
)
from api.schemas import DetectedFaceOut, IdentifiedFaceOut, IdentifyResponse, VerifyResponse
from core.enums import Role
from services.identity import recognition

router = APIRouter(prefix="/v1", tags=["recognition"], dependencies=[Depends(require_role(Role.IDENTIFY))])


@router.post("/identify", response_model=IdentifyResponse, operation_id="identify")
def identify(
    file: Annotated[UploadFile, File()],
    session: SessionDep,
    pipeline: PipelineDep,
    settings: SettingsDep,
    gallery: GalleryDep,
    threshold: ThresholdDep,
    caller: IdentifyCaller,
    min_face_size: MinFaceSizeDep,
    top_k: Annotated[int | None, Query(ge=1)] = None,
) -> IdentifyResponse:
    """Who is in the photo? Every face gets its nearest members and a match; or `match: null` with `review: true`
    in the band between a confident match and clearly unknown (queued for a person); or null: unknown."""
    k = min(top_k or settings.top_k, settings.top_k_max)
    faces = pipeline.analyze_photo(read_upload(file, settings), min_face_size)
    found = recognition.identify(session, settings, gallery, faces, threshold=threshold, k=k, caller=caller)
    return IdentifyResponse(
        faces=[IdentifiedFaceOut.from_result(r) for r in found.faces],
        threshold=round(found.rule.accept, 5),
        review_threshold=round(found.rule.review, 5),
        gallery_size=found.gallery_size,
        calibrated=threshold is None,
    )


@router.post("/verify", response_model=VerifyResponse, operation_id="verify")
def verify(
    file: Annotated[UploadFile, File()],
    member_id: Annotated[uuid.UUID, Form()],
    session: SessionDep,
    pipeline: PipelineDep,
    settings: SettingsDep,
    gallery: GalleryDep,
    threshold: ThresholdDep,
    caller: IdentifyCaller,
    min_face_size: MinFaceSizeDep,
) -> VerifyResponse:
    """Is the person in the photo this member? With several faces, the largest one is compared with the member's
    template. In the review band the answer is no, with `review: true`."""
    faces = pipeline.analyze_photo(read_upload(file, settings), min_face_size)
    verification = recognition.verify(session, settings, gallery, member_id, faces, threshold=threshold, caller=caller)
    result = verification.result
    nearest = result.candidates[0] if result.candidates else None
    return VerifyResponse(
        member_id=verification.member.id,
        match=result.match is not None,
        review=result.outcome.needs_review,
        distance=round(nearest.distance, 5) if nearest else None,
        confidence=nearest.confidence if nearest else None,
        threshold=round(verification.rule.accept, 5),
        faces_in_photo=verification.faces_in_photo,
        face=DetectedFaceOut.from_face(result.face),
        attempt_id=result.attempt_id,
    )
