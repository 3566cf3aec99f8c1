"""Enrollment, the one home of signup and face enrollment for the API and the CLI:
gate each photo's face (no database needed), then store the member and faces after the duplicate-signup check,
and rebuild the member's template.

A member's faces must show one person (services.identity.agreement): each is compared with the member's other
faces at verify's 1:1 lines before anything is stored.

The duplicate check is a 1:N search like identify, on the same calibrated footing: a face nearer another member
than identify's accept distance is refused (409 duplicate_face); one in the review band is enrolled and queued for
a person as a possible duplicate (an `enroll` attempt)."""

import uuid
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.enums import AttemptKind, Decision
from core.errors import ConflictError, FaceGateError, FaceRejectedError
from core.metrics import DECISIONS
from core.settings import Settings
from db.models import ApiKey, Attempt, Face, Member
from db.session import session_scope
from services.faces.pipeline import AnalyzedFace, FacePipeline
from services.faces.quality import QualityGate
from services.identity import agreement, audit, members, templates
from services.identity.agreement import Agreement, FaceAgreement
from services.identity.calibration import Calibration, GalleryCalibration
from services.identity.matching import Candidate, DecisionRule, Outcome, nearest_members
from services.identity.recognition import record_attempt, scored


@dataclass(frozen=True)
class Photo:
    filename: str
    data: bytes


def gate_photo(pipeline: FacePipeline, data: bytes, *, largest: bool) -> AnalyzedFace:
    """The one face a photo may enroll, after the quality gate (FaceRejectedError says why not)."""
    return gate_faces(QualityGate.from_settings(pipeline.settings), pipeline.analyze_photo(data), largest=largest)


def gate_faces(gate: QualityGate, faces: list[AnalyzedFace], *, largest: bool) -> AnalyzedFace:
    frame = faces[0].frame if faces else (0, 0)
    face = faces[gate.choose([f.detection.box for f in faces], frame, largest=largest)]
    gate.check_face(face)
    return face


@dataclass(frozen=True)
class PhotoCheck:
    """What the gate makes of a photo, without storing anything: the faces found, the one it would enroll, or why
    it refuses the photo (the live guide of the desk signup page)."""

    faces: list[AnalyzedFace]
    chosen: AnalyzedFace | None
    problem: FaceRejectedError | None


def check_photo(pipeline: FacePipeline, data: bytes) -> PhotoCheck:
    faces = pipeline.analyze_photo(data)
    try:
        return PhotoCheck(faces, gate_faces(QualityGate.from_settings(pipeline.settings), faces, largest=False), None)
    except FaceRejectedError as exc:
        return PhotoCheck(faces, None, exc)


@dataclass(frozen=True)
class GatedFace:
    photo: Photo
    face: AnalyzedFace


def gate_photos(pipeline: FacePipeline, photos: list[Photo], *, largest: bool) -> list[GatedFace]:
    """Every photo's face, or the first refusal, naming the photo."""
    (outcome,) = gate_photo_sets(pipeline, [photos], largest=largest)
    if isinstance(outcome, FaceGateError):
        raise outcome
    return outcome


def gate_photo_sets(
    pipeline: FacePipeline, photo_sets: Sequence[list[Photo]], *, largest: bool
) -> list[list[GatedFace] | FaceGateError]:
    """gate_photos for each set (each member of a batch signup), its faces or its first refusal: the photos of
    all the sets go through the networks together."""
    gate = QualityGate.from_settings(pipeline.settings)
    analyzed = iter(pipeline.analyze_photos([photo.data for photos in photo_sets for photo in photos]))
    outcomes: list[list[GatedFace] | FaceGateError] = []
    for photos in photo_sets:
        found = [next(analyzed) for _ in photos]  # taken whole, even past a refusal, to keep in step
        try:
            outcomes.append(
                [
                    _gated(gate, index, photo, faces, largest)
                    for index, (photo, faces) in enumerate(zip(photos, found, strict=True))
                ]
            )
        except FaceGateError as exc:
            outcomes.append(exc)
    return outcomes


def _gated(gate: QualityGate, index: int, photo: Photo, faces: Future[list[AnalyzedFace]], largest: bool) -> GatedFace:
    try:
        return GatedFace(photo, gate_faces(gate, faces.result(), largest=largest))
    except FaceGateError as exc:
        exc.details.update(photo_index=index, filename=photo.filename)
        raise


