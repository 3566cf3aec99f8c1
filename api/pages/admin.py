"""The admin web pages at /admin: sign in with an admin key (api.pages.signin), see how the service is doing (the
overview), work the queue, give verdicts, undo blacklist entries, browse, open and delete members."""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from markupsafe import Markup
from sqlalchemy.orm import Session

from api.deps import GalleryDep, SessionDep, SettingsDep
from api.pages import charts
from api.pages.signin import PageSignIn, SignedIn
from core.enums import AttemptKind, ReviewStatus, Role, Verdict
from core.errors import FaceGateError, NotFoundError
from db.models import Attempt
from services.identity import auth, members, overview, review

router = APIRouter(prefix="/admin", include_in_schema=False)
SIGN_IN = PageSignIn(
    prefix="/admin", role=Role.ADMIN, cookie="facegate_admin", title="FaceGate review", key_label="admin API key"
)
SIGN_IN.add_routes(router)

AdminPage = Annotated[SignedIn, Depends(SIGN_IN.current)]


OUTCOME_COLORS = {"match": "#3b7d4f", "unknown": "#c9a227", "review": "#2a5bd7"}
COMPARISON_COLORS = {"genuine": "#3b7d4f", "impostor": "#c0392b"}


def _comparison_charts(found: overview.Overview) -> dict[str, Markup]:
    c = found.comparisons
    return {
        "identify": charts.histograms(
            "Identify scores of genuine and impostor comparisons, with the accept and review scores",
            {"genuine": c.genuine_scores, "impostor": c.impostor_scores},
            COMPARISON_COLORS,
            {"accept": found.identify_rule.accept, "review": found.identify_rule.review},
            "identify score 2·d1 − d2 (lower is nearer)",
        ),
        "verify": charts.histograms(
            "Verify distances of genuine and impostor comparisons, with the accept and review distances",
            {"genuine": c.genuine_distances, "impostor": c.impostor_distances},
            COMPARISON_COLORS,
            {"accept": found.verify_rule.accept, "review": found.verify_rule.review},
            "distance of a face to a member's template",
        ),
    }


@router.get("", response_class=HTMLResponse)
def overview_page(
    request: Request, admin: AdminPage, session: SessionDep, settings: SettingsDep, gallery: GalleryDep
) -> HTMLResponse:
    found = overview.overview(session, settings, gallery)
    decisions = charts.stacked_bars(
        "Identify and verify decisions per day: match, unknown, review",
        [d.day.strftime("%m-%d") for d in found.days],
        {name: [d.counts[name] for d in found.days] for name in overview.OUTCOMES},
        OUTCOME_COLORS,
    )
    return SIGN_IN.page(
        request,
        "overview.html",
        admin,
        o=found,
        decisions_chart=decisions,
        comparison_charts=_comparison_charts(found),
        now=datetime.now(UTC),
    )


QUEUE_PAGE_SIZE = 50


# Each half of a "how close to the line" bar spans this much of the score (distances run from 0 to 2; the
# calibrated 2·d1 − d2 score from about −1 to 2, and its line can be 0 or below).
BAR_HALF_SPAN = 0.5


@dataclass(frozen=True)
class Closeness:
    """Where an attempt's score lies against the line it was decided by, in the same units (lower is nearer):
    the calibrated 2·d1 − d2 score against the accept score, or a distance against a distance threshold."""

    score: float | None
    threshold: float
    position: float  # percent along the bar, the line at 50 and nearer (the match side) to the left
    words: str

    @classmethod
    def of(cls, attempt: Attempt) -> "Closeness":
        score = attempt.score if attempt.score is not None else attempt.distance
        line = attempt.threshold
        if score is None:
            return cls(None, line, 100, "nobody near")
        margin = score - line
        side = "nearer" if margin <= 0 else "farther"
        position = 50 + 50 * min(max(margin / BAR_HALF_SPAN, -1), 1)
        return cls(score, line, round(position, 1), f"{abs(margin):.3f} {side} than the line")


