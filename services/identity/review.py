"""The review loop: a queue of recorded attempts, verdicts and the false-match blacklist."""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Select, delete, func, or_, select, tuple_, update
from sqlalchemy.orm import Session

from core.enums import AttemptKind, Decision, FaceOrigin, ReviewStatus, Verdict
from core.errors import ConflictError, FaceRejectedError, NotFoundError, UnprocessableError
from core.settings import Settings
from db.models import ApiKey, Attempt, AuditEntry, BlacklistEntry, Face, Member
from services.faces.quality import QualityGate, sharpness_of_jpeg
from services.identity import audit, learning, templates, webhooks


@dataclass(frozen=True)
class VerdictEffect:
    """What the attempt's standing verdict says and did, read back from its audit entry (review.verdict)."""

    verdict: Verdict
    # Who the probe is (correct on a match, false_non_match) or is not (false_match); None: nobody, or for a
    # possible duplicate signup judged correct, different people.
    member: Member | None
    meaning: str  # the verdict in plain words, e.g. "Not in the gallery: nobody was named."
    # The face this verdict put into the member's template: the probe enrolled, or a held signup photo let in.
    enrolled_face_id: uuid.UUID | None
    face_still_enrolled: bool  # False once that face was removed, disabled or pushed out by the per-member cap
    blacklist_entry_id: uuid.UUID | None  # false_match: the (member, probe) pair that no longer matches
    learned_face_removed: bool  # a face the template had learned from this visit by itself was taken out


@dataclass
class ReviewItem:
    attempt: Attempt
    member: Member | None  # the claimed (verify, enroll), matched, or else nearest member
    member_faces: list[tuple[Face, float]]  # that member's enrolled faces with their distance to the probe
    # A possible duplicate signup (enroll): the existing member it came near, shown beside the new one.
    other_member: Member | None = None
    other_faces: list[tuple[Face, float]] | None = None
    verdict: VerdictEffect | None = None  # None while pending


def _filtered(status: ReviewStatus | None, kind: AttemptKind | None, needs_review: bool | None) -> Select:
    """Attempts with this review status, kind and review-band flag (None: any)."""
    query = select(Attempt)
    if status:
        query = query.where(Attempt.review_status == status)
    if kind:
        query = query.where(Attempt.kind == kind)
    if needs_review is not None:
        query = query.where(Attempt.needs_review == needs_review)
    return query


def queue(
    session: Session,
    *,
    status: ReviewStatus | None = None,
    kind: AttemptKind | None = None,
    needs_review: bool | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Attempt], int]:
    """Attempts to review, borderline first: those whose distance lies nearest their threshold."""
    query = _filtered(status, kind, needs_review)
    if since:
        query = query.where(Attempt.created_at >= since)
    if until:
        query = query.where(Attempt.created_at < until)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    margin = func.abs(func.coalesce(Attempt.score, Attempt.distance) - Attempt.threshold)
    rows = session.scalars(
        query.order_by(margin.asc().nulls_last(), Attempt.created_at.desc()).offset(offset).limit(limit)
    )
    return list(rows), total


@dataclass(frozen=True)
class QueuePosition:
    """Where a page of the queue ends: the (created_at, id) of its last attempt. The next page starts after it,
    whatever the queue's size (keyset paging along ix_attempts_created_at_id; no offset to skip over)."""

    created_at: datetime
    id: uuid.UUID

    def token(self) -> str:
        return f"{self.created_at.isoformat()}_{self.id}"

    @classmethod
    def parse(cls, token: str) -> "QueuePosition":
        try:
            created_at, attempt_id = token.rsplit("_", 1)
            moment = datetime.fromisoformat(created_at)
            # In UTC, as the positions given out are: PostgreSQL refuses offsets past 16 h.
            moment = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
            if not 1900 <= moment.year <= 9000:
                raise ValueError("out of range")
            return cls(moment, uuid.UUID(attempt_id))
        except (ValueError, OverflowError):
            raise UnprocessableError(
                "The page position is not one this queue gave out.", code="invalid_cursor"
            ) from None


@dataclass(frozen=True)
class QueueCounts:
    needs_person: int  # pending in the review band or possible duplicates
    decided_automatically: int  # pending, but nobody needs to look
    reviewed: int