def check_duplicate(
    session: Session,
    settings: Settings,
    gallery: GalleryCalibration,
    member: Member,
    face: AnalyzedFace,
    *,
    threshold: float | None,
    caller: ApiKey | None,
) -> None:
    """Refuse a face that confidently matches another member (a second signup of the same person); queue one in
    the review band as a possible duplicate. A fixed `threshold` refuses within it and queues nothing."""
    calibration = gallery.current(session)
    rule = calibration.identify_rule(settings) if threshold is None else DecisionRule(threshold, threshold)
    # The member's own template (when adding a face) is not a duplicate: search one further.
    nearest = nearest_members(session, face.embedding, settings, k=3, gallery_size=calibration.gallery_size)
    others = scored(
        [c for c in nearest if c.member_id != member.id and not c.blacklisted],
        calibration if threshold is None else None,
        1,
    )
    if not others or others[0].score > rule.review:
        return
    other = others[0]
    if other.score <= rule.accept:
        DECISIONS.labels(AttemptKind.ENROLL, "duplicate_face").inc()
        raise ConflictError(
            f"This face matches another member ({other.external_id}); pass allow_duplicate=true to enroll anyway.",
            code="duplicate_face",
            member={"id": str(other.member_id), "external_id": other.external_id,
                    "display_name": other.display_name},
            distance=round(other.distance, 4), score=round(other.score, 4), threshold=round(rule.accept, 4),
        )  # fmt: skip
    record_attempt(
        session,
        settings,
        kind=AttemptKind.ENROLL,
        request_id=uuid.uuid4(),
        face_index=0,
        face=face,
        candidates=others[:1],
        rule=rule,
        outcome=Outcome(Decision.ENROLLED, None, needs_review=True),
        caller=caller,
        claimed=member,
    )


def store_face(
    session: Session,
    settings: Settings,
    member: Member,
    face: AnalyzedFace,
    *,
    agreement: FaceAgreement,
    rule: DecisionRule,
    caller: ApiKey | None,
) -> Face:
    """Store a face of `member`; a borderline one (agreement.Agreement.BORDERLINE) disabled, with an `enroll`
    attempt that queues it for a person beside the member's faces."""
    stored = Face(
        member_id=member.id,
        embedding=face.embedding.tolist(),
        detection_score=face.detection.score,
        quality={"face_size": round(face.detection.size, 1), "sharpness": round(face.sharpness, 1),
                 "box": face.detection.box.rounded()},
        crop_jpeg=face.crop_jpeg() if settings.store_face_crops else None,
        enabled=agreement.agreement != Agreement.BORDERLINE,
    )  # fmt: skip
    if agreement.agreement == Agreement.BORDERLINE:
        own = Candidate(member.id, member.external_id, member.display_name, member.template_faces,
                        agreement.distance, blacklisted=False, score=agreement.distance)  # fmt: skip
        queued = record_attempt(
            session,
            settings,
            kind=AttemptKind.ENROLL,
            request_id=uuid.uuid4(),
            face_index=0,
            face=face,
            candidates=[own],
            rule=rule,
            outcome=Outcome(Decision.ENROLLED, None, needs_review=True),
            caller=caller,
            claimed=member,
        )
        assert queued is not None  # its one candidate is this member, which this transaction writes or holds
        stored.source_attempt_id = queued.id
    session.add(stored)
    session.flush()
    return stored


def agreement_rule(
    session: Session, settings: Settings, gallery: GalleryCalibration, threshold: float | None
) -> DecisionRule:
    """Verify's 1:1 lines (or a request's fixed threshold): what a member's faces must agree within."""
    if threshold is not None:
        return DecisionRule(threshold, threshold)
    return Calibration(1, gallery.current(session).impostors).verify_rule(settings)


def _overridden(
    session: Session, caller: ApiKey | None, member: Member, refused: list[FaceAgreement], rule: DecisionRule
) -> None:
    """An admin's allow_mismatch took faces in that clearly disagree: on the record."""
    audit.record(session, caller, "member.mismatch_override", "member", member.id,
                 faces=len(refused), distances=",".join(f"{f.distance:.3f}" for f in refused),
                 threshold=round(rule.review, 4))  # fmt: skip