def verdict_choices(attempt: Attempt, item: review.ReviewItem) -> list[tuple[Verdict, str]]:
    """The verdicts that fit the attempt's decision, each in the words of what it says (a false match only where
    a member was matched)."""
    matched = item.member if attempt.matched_member_id else None
    named = item.other_member or (item.member if attempt.claimed_member_id else None)
    return [
        (Verdict.CORRECT, review.verdict_meaning(attempt, Verdict.CORRECT, matched)),
        *([(Verdict.FALSE_MATCH, review.verdict_meaning(attempt, Verdict.FALSE_MATCH, matched))] if matched else []),
        (Verdict.FALSE_NON_MATCH, review.verdict_meaning(attempt, Verdict.FALSE_NON_MATCH, named)),
    ]


@router.get("/queue", response_class=HTMLResponse)
def queue_page(
    request: Request,
    admin: AdminPage,
    session: SessionDep,
    status: str = ReviewStatus.PENDING,
    kind: str = "",
    needs: str = "person",
    after: str = "",
) -> HTMLResponse:
    """Newest first, a page at a time by keyset; by default only what needs a person (needs=any: everything)."""
    attempts, next_position = review.queue_page(
        session,
        status=ReviewStatus(status) if status in list(ReviewStatus) else None,
        kind=AttemptKind(kind) if kind in list(AttemptKind) else None,
        needs_review=True if needs == "person" else None,
        after=review.QueuePosition.parse(after) if after else None,
        limit=QUEUE_PAGE_SIZE,
    )
    shown = {a.claimed_member_id or a.matched_member_id for a in attempts}
    names = {m.id: m for m in members.get_members(session, {i for i in shown if i is not None})}
    closeness = {a.id: Closeness.of(a) for a in attempts}
    filters = {"status": status, "kind": kind, "needs": needs}
    return SIGN_IN.page(
        request,
        "queue.html",
        admin,
        attempts=attempts,
        counts=review.queue_counts(session),
        filters=filters,
        first_page_url=f"/admin/queue?{urlencode(filters)}",
        next_page_url=f"/admin/queue?{urlencode({**filters, 'after': next_position.token()})}"
        if next_position
        else None,
        names=names,
        closeness=closeness,
        with_crop=review.with_probe_crop(session, [a.id for a in attempts]),
        statuses=list(ReviewStatus),
        kinds=list(AttemptKind),
    )


def _item_page(
    request: Request,
    admin: SignedIn,
    session: Session,
    attempt_id: uuid.UUID,
    member_q: str,
    **context: Any,
) -> HTMLResponse:
    """The attempt with its faces, and the members found by the reviewer's search (for a false non-match)."""
    query = member_q.strip()
    found = review.item(session, attempt_id)
    return SIGN_IN.page(
        request,
        "item.html",
        admin,
        item=found,
        closeness=Closeness.of(found.attempt),
        held=review.is_held_signup_photo(found.attempt),
        verdicts=verdict_choices(found.attempt, found),
        member_q=query,
        found_members=members.search_members(session, query) if query else [],
        **context,
    )


