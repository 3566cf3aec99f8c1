"""How the service is doing, for the admin overview: decisions per day, the review backlog, what reviewers found,
the gallery, and where the decision points sit between genuine and impostor comparisons."""

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
from sqlalchemy import Date, and_, case, cast, func, select
from sqlalchemy.orm import Session

from core.enums import AttemptKind, Decision, ReviewStatus
from core.settings import Settings
from db.models import Attempt, Face, Member
from services.identity.calibration import GalleryCalibration, gallery_size
from services.identity.matching import DecisionRule

OUTCOMES = ("match", "unknown", "review")  # how identify and verify attempts ended: named, not named, for a person


@dataclass(frozen=True)
class DayCounts:
    day: date
    counts: dict[str, int]  # per outcome


@dataclass(frozen=True)
class Reviewed:
    """Verdicts on attempts: false matches among reviewed matches, false non-matches among the reviewed rest."""

    matches: int
    false_matches: int
    non_matches: int
    false_non_matches: int

    @property
    def false_match_rate(self) -> float | None:
        return self.false_matches / self.matches if self.matches else None

    @property
    def false_non_match_rate(self) -> float | None:
        return self.false_non_matches / self.non_matches if self.non_matches else None


@dataclass(frozen=True)
class Comparisons:
    """Enrolled faces compared with member templates, as identify and verify compare a probe. Genuine: a face with
    its own member's template made without it (members with 2+ faces). Impostor: a face with other members'
    templates. `*_distances` are what verify decides on; `*_scores` identify's 2*d1 - d2 (for an impostor, the
    face as a stranger to the gallery without its own member)."""

    members: int  # members sampled
    genuine_distances: np.ndarray
    impostor_distances: np.ndarray
    genuine_scores: np.ndarray
    impostor_scores: np.ndarray


@dataclass(frozen=True)
class Overview:
    days: list[DayCounts]  # oldest first, every day of the period
    decided_automatically: int  # in the period: attempts no person needs to look at
    backlog: int  # pending attempts that need a person
    backlog_oldest: datetime | None
    reviewed: Reviewed
    members: int
    members_with_template: int
    enabled_faces: int
    comparisons: Comparisons
    identify_rule: DecisionRule
    verify_rule: DecisionRule


def _outcome():
    return case(
        (Attempt.needs_review, "review"),
        (Attempt.decision == Decision.MATCH, "match"),
        else_="unknown",
    )


def decisions_per_day(session: Session, days: int, today: date) -> list[DayCounts]:
    """Identify and verify attempts per UTC day (signups are not decisions about a probe)."""
    first = today - timedelta(days=days - 1)
    day = cast(func.timezone("UTC", Attempt.created_at), Date)
    rows = session.execute(
        select(day, _outcome(), func.count())
        .where(
            Attempt.created_at >= datetime(first.year, first.month, first.day, tzinfo=UTC),
            Attempt.kind != AttemptKind.ENROLL,
        )
        .group_by(day, _outcome())
    ).all()
    counts = {first + timedelta(days=i): dict.fromkeys(OUTCOMES, 0) for i in range(days)}
    for d, outcome, n in rows:
        if d in counts:
            counts[d][outcome] = n
    return [DayCounts(d, c) for d, c in counts.items()]


def reviewed(session: Session) -> Reviewed:
    is_match = Attempt.decision == Decision.MATCH
    verdict = Attempt.review_status
    row = session.execute(
        select(
            func.count().filter(and_(is_match, verdict != ReviewStatus.PENDING)),
            func.count().filter(and_(is_match, verdict == ReviewStatus.FALSE_MATCH)),
            func.count().filter(and_(~is_match, verdict != ReviewStatus.PENDING)),
            func.count().filter(and_(~is_match, verdict == ReviewStatus.FALSE_NON_MATCH)),
        ).where(Attempt.kind != AttemptKind.ENROLL)
    ).one()
    return Reviewed(*row)


def _unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def comparisons(session: Session, sample_members: int) -> Comparisons:
    """Genuine and impostor comparisons within a random sample of members (at most `sample_members`)."""
    sampled = (
        select(Member.id).where(Member.template.is_not(None)).order_by(func.random()).limit(sample_members).subquery()
    )
    rows = session.execute(
        select(Face.member_id, Face.embedding).where(Face.enabled, Face.member_id.in_(select(sampled.c.id)))
    ).all()
    empty = np.zeros(0)
    owners_ids = sorted({m for m, _ in rows})
    if len(owners_ids) < 2:
        return Comparisons(len(owners_ids), empty, empty, empty, empty)
    index = {m: i for i, m in enumerate(owners_ids)}
    owners = np.array([index[m] for m, _ in rows])
    faces = np.array([np.asarray(e, dtype=np.float64) for _, e in rows])
    sums = np.zeros((len(owners_ids), faces.shape[1]))
    np.add.at(sums, owners, faces)
    templates = _unit(sums)
    # Distances between unit vectors; a face's own member is left out of its impostor comparisons.
    others = np.sqrt(np.maximum(0.0, 2.0 - 2.0 * faces @ templates.T))
    others[np.arange(len(faces)), owners] = np.inf
    impostor_distances = others[np.isfinite(others)]
    nearest_two = np.sort(others, axis=1)[:, :2]

    per_member = np.bincount(owners)
    has_others = per_member[owners] >= 2
    left_out = _unit(sums[owners[has_others]] - faces[has_others])
    genuine_distances = np.linalg.norm(faces[has_others] - left_out, axis=1)
    genuine_scores = 2 * genuine_distances - nearest_two[has_others, 0]
    impostor_scores = (
        2 * nearest_two[:, 0] - nearest_two[:, 1] if len(owners_ids) >= 3 else empty
    )  # a stranger needs two members to be scored against
    return Comparisons(len(owners_ids), genuine_distances, impostor_distances, genuine_scores, impostor_scores)


def overview(session: Session, settings: Settings, gallery: GalleryCalibration, *, days: int = 30) -> Overview:
    today = datetime.now(UTC).date()
    per_day = decisions_per_day(session, days, today)
    needs_person = and_(Attempt.needs_review, Attempt.review_status == ReviewStatus.PENDING)
    backlog, oldest = session.execute(select(func.count(), func.min(Attempt.created_at)).where(needs_person)).one()
    calibration = gallery.current(session)
    return Overview(
        days=per_day,
        decided_automatically=sum(d.counts["match"] + d.counts["unknown"] for d in per_day),
        backlog=backlog,
        backlog_oldest=oldest,
        reviewed=reviewed(session),
        members=session.scalar(select(func.count()).select_from(Member)) or 0,
        members_with_template=gallery_size(session),
        enabled_faces=session.scalar(select(func.count()).where(Face.enabled)) or 0,
        comparisons=comparisons(session, settings.calibration_sample_members),
        identify_rule=calibration.identify_rule(settings),
        verify_rule=calibration.verify_rule(settings),
    )