def add_face(
    session: Session,
    settings: Settings,
    gallery: GalleryCalibration,
    member: Member,
    face: AnalyzedFace,
    *,
    allow_duplicate: bool,
    allow_mismatch: bool = False,
    threshold: float | None,
    caller: ApiKey | None,
) -> Face:
    """Enroll a gated face for `member`, unless it is another member's or clearly not this member's (and no
    override); a borderline one is stored disabled and queued (services.identity.agreement)."""
    rule = agreement_rule(session, settings, gallery, threshold)
    template = None if member.template is None else np.asarray(member.template, dtype=np.float32)
    judged = agreement.with_template(face.embedding, template, rule)
    if judged.agreement == Agreement.DISAGREES:
        if not allow_mismatch:
            raise agreement.mismatch_error(judged, rule, against="the member's other faces")
        _overridden(session, caller, member, [judged], rule)
        judged = replace(judged, agreement=Agreement.AGREES)
    if not allow_duplicate:
        check_duplicate(session, settings, gallery, member, face, threshold=threshold, caller=caller)
    stored = store_face(session, settings, member, face, agreement=judged, rule=rule, caller=caller)
    if allow_duplicate:  # an admin's decision (api.deps.check_allow_duplicate), on the record
        audit.record(session, caller, "face.allow_duplicate", "face", stored.id, member_id=member.id)
    templates.rebuild(session, member.id)
    session.refresh(stored)
    return stored


def signup(
    session: Session,
    settings: Settings,
    gallery: GalleryCalibration,
    *,
    external_id: str,
    display_name: str,
    metadata: dict[str, Any],
    faces: list[GatedFace],
    allow_duplicate: bool,
    allow_mismatch: bool = False,
    threshold: float | None,
    caller: ApiKey | None,
    consent: members.Consent | None = None,
) -> Member:
    """Create a member with its gated faces: all of it is stored, or (on any error) none of it. The photos must
    show one person (services.identity.agreement): one that clearly shows someone else is refused
    (face_mismatch) unless an admin passes allow_mismatch, a borderline one is stored disabled and queued."""
    rule = agreement_rule(session, settings, gallery, threshold)
    judged = agreement.among([gated.face.embedding for gated in faces], rule)
    refused = [f for f in judged if f.agreement == Agreement.DISAGREES]
    if refused and not allow_mismatch:
        worst = max(refused, key=lambda f: f.distance)
        error = agreement.mismatch_error(worst, rule, against="the other photos")
        error.details.update(photo_index=worst.index, filename=faces[worst.index].photo.filename)
        raise error
    member = members.create_member(
        session,
        external_id=external_id,
        display_name=display_name,
        metadata=metadata,
        consent=consent,
        actor=caller,
    )
    if allow_duplicate:  # an admin's decision (api.deps.check_allow_duplicate), on the record
        audit.record(session, caller, "member.allow_duplicate", "member", member.id, faces=len(faces))
    if refused:
        _overridden(session, caller, member, refused, rule)
    for index, gated in enumerate(faces):
        try:
            if not allow_duplicate:
                check_duplicate(session, settings, gallery, member, gated.face, threshold=threshold, caller=caller)
            kept = judged[index]
            if kept.agreement == Agreement.DISAGREES:  # forced in by allow_mismatch
                kept = replace(kept, agreement=Agreement.AGREES)
            store_face(session, settings, member, gated.face, agreement=kept, rule=rule, caller=caller)
        except FaceGateError as exc:
            exc.details.update(photo_index=index, filename=gated.photo.filename)
            raise
    templates.rebuild(session, member.id)
    session.refresh(member)
    return member