@router.get("/attempts/{attempt_id}", response_class=HTMLResponse)
def item_page(
    request: Request, attempt_id: uuid.UUID, admin: AdminPage, session: SessionDep, done: str = "", member_q: str = ""
) -> HTMLResponse:
    # Only confirm what a redirect after saving can say: a link cannot fake "Verdict saved: anything".
    return _item_page(request, admin, session, attempt_id, member_q, done=done if done in list(Verdict) else "")


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
        return _item_page(
            request,
            admin,
            session,
            attempt_id,
            "",
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


def _admin_path(back: str, default: str) -> str:
    """Only redirect within the admin pages."""
    return back if back.startswith("/admin/") else default


@router.get("/faces/{face_id}/disable", response_class=HTMLResponse)
def confirm_disable_face(
    request: Request, face_id: uuid.UUID, admin: AdminPage, session: SessionDep, back: str = ""
) -> HTMLResponse:
    """Ask before a face stops counting: disabling changes whom the member's template matches."""
    face = members.find_face(session, face_id)
    member = members.get_member(session, face.member_id)
    back = _admin_path(back, f"/admin/members/{member.id}")
    return SIGN_IN.page(
        request,
        "confirm.html",
        admin,
        heading=f"Disable this face of {member.display_name}?",
        image_url=f"/admin/faces/{face.id}/crop" if face.crop_jpeg is not None else None,
        image_alt=f"enrolled face of {member.display_name}",
        explanation="The face stays stored but leaves the member's template: photos like it will match them less"
        " readily. You can enable it again from the member's page.",
        action=f"/admin/faces/{face.id}/enabled",
        fields={"enabled": "false", "back": back},
        confirm_label="Disable face",
        cancel_url=back,
    )


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
    return RedirectResponse(_admin_path(back, "/admin"), status_code=303)


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


MEMBERS_PAGE_SIZE = 50
MEMBER_ATTEMPTS_SHOWN = 20


@router.get("/members", response_class=HTMLResponse)
def members_page(
    request: Request,
    admin: AdminPage,
    session: SessionDep,
    q: str = "",
    start: Annotated[int, Query(ge=0)] = 0,
    done: str = "",
) -> HTMLResponse:
    """Every member, oldest first a page at a time, or those whose name or external id contains `q`."""
    query = q.strip()[:255]
    if query:
        found = members.search_members(session, query, limit=MEMBERS_PAGE_SIZE)
        total = len(found)
    else:
        found, total = members.list_members(session, offset=start, limit=MEMBERS_PAGE_SIZE)
    following = start + MEMBERS_PAGE_SIZE
    return SIGN_IN.page(
        request,
        "members.html",
        admin,
        members=found,
        total=total,
        q=query,
        start=start,
        next_url=f"/admin/members?start={following}" if not query and following < total else None,
        done=done == "deleted",
    )


@router.get("/members/{member_id}", response_class=HTMLResponse)
def member_page(request: Request, member_id: uuid.UUID, admin: AdminPage, session: SessionDep) -> HTMLResponse:
    """The member with their faces (enable, disable) and newest attempts."""
    member = members.get_member(session, member_id)
    attempts = review.member_attempts(session, member.id, limit=MEMBER_ATTEMPTS_SHOWN)
    return SIGN_IN.page(
        request,
        "member.html",
        admin,
        member=member,
        faces_with_crop={face.id for face in member.faces if face.crop_jpeg is not None},
        attempts=attempts,
        closeness={a.id: Closeness.of(a) for a in attempts},
        with_crop=review.with_probe_crop(session, [a.id for a in attempts]),
    )


@router.get("/members/{member_id}/delete", response_class=HTMLResponse)
def confirm_delete_member(
    request: Request, member_id: uuid.UUID, admin: AdminPage, session: SessionDep
) -> HTMLResponse:
    member = members.get_member(session, member_id)
    return SIGN_IN.page(
        request,
        "confirm.html",
        admin,
        heading=f"Delete {member.display_name} ({member.external_id})?",
        image_url=None,
        image_alt="",
        explanation=f"This erases the member with their {len(member.faces)} face(s), every face crop and embedding"
        " of theirs, their blacklist entries and the attempts that were them. It cannot be undone; the audit trail"
        " keeps that it happened.",
        action=f"/admin/members/{member.id}/delete",
        fields={},
        confirm_label="Delete member",
        cancel_url=f"/admin/members/{member.id}",
    )


@router.post("/members/{member_id}/delete")
def delete_member(
    member_id: uuid.UUID, admin: AdminPage, session: SessionDep, csrf_token: Annotated[str, Form()]
) -> Response:
    auth.check_csrf(admin[0], csrf_token)
    members.delete_member(session, members.get_member(session, member_id), actor=admin[1])
    return RedirectResponse("/admin/members?done=deleted", status_code=303)