def queue_page(
    session: Session,
    *,
    status: ReviewStatus | None,
    kind: AttemptKind | None,
    needs_review: bool | None,
    after: QueuePosition | None,
    limit: int,
) -> tuple[list[Attempt], QueuePosition | None]:
    """A page of the queue, newest first, and the position of the next page (None on the last)."""
    query = _filtered(status, kind, needs_review)
    if after:
        query = query.where(tuple_(Attempt.created_at, Attempt.id) < tuple_(after.created_at, after.id))
    rows = list(session.scalars(query.order_by(Attempt.created_at.desc(), Attempt.id.desc()).limit(limit + 1)))
    page = rows[:limit]
    return page, QueuePosition(page[-1].created_at, page[-1].id) if len(rows) > limit else None


def with_probe_crop(session: Session, attempt_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    """Which of these attempts still have their probe crop (not purged), without loading the crops."""
    query = select(Attempt.id).where(Attempt.id.in_(attempt_ids), Attempt.probe_crop_jpeg.is_not(None))
    return set(session.scalars(query))


def member_attempts(session: Session, member_id: uuid.UUID, *, limit: int) -> list[Attempt]:
    """The member's newest attempts: those that matched or claimed them."""
    query = select(Attempt).where(or_(Attempt.matched_member_id == member_id, Attempt.claimed_member_id == member_id))
    return list(session.scalars(query.order_by(Attempt.created_at.desc(), Attempt.id.desc()).limit(limit)))


def queue_counts(session: Session) -> QueueCounts:
    pending = Attempt.review_status == ReviewStatus.PENDING
    row = session.execute(
        select(
            func.count().filter(pending, Attempt.needs_review),
            func.count().filter(pending, ~Attempt.needs_review),
            func.count().filter(~pending),
        )
    ).one()
    return QueueCounts(*row)


def get_attempt(session: Session, attempt_id: uuid.UUID) -> Attempt:
    attempt = session.get(Attempt, attempt_id)
    if attempt is None:
        raise NotFoundError(f"No attempt {attempt_id}.", code="attempt_not_found", attempt_id=str(attempt_id))
    return attempt


def subject_member_id(attempt: Attempt) -> uuid.UUID | None:
    if attempt.claimed_member_id or attempt.matched_member_id:
        return attempt.claimed_member_id or attempt.matched_member_id
    return uuid.UUID(attempt.candidates[0]["member_id"]) if attempt.candidates else None


def _faces_by_distance(session: Session, member_id: uuid.UUID, probe: list[float]) -> list[tuple[Face, float]]:
    distance = Face.embedding.l2_distance(probe)
    rows = session.execute(select(Face, distance).where(Face.member_id == member_id).order_by(distance))
    return [(face, float(d)) for face, d in rows]


def item(session: Session, attempt_id: uuid.UUID) -> ReviewItem:
    attempt = get_attempt(session, attempt_id)
    member_id = subject_member_id(attempt)
    member = session.get(Member, member_id) if member_id else None
    faces = _faces_by_distance(session, member.id, attempt.probe_embedding) if member else []
    review = ReviewItem(attempt, member, faces, verdict=verdict_effect(session, attempt))
    if attempt.kind == AttemptKind.ENROLL and attempt.candidates:
        other = session.get(Member, uuid.UUID(attempt.candidates[0]["member_id"]))
        if other is not None and other.id != attempt.claimed_member_id:  # not a borderline face of its own member
            review.other_member = other
            review.other_faces = _faces_by_distance(session, other.id, attempt.probe_embedding)
    return review


def _optional_uuid(value: object) -> uuid.UUID | None:
    return uuid.UUID(str(value)) if value else None


def verdict_effect(session: Session, attempt: Attempt) -> VerdictEffect | None:
    """The standing verdict's member and effect. set_verdict writes them into its audit entry (the newest
    review.verdict of the attempt is the standing one: a changed verdict writes a new entry)."""
    if attempt.review_status == ReviewStatus.PENDING:
        return None
    verdict = Verdict(attempt.review_status)
    entry = session.scalars(
        select(AuditEntry)
        .where(AuditEntry.action == "review.verdict", AuditEntry.target_id == str(attempt.id))
        .order_by(AuditEntry.created_at.desc())
        .limit(1)
    ).first()
    details = entry.details if entry else {}
    member_id = _optional_uuid(details.get("member_id"))
    if verdict == Verdict.CORRECT and attempt.decision == Decision.MATCH:
        member_id = attempt.matched_member_id  # a correct match names the member it matched
    member = session.get(Member, member_id) if member_id else None
    face_id = _optional_uuid(details.get("enrolled_face_id") or details.get("enabled_face_id"))
    return VerdictEffect(
        verdict=verdict,
        member=member,
        meaning=verdict_meaning(attempt, verdict, member),
        enrolled_face_id=face_id,
        face_still_enrolled=face_id is not None and getattr(session.get(Face, face_id), "enabled", False),
        blacklist_entry_id=_optional_uuid(details.get("blacklist_entry_id")),
        learned_face_removed=bool(details.get("learned_face_removed_from")),
    )


def is_held_signup_photo(attempt: Attempt) -> bool:
    """An enroll attempt about a signup photo that may not be the member's own (its candidate is the member
    itself), rather than a possible duplicate of another member."""
    return (
        attempt.kind == AttemptKind.ENROLL
        and bool(attempt.candidates)
        and attempt.candidates[0]["member_id"] == str(attempt.claimed_member_id)
    )


def verdict_meaning(attempt: Attempt, verdict: Verdict, member: Member | None) -> str:
    """A verdict on this attempt in a reviewer's words: what "correct" means depends on the decision."""
    who = f"{member.display_name} ({member.external_id})" if member else "the member chosen below"
    if is_held_signup_photo(attempt):
        if verdict == Verdict.CORRECT:
            return "The member's own photo: it joins their template."
        return "Not the member's photo: it stays out of their template."
    if verdict == Verdict.FALSE_MATCH:
        return f"Wrong match: the face is not {who}; it will not match them again."
    if verdict == Verdict.FALSE_NON_MATCH:
        if attempt.kind == AttemptKind.ENROLL:
            return f"Duplicate signup: the new member is the same person as {who}."
        return f"Missed: the face is {who}."
    if attempt.kind == AttemptKind.ENROLL:
        return "Different people: the new member is not a duplicate."
    if attempt.decision == Decision.MATCH:
        return f"Right match: the face is {who}."
    if attempt.kind == AttemptKind.VERIFY:
        return "Right refusal: the face is not the claimed member."
    return "Not in the gallery: the face is nobody enrolled."


def _undo_verdict(session: Session, attempt: Attempt) -> None:
    """Remove what an earlier verdict on this attempt added, so a changed verdict starts clean."""
    session.execute(delete(BlacklistEntry).where(BlacklistEntry.attempt_id == attempt.id))
    learned = session.scalars(
        delete(Face)
        .where(Face.source_attempt_id == attempt.id, Face.origin == FaceOrigin.REVIEW)
        .returning(Face.member_id)
    ).all()
    for member_id in set(learned):
        templates.rebuild(session, member_id)


def queued_signup_face(session: Session, attempt: Attempt) -> Face | None:
    """The borderline signup face an `enroll` attempt queued (stored disabled: services.identity.agreement)."""
    if attempt.kind != AttemptKind.ENROLL:
        return None
    return session.scalar(select(Face).where(Face.source_attempt_id == attempt.id, Face.origin == FaceOrigin.SIGNUP))


def learn_face(session: Session, settings: Settings, attempt: Attempt, member_id: uuid.UUID) -> Face:
    """Add a reviewed probe to the member's faces, through the enrollment gate and the per-member cap (the
    oldest learned face makes room; signup faces never do); the template follows."""
    box = attempt.box
    crop_sharpness = sharpness_of_jpeg(attempt.probe_crop_jpeg) if attempt.probe_crop_jpeg else None
    if crop_sharpness is None:
        raise FaceRejectedError(
            "The probe crop is no longer stored, so its quality cannot be checked.", code="crop_not_found"
        )
    QualityGate.from_settings(settings).check(
        face_size=min(box["width"], box["height"]),
        detection_score=attempt.detection_score,
        crop_sharpness=crop_sharpness,
    )
    learned = session.scalar(
        select(Face).where(
            Face.source_attempt_id == attempt.id, Face.member_id == member_id, Face.origin == FaceOrigin.VISIT
        )
    )
    if learned is not None:  # learned on the visit already: now a reviewer's face, not a copy of it
        learned.origin = FaceOrigin.REVIEW
        return learned
    if not learning.make_room(session, settings, member_id):
        raise ConflictError(
            f"The member has {settings.max_faces_per_member} signup faces, the most it may have; remove one first.",
            code="member_faces_full",
            member_id=str(member_id),
        )
    face = Face(
        member_id=member_id,
        embedding=attempt.probe_embedding,
        detection_score=attempt.detection_score,
        quality={
            "face_size": round(min(box["width"], box["height"]), 1),
            "sharpness": round(crop_sharpness, 1),
            "box": box,
        },
        crop_jpeg=attempt.probe_crop_jpeg,
        origin=FaceOrigin.REVIEW,
        source_attempt_id=attempt.id,
    )
    session.add(face)
    templates.rebuild(session, member_id)
    return face


def set_verdict(
    session: Session,
    settings: Settings,
    attempt_id: uuid.UUID,
    verdict: Verdict,
    *,
    actor: ApiKey | None,
    note: str | None = None,
    member_id: uuid.UUID | None = None,
    enroll: bool = False,
) -> Attempt:
    """Record a reviewer's verdict.

    false_match blacklists (matched member, probe embedding); false_non_match names the member the probe
    really is (the claimed one for verify; for a possible duplicate signup, the existing member it is).
    With enroll, a correct match or a false_non_match adds the probe to that member's faces (learn_face)."""
    attempt = get_attempt(session, attempt_id)
    previous = ReviewStatus(attempt.review_status)
    _undo_verdict(session, attempt)
    effect: dict[str, object] = {}
    if verdict != Verdict.CORRECT:
        if forgotten := learning.forget_learned_from(session, attempt.id):
            effect["learned_face_removed_from"] = ",".join(str(m) for m in forgotten)
        if (queued := queued_signup_face(session, attempt)) is not None and queued.enabled:
            queued.enabled = False  # a borderline signup face said to be the member, and now not: out again
            templates.rebuild(session, queued.member_id)
    named: uuid.UUID | None = None  # the member a false_non_match says it is
    if verdict == Verdict.FALSE_MATCH:
        if attempt.matched_member_id is None:
            raise ConflictError("This attempt matched no member: it cannot be a false match.", code="not_a_match")
        entry = BlacklistEntry(
            member_id=attempt.matched_member_id,
            probe_embedding=attempt.probe_embedding,
            attempt_id=attempt.id,
            note=note,
        )
        session.add(entry)
        session.flush()
        effect |= {"blacklist_entry_id": entry.id, "member_id": attempt.matched_member_id}
    elif verdict == Verdict.FALSE_NON_MATCH:
        target = member_id or attempt.claimed_member_id
        if target is None:
            raise UnprocessableError("Name the member this probe really is (member_id).", code="missing_field")
        if session.get(Member, target) is None:
            raise NotFoundError(f"No member with id {target}.", code="member_not_found", member_id=str(target))
        if attempt.matched_member_id == target:
            raise ConflictError("This attempt did match that member.", code="not_a_non_match")
        effect["member_id"], named = target, target
        if enroll:
            effect["enrolled_face_id"] = learn_face(session, settings, attempt, target).id
    elif verdict == Verdict.CORRECT and (queued := queued_signup_face(session, attempt)) is not None:
        # A borderline signup face is the member after all: into the template.
        queued.enabled = True
        templates.rebuild(session, queued.member_id)
        effect = {"member_id": queued.member_id, "enabled_face_id": queued.id}
    elif verdict == Verdict.CORRECT and enroll:
        if attempt.decision != Decision.MATCH or attempt.matched_member_id is None:
            raise ConflictError("Only a correct match can teach its member's template.", code="not_a_match")
        effect = {
            "member_id": attempt.matched_member_id,
            "enrolled_face_id": learn_face(session, settings, attempt, attempt.matched_member_id).id,
        }
    attempt.review_status, attempt.review_note = ReviewStatus(verdict), note
    attempt.reviewed_at, attempt.reviewed_by = datetime.now(UTC), actor.id if actor else None
    audit.record(session, actor, "review.verdict", "attempt", attempt.id, verdict=verdict, note=note, **effect)
    webhooks.verdict_given(session, attempt, previous, member_id=named)
    session.flush()
    return attempt


def blacklist(session: Session, *, member_id: uuid.UUID | None = None) -> list[tuple[BlacklistEntry, Member]]:
    query = select(BlacklistEntry, Member).join(Member, Member.id == BlacklistEntry.member_id)
    if member_id:
        query = query.where(BlacklistEntry.member_id == member_id)
    rows = session.execute(query.order_by(BlacklistEntry.created_at.desc()))
    return [(entry, member) for entry, member in rows]


def remove_blacklist_entry(session: Session, entry_id: uuid.UUID, *, actor: ApiKey | None) -> None:
    entry = session.get(BlacklistEntry, entry_id)
    if entry is None:
        raise NotFoundError(f"No blacklist entry {entry_id}.", code="blacklist_entry_not_found")
    if entry.attempt_id:
        # The false_match verdict it came from no longer holds: back to the queue.
        session.execute(
            update(Attempt)
            .where(Attempt.id == entry.attempt_id, Attempt.review_status == ReviewStatus.FALSE_MATCH)
            .values(review_status=ReviewStatus.PENDING, reviewed_at=None, reviewed_by=None)
        )
    session.delete(entry)
    audit.record(session, actor, "blacklist.remove", "blacklist_entry", entry_id, member_id=entry.member_id)
