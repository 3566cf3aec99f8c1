"""The front-desk pages at /desk, for a service or admin key signed in like the review pages (api.pages.signin):
sign a member up from the webcam (/desk/signup) and identify live (/desk/identify), where the receptionist checks
recognised members in (/desk/checkins), or members by the card they show.

The pages' scripts (api/pages/static/desk/) call the JSON routes here with the session cookie and its CSRF token, and
identify over the WebSocket /desk/stream, which api.routes.identify_stream serves like /v1/identify/stream."""

import uuid
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile, WebSocket
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from api.deps import GalleryDep, PipelineDep, SessionDep, SettingsDep, read_upload
from api.forms import Signup, read_signup
from api.pages.signin import PageSignIn, SignedIn
from api.routes.identify_stream import serve_stream
from api.schemas import Box, CheckInOut, DeskSignupOut, ErrorOut, MemberOut, MemberRef, PhotoCheckOut
from core.enums import Role
from core.errors import UnprocessableError
from services.faces.quality import pose_of, turn_of
from services.identity import enrollment, members

router = APIRouter(prefix="/desk", include_in_schema=False)
SIGN_IN = PageSignIn(
    prefix="/desk",
    role=Role.SERVICE,
    cookie="facegate_desk",
    title="FaceGate desk",
    key_label="service or admin API key",
)
SIGN_IN.add_routes(router)
# The pages' scripts, served by the app itself: the desk works without the internet.
STATIC = StaticFiles(directory=Path(__file__).resolve().parent / "static" / "desk")

DeskPage = Annotated[SignedIn, Depends(SIGN_IN.current)]
DeskScript = Annotated[SignedIn, Depends(SIGN_IN.current_for_script)]


@router.get("")
def desk_home() -> RedirectResponse:
    return RedirectResponse("/desk/identify", status_code=303)


@router.get("/signup", response_class=HTMLResponse)
def signup_page(request: Request, signed_in: DeskPage) -> HTMLResponse:
    return SIGN_IN.page(request, "desk_signup.html", signed_in, photos_needed=3)


@router.get("/identify", response_class=HTMLResponse)
def identify_page(request: Request, signed_in: DeskPage, settings: SettingsDep) -> HTMLResponse:
    return SIGN_IN.page(request, "desk_identify.html", signed_in, show_expression=settings.desk_show_expression)


@router.post("/checkins", status_code=201, response_model=CheckInOut)
def check_in(
    signed_in: DeskScript,
    session: SessionDep,
    member_id: Annotated[uuid.UUID | None, Form()] = None,
    external_id: Annotated[str, Form(max_length=255)] = "",
) -> CheckInOut:
    """Check a member in: one the page recognised (member_id), or one whose card the receptionist read
    (external_id). Recorded in the audit trail as member.check_in."""
    if member_id is not None:
        member, how = members.get_member(session, member_id), "face"
    elif external_id.strip():
        member, how = members.find_by_external_id(session, external_id.strip()), "card"
    else:
        raise UnprocessableError("Name the member: member_id or the card's external_id.", code="missing_field")
    entry = members.check_in(session, member, how=how, actor=signed_in[1])
    return CheckInOut(member=MemberRef.from_member(member), how=how, checked_in_at=entry.created_at)


@router.post("/check", response_model=PhotoCheckOut)
def check_photo(
    _: DeskScript, file: Annotated[UploadFile, File()], pipeline: PipelineDep, settings: SettingsDep
) -> PhotoCheckOut:
    """The enrollment gate on one camera frame, nothing stored: the signup page's live guide."""
    check = enrollment.check_photo(pipeline, read_upload(file, settings))
    problem = check.problem
    turn = turn_of(check.chosen.detection.landmarks) if check.chosen is not None else None
    return PhotoCheckOut(
        ok=problem is None,
        problem=ErrorOut.of(problem) if problem else None,
        faces=[Box(**face.detection.box.rounded()) for face in check.faces],
        chosen=next((i for i, face in enumerate(check.faces) if face is check.chosen), None),
        turn=None if turn is None else round(turn, 3),
        pose=None if turn is None else pose_of(turn),
    )


@router.post("/members", status_code=201, response_model=DeskSignupOut)
def sign_up(
    signed_in: DeskScript,
    signup: Annotated[Signup, Depends(read_signup)],
    session: SessionDep,
    pipeline: PipelineDep,
    settings: SettingsDep,
    gallery: GalleryDep,
) -> DeskSignupOut:
    """POST /v1/members' signup with the photos the page took: refused as a duplicate (409 duplicate_face), or
    enrolled, perhaps queued for review as a possible duplicate."""
    member = enrollment.signup_with_photos(
        session,
        settings,
        gallery,
        pipeline,
        external_id=signup.member.external_id,
        display_name=signup.member.display_name,
        metadata=signup.member.metadata,
        photos=signup.photos,
        largest=False,
        allow_duplicate=False,
        threshold=None,
        caller=signed_in[1],
    )
    queued = enrollment.possible_duplicates(session, member)
    held = any(not face.enabled for face in member.faces)  # a photo that may not be this person, for a person
    return DeskSignupOut(
        outcome="queued_for_review" if queued or held else "enrolled",
        member=MemberOut.from_member(member),
        possible_duplicate_of=[
            MemberRef(id=c["member_id"], external_id=c["external_id"], display_name=c["display_name"])
            for attempt in queued
            for c in attempt.candidates[:1]
        ],
    )


@router.websocket("/stream")
async def desk_stream(websocket: WebSocket) -> None:
    await serve_stream(websocket, lambda: SIGN_IN.websocket_key(websocket), camera="desk")
