"""Admin review of recorded identify/verify attempts."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from api.deps import AdminCaller, Moment, Offset, SessionDep, SettingsDep, require_role
from api.schemas import (
    AttemptOut,
    AttemptPage,
    FaceOut,
    MemberFaceDistance,
    MemberRef,
    ReviewItemOut,
    VerdictIn,
    VerdictOut,
)
from core.enums import AttemptKind, ReviewStatus, Role
from core.errors import NotFoundError
from db.models import Face
from services.identity import review

router = APIRouter(prefix="/v1/review", tags=["review"], dependencies=[Depends(require_role(Role.ADMIN))])


@router.get("/attempts", response_model=AttemptPage, operation_id="review-queue")
def review_queue(
    session: SessionDep,
    status: ReviewStatus | None = None,
    kind: AttemptKind | None = None,
    needs_review: Annotated[bool | None, Query(description="Only the review band and possible duplicates")] = None,
    since: Moment | None = None,
    until: Moment | None = None,
    offset: Offset = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> AttemptPage:
    """Recorded identify/verify attempts, borderline first (distance nearest the threshold)."""
    items, total = review.queue(
        session,
        status=status,
        kind=kind,
        needs_review=needs_review,
        since=since,
        until=until,
        limit=limit,
        offset=offset,
    )
    return AttemptPage(items=[AttemptOut.model_validate(a) for a in items], total=total, offset=offset, limit=limit)


def review_item_out(item: review.ReviewItem) -> ReviewItemOut:
    return ReviewItemOut(
        attempt=AttemptOut.model_validate(item.attempt),
        probe_crop_available=item.attempt.probe_crop_jpeg is not None,
        member=MemberRef.from_member(item.member) if item.member else None,
        member_faces=faces_out(item.member_faces),
        other_member=MemberRef.from_member(item.other_member) if item.other_member else None,
        other_faces=faces_out(item.other_faces or []),
        verdict=VerdictOut.from_effect(item.verdict) if item.verdict else None,
    )


def faces_out(faces: list[tuple[Face, float]]) -> list[MemberFaceDistance]:
    return [MemberFaceDistance(face=FaceOut.from_face(f), distance=round(d, 5)) for f, d in faces]


@router.get("/attempts/{attempt_id}", response_model=ReviewItemOut, operation_id="review-get")
def review_item(attempt_id: uuid.UUID, session: SessionDep) -> ReviewItemOut:
    """The attempt with the claimed, matched or nearest member's enrolled faces and their distances."""
    return review_item_out(review.item(session, attempt_id))


@router.get(
    "/attempts/{attempt_id}/crop",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}}},
    operation_id="review-crop",
)
def probe_crop(attempt_id: uuid.UUID, session: SessionDep) -> Response:
    attempt = review.get_attempt(session, attempt_id)
    if attempt.probe_crop_jpeg is None:
        raise NotFoundError("The probe crop was not stored or has been purged.", code="crop_not_found")
    return Response(content=attempt.probe_crop_jpeg, media_type="image/jpeg")


@router.post("/attempts/{attempt_id}/verdict", response_model=ReviewItemOut, operation_id="review-verdict")
def give_verdict(
    attempt_id: uuid.UUID, body: VerdictIn, session: SessionDep, settings: SettingsDep, caller: AdminCaller
) -> ReviewItemOut:
    """correct, false_match (blacklists the pair) or false_non_match (optionally enrolls the probe); changeable."""
    review.set_verdict(
        session,
        settings,
        attempt_id,
        body.verdict,
        actor=caller,
        note=body.note,
        member_id=body.member_id,
        enroll=body.enroll,
    )
    return review_item_out(review.item(session, attempt_id))