def signup_with_photos(
    session: Session,
    settings: Settings,
    gallery: GalleryCalibration,
    pipeline: FacePipeline,
    *,
    external_id: str,
    display_name: str,
    metadata: dict[str, Any],
    photos: list[Photo],
    largest: bool,
    allow_duplicate: bool,
    allow_mismatch: bool = False,
    threshold: float | None,
    caller: ApiKey | None,
    consent: members.Consent | None = None,
) -> Member:
    """A signup from photos, as POST /v1/members and the desk page make it: every photo's face through the gate
    (the first refusal names its photo), then `signup`."""
    faces = gate_photos(pipeline, photos, largest=largest)
    return signup(
        session,
        settings,
        gallery,
        external_id=external_id,
        display_name=display_name,
        metadata=metadata,
        faces=faces,
        allow_duplicate=allow_duplicate,
        allow_mismatch=allow_mismatch,
        threshold=threshold,
        caller=caller,
        consent=consent,
    )


@dataclass(frozen=True)
class BatchMember:
    external_id: str
    display_name: str
    metadata: dict[str, Any]
    photos: list[Photo]
    problem: FaceGateError | None = None  # found in the request already (a photo over the size limit)
    consent: members.Consent | None = None


@dataclass(frozen=True)
class BatchOutcome:
    """What became of one member of a batch signup: `created` or `exists` (with its id and faces count), or the
    `error` a single signup of it would have raised."""

    external_id: str
    status: Literal["created", "exists", "error"]
    member_id: uuid.UUID | None = None
    faces: int | None = None
    error: FaceGateError | None = None


def signup_batch(
    pipeline: FacePipeline,
    settings: Settings,
    gallery: GalleryCalibration,
    batch: Sequence[BatchMember],
    *,
    largest: bool,
    allow_duplicate: bool,
    allow_mismatch: bool = False,
    threshold: float | None,
    caller: ApiKey | None,
) -> list[BatchOutcome]:
    """Sign up each member of `batch` as `signup` does, each on its own: one member's refusal leaves the others.
    A member whose external id is already taken `exists` and nothing is written (an interrupted batch is simply
    sent again); a repeat of an external id earlier in the batch is refused. The photos of the others go through
    the networks together; then each member is stored all or nothing (a savepoint each), in one transaction."""
    # Its own short transaction: none stays open while the networks run.
    with session_scope() as session:
        existing = members.find_by_external_ids(session, [item.external_id for item in batch])
    outcomes: dict[int, BatchOutcome] = {}
    todo: list[int] = []
    seen: set[str] = set()
    for index, item in enumerate(batch):
        if item.external_id in seen:
            repeat = ConflictError(
                f"External id {item.external_id!r} appears earlier in this batch.",
                code="duplicate_external_id",
                external_id=item.external_id,
            )
            outcomes[index] = BatchOutcome(item.external_id, "error", error=repeat)
        elif item.external_id in existing:
            outcomes[index] = BatchOutcome(item.external_id, "exists", *existing[item.external_id])
        elif item.problem:
            outcomes[index] = BatchOutcome(item.external_id, "error", error=item.problem)
        else:
            todo.append(index)
        seen.add(item.external_id)
    gated = gate_photo_sets(pipeline, [batch[index].photos for index in todo], largest=largest)
    with session_scope() as session:
        for index, faces in zip(todo, gated, strict=True):
            item = batch[index]
            try:
                if isinstance(faces, FaceGateError):
                    raise faces
                with session.begin_nested():  # this member's rows go, on its error, and only them
                    member = signup(
                        session,
                        settings,
                        gallery,
                        external_id=item.external_id,
                        display_name=item.display_name,
                        metadata=item.metadata,
                        faces=faces,
                        allow_duplicate=allow_duplicate,
                        allow_mismatch=allow_mismatch,
                        threshold=threshold,
                        caller=caller,
                        consent=item.consent,
                    )
                outcomes[index] = BatchOutcome(item.external_id, "created", member.id, len(faces))
            except FaceGateError as exc:
                outcomes[index] = BatchOutcome(item.external_id, "error", error=exc)
    return [outcomes[index] for index in range(len(batch))]


def possible_duplicates(session: Session, member: Member) -> list[Attempt]:
    """The faces of `member` that check_duplicate queued for review as possibly another member's (not those
    held back as possibly not the member's own: their candidate is the member itself)."""
    queued = session.scalars(
        select(Attempt).where(
            Attempt.kind == AttemptKind.ENROLL, Attempt.claimed_member_id == member.id, Attempt.needs_review
        )
    )
    return [a for a in queued if a.candidates and a.candidates[0]["member_id"] != str(member.id)]
