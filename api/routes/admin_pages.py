"""The review web pages at /admin: sign in with an admin key (api.page_signin), work the queue, give verdicts,
undo blacklist entries."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from api.deps import SessionDep, SettingsDep
from api.page_signin import PageSignIn, SignedIn
from core.enums import AttemptKind, ReviewStatus, Role, Verdict
from core.errors import FaceGateError, NotFoundError
from services.identity import auth, members, review

router = APIRouter(prefix="/admin", include_in_schema=False)
SIGN_IN = PageSignIn(
    prefix="/admin", role=Role.ADMIN, cookie="facegate_admin", title="FaceGate review", key_label="admin API key"
)
SIGN_IN.add_routes(router)

AdminPage = Annotated[SignedIn, Depends(SIGN_IN.current)]


@router.get("", response_class=HTMLResponse)
def queue_page(
    request: Request,
    admin: AdminPage,
    session: SessionDep,
    status: str = ReviewStatus.PENDING,
    kind: str = "",
    page: int = 0,
) -> HTMLResponse:
    page_size = 50
    attempts, total = review.queue(
        session,
        status=ReviewStatus(status) if status in list(ReviewStatus) else None,
        kind=AttemptKind(kind) if kind in list(AttemptKind) else None,
        limit=page_size,
        offset=max(page, 0) * page_size,
    )
    shown = {a.claimed_member_id or a.matched_member_id for a in attempts}
    names = {m.id: m for m in members.get_members(session, {i for i in shown if i is not None})}
    return SIGN_IN.page(
        request,
        "queue.html",
        admin,
        attempts=attempts,
        total=total,
        status=status,
        kind=kind,
        page=page,
        page_size=page_size,
        names=names,
        statuses=list(ReviewStatus),
        kinds=list(AttemptKind),
    )


@router.get("/attempts/{attempt_id}", response_class=HTMLResponse)
def item_page(
    request: Request, attempt_id: uuid.UUID, admin: AdminPage, session: SessionDep, done: str = ""
) -> HTMLResponse:
    # Only confirm what a redirect after saving can say: a link cannot fake "Verdict saved: anything".
    return SIGN_IN.page(
        request,
        "item.html",
        admin,
        item=review.item(session, attempt_id),
        done=done if done in list(Verdict) else "",
        verdicts=list(Verdict),
    )


@router.post("/attempts/{attempt_id}/verdict")
def verdict(
    request: Request,
    attempt_id: uuid.UUID,
    admin: AdminPage,
    session: SessionDep,
    settings: SettingsDep,
    csrf_token: Annotated[str, Form()],
    verdict: Annotated[str, Form()],
    note: Annotated[str, Form()] = "",
    member_id: Annotated[str, Form()] = "",
    enroll: Annotated[bool, Form()] = False,
) -> Response:
    auth.check_csrf(admin[0], csrf_token)
    try:
        review.set_verdict(
            session,
            settings,
            attempt_id,
            Verdict(verdict),
            actor=admin[1],
            note=note.strip() or None,
            member_id=uuid.UUID(member_id) if member_id else None,
            enroll=enroll,
        )
    except (FaceGateError, ValueError) as exc:
        # Show the reviewer what was wrong on the same page, with nothing saved.
        session.rollback()
        return SIGN_IN.page(
            request,
            "item.html",
            admin,
            item=review.item(session, attempt_id),
            verdicts=list(Verdict),
            error=getattr(exc, "message", str(exc)),
            status_code=getattr(exc, "status_code", 422),
        )
    return RedirectResponse(f"/admin/attempts/{attempt_id}?done={verdict}", status_code=303)


@router.get("/blacklist", response_class=HTMLResponse)
def blacklist_page(request: Request, admin: AdminPage, session: SessionDep, done: str = "") -> HTMLResponse:
    return SIGN_IN.page(request, "blacklist.html", admin, entries=review.blacklist(session), done=done == "removed")


@router.post("/blacklist/{entry_id}/remove")
def remove_entry(
    entry_id: uuid.UUID, admin: AdminPage, session: SessionDep, csrf_token: Annotated[str, Form()]
) -> Response:
    auth.check_csrf(admin[0], csrf_token)
    review.remove_blacklist_entry(session, entry_id, actor=admin[1])
    return RedirectResponse("/admin/blacklist?done=removed", status_code=303)


@router.post("/faces/{face_id}/enabled")
def set_face_enabled(
    face_id: uuid.UUID,
    admin: AdminPage,
    session: SessionDep,
    csrf_token: Annotated[str, Form()],
    enabled: Annotated[bool, Form()],
    back: Annotated[str, Form()] = "/admin",
) -> Response:
    auth.check_csrf(admin[0], csrf_token)
    members.set_face_enabled(session, members.find_face(session, face_id), enabled, actor=admin[1])
    # Only redirect within the admin pages.
    return RedirectResponse(back if back.startswith("/admin/") else "/admin", status_code=303)


@router.get("/attempts/{attempt_id}/crop")
def attempt_crop(attempt_id: uuid.UUID, _: AdminPage, session: SessionDep) -> Response:
    crop = review.get_attempt(session, attempt_id).probe_crop_jpeg
    if crop is None:
        raise NotFoundError("The probe crop was not stored or has been purged.", code="crop_not_found")
    return Response(crop, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=300"})


@router.get("/faces/{face_id}/crop")
def face_crop(face_id: uuid.UUID, _: AdminPage, session: SessionDep) -> Response:
    face = members.find_face(session, face_id)
    if face.crop_jpeg is None:
        raise NotFoundError("No crop is stored for this face.", code="crop_not_found")
    return Response(face.crop_jpeg, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=300"})
