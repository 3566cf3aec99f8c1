"""Calibrated decisions: accept scores set by a target error rate, not a fixed distance.

In 1:N search every enrolled member is another chance for a stranger to come near someone, so a fixed distance
names more and more strangers as the gallery grows. FaceGate models how near a stranger's face comes to one
member's template (the impostor distribution of cosine similarities, with a normal fitted to its upper tail,
where decisions are made) and derives, for the current gallery size N, the score a stranger reaches against
*some* member with the target probability (false positive identification rate, FPIR).

The identify score is s = 2*d1 - d2 = d1 - (d2 - d1) (d1, d2: distances to the nearest and second-nearest
templates): a genuine face is near its own template and clearly farther from the next, a stranger tends to be
about as far from both. bench/identify_study.py chose it on LFW, against d1 alone and other scores
(docs/identification.md). A stranger's d1 is the best of N
per-member draws from the impostor distribution (exact order statistics); its gap d2 - d1 comes from a `GapModel`
fitted on the gallery itself: each enrolled face against the templates of the *other* members is a stranger we
know, and its gap shrinks as its d1 grows (correlation about -0.6 on LFW). Treating the N draws as independent
instead over-estimates the gap: on LFW it lands at half the target FPIR at 150-188 members and gives away 3-5
points of DIR; the fitted gap comes near the target (docs/identification.md, "The gap to the second-nearest"). A gallery too
small to fit the gap falls back to independent draws (conservative). With one member (no d2) the FPIR is the
per-pair rate: FPIR(d) = p(d).

The impostor distribution comes from the gallery itself (each enrolled face against the templates of other
members), shrunk towards a prior measured on LFW while the gallery is small (weight N / (N + 50)), and refitted
as it changes. Verify (1:1) uses the per-pair distribution directly with its own false accept target."""

import logging
import threading
import time
from dataclasses import dataclass, replace
from functools import cached_property
from statistics import NormalDist

import numpy as np
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from core.metrics import GALLERY_MEMBERS
from core.settings import Settings
from db.models import EMBEDDING_DIM, Face, Member
from services.identity.matching import DecisionRule

log = logging.getLogger(__name__)

TAIL_SHARE = 0.05  # the top share of impostor similarities the normal is fitted to
PRIOR_MEMBERS = 50  # the prior weighs as much as a gallery of this many members
GAP_SHARE = 0.3  # the gap model is fitted to the faces whose nearest other template is in this nearest share
GAP_MIN_FACES = 60  # below this many faces in that share the gap is drawn as independent draws would give it
MONTE_CARLO_SAMPLES = 100_000
SEED = 20261125


def distance_of(similarity: np.ndarray | float) -> np.ndarray:
    return np.sqrt(np.maximum(0.0, 2.0 - 2.0 * np.asarray(similarity, dtype=np.float64)))


def similarity_of(distance: float) -> float:
    return 1.0 - distance**2 / 2.0


_STANDARD_NORMAL = NormalDist()
_OPEN_UNIT = (float(np.nextafter(0.0, 1.0)), float(np.nextafter(1.0, 0.0)))  # inv_cdf takes 0 < p < 1 only


def upper_quantile(q: np.ndarray | float) -> np.ndarray:
    """z with P(Z > z) = q for a standard normal Z (vectorised statistics.NormalDist: keeps torch out of serving)."""
    p = np.clip(np.asarray(q, dtype=np.float64), *_OPEN_UNIT)
    return -np.vectorize(_STANDARD_NORMAL.inv_cdf, otypes=[np.float64])(p)


@dataclass(frozen=True)
class ImpostorScores:
    """Cosine similarity s of a face to a template of someone else, in its upper tail: s = a + b * z(q), where q is
    the chance that an impostor pair scores above s and z(q) the standard normal's upper quantile."""

    a: float
    b: float

    def pair_rate(self, distance: float) -> float:
        """The chance that one impostor pair comes within `distance`."""
        return 1.0 - NormalDist(self.a, self.b).cdf(similarity_of(distance))

    def distance_at(self, pair_rate: float | np.ndarray) -> np.ndarray:
        """The distance within which one impostor pair comes with probability `pair_rate`."""
        q = np.clip(np.asarray(pair_rate, dtype=np.float64), 1e-300, 0.5)
        return distance_of(np.minimum(self.a + self.b * upper_quantile(q), 1.0))

    @classmethod
    def fit(cls, similarities: np.ndarray) -> "ImpostorScores":
        """Least squares on the normal Q-Q plot of the top TAIL_SHARE of the similarities."""
        s = np.sort(similarities)[::-1]
        n = max(int(len(s) * TAIL_SHARE), min(len(s), 10))
        b, a = np.polyfit(upper_quantile((np.arange(n) + 0.5) / len(s)), s[:n], 1)
        return cls(float(a), max(float(b), 1e-3))

    def shrink_towards(self, prior: "ImpostorScores", members: int) -> "ImpostorScores":
        """This (a gallery's) estimate, trusted as it grows: weight N / (N + PRIOR_MEMBERS)."""
        w = members / (members + PRIOR_MEMBERS)
        return ImpostorScores(w * self.a + (1 - w) * prior.a, w * self.b + (1 - w) * prior.b)


@dataclass(frozen=True)
class GapModel:
    """How much farther a stranger's second-nearest template is than its nearest, given the nearest distance d1:
    gap = max(0, alpha + beta * d1 + sigma * z), a least-squares line through the gallery's known strangers
    (enrolled faces against the other members' templates) in the near end, where decisions are made."""

    alpha: float
    beta: float
    sigma: float

    def sample(self, d1: np.ndarray, z: np.ndarray) -> np.ndarray:
        return np.maximum(self.alpha + self.beta * d1 + self.sigma * z, 0.0)

    @classmethod
    def fit(cls, d1: np.ndarray, gap: np.ndarray) -> "GapModel | None":
        """The line through the GAP_SHARE of faces nearest to another member; None with too few of them."""
        near = d1 <= np.quantile(d1, GAP_SHARE) if len(d1) else np.zeros(0, dtype=bool)
        if near.sum() < GAP_MIN_FACES or np.ptp(d1[near]) < 1e-6:  # no line through a single point
            return None
        beta, alpha = np.polyfit(d1[near], gap[near], 1)
        sigma = np.std(gap[near] - (alpha + beta * d1[near]))
        return cls(float(alpha), float(beta), float(sigma))


@dataclass(frozen=True)
class Calibration:
    gallery_size: int  # members with a template
    impostors: ImpostorScores
    gaps: GapModel | None = None

    def simulated_strangers(self) -> tuple[np.ndarray, np.ndarray]:
        """(d1, d2 - d1) of simulated strangers: d1 the best of N impostor draws, the gap from the gap model (or,
        without one, from the second best of the N draws taken as independent)."""
        n = max(self.gallery_size, 2)
        rng = np.random.default_rng([SEED, n])
        u1, u2 = rng.random(MONTE_CARLO_SAMPLES), rng.random(MONTE_CARLO_SAMPLES)
        q1 = -np.expm1(np.log(u1) / n)  # the best of n uniforms, as an upper-tail probability
        d1 = self.impostors.distance_at(q1)
        if self.gaps is not None:
            return d1, self.gaps.sample(d1, upper_quantile(u2))
        rest = -np.expm1(np.log(u2) / (n - 1))  # the next best, relative to it
        q2 = q1 + rest - q1 * rest
        return d1, self.impostors.distance_at(q2) - d1

    @property
    def finite(self) -> bool:
        numbers = [self.impostors.a, self.impostors.b]
        if self.gaps is not None:
            numbers += [self.gaps.alpha, self.gaps.beta, self.gaps.sigma]
        return bool(np.all(np.isfinite(numbers)))

    @cached_property
    def stranger_scores(self) -> np.ndarray:
        """Sorted 2*d1 - d2 of the simulated strangers."""
        d1, gap = self.simulated_strangers()
        return np.sort(d1 - gap)

    def fpir(self, score: float) -> float:
        """Estimated chance that a stranger's face scores `score` or better against some member of the gallery."""
        if self.gallery_size <= 1:
            return self.impostors.pair_rate(score)
        return float(np.searchsorted(self.stranger_scores, score, side="right")) / MONTE_CARLO_SAMPLES

    def confidence(self, score: float) -> float:
        return 1.0 - self.fpir(score)

    @cached_property
    def _scores_for_fpir(self) -> dict[float, float]:
        return {}

    def score_for_fpir(self, fpir: float) -> float:
        if self.gallery_size <= 1:
            return float(self.impostors.distance_at(fpir))
        # Kept per target: every identify asks for the same two, and a quantile of the 100,000 simulated scores
        # is not free (docs/performance.md).
        if fpir not in self._scores_for_fpir:
            self._scores_for_fpir[fpir] = float(np.quantile(self.stranger_scores, fpir))
        return self._scores_for_fpir[fpir]

    def identify_rule(self, settings: Settings) -> DecisionRule:
        return DecisionRule(
            accept=self.score_for_fpir(settings.identify_fpir), review=self.score_for_fpir(settings.review_fpir)
        )

    def verify_rule(self, settings: Settings) -> DecisionRule:
        """1:1: on the distance itself, at the per-pair false accept targets."""
        return DecisionRule(
            accept=float(self.impostors.distance_at(settings.verify_far)),
            review=float(self.impostors.distance_at(settings.verify_review_far)),
        )


def prior(settings: Settings) -> ImpostorScores:
    return ImpostorScores(settings.prior_impostor_a, settings.prior_impostor_b)


# A face this near another member's template is a copy of one photo (the same photo signed up twice, which
# allow_duplicate permits), not a stranger: the nearest two photos of different LFW people are 0.42 apart, 1 in
# 100,000 pairs comes within 0.61 (docs/identification.md, "A calibration bad data cannot drag").
DUPLICATE_DISTANCE = 0.3


@dataclass(frozen=True)
class KnownStrangers:
    """Each enabled face of a sample of members against the templates of the other sampled members."""

    members: int  # in the sample
    similarities: np.ndarray  # every (face, other member's template) pair
    nearest: np.ndarray  # per face: distance to the nearest other template (d1)
    gap: np.ndarray  # per face: d2 - d1 over the other templates

    @classmethod
    def of(cls, templates: np.ndarray, embeddings: np.ndarray, owners: np.ndarray) -> "KnownStrangers":
        """From the sampled templates, the enabled faces' embeddings and each face's own template (its index)."""
        similarities = (embeddings @ templates.T).astype(np.float64)
        own = owners[:, None] == np.arange(len(templates))[None, :]
        # Copies of one photo under two members are no strangers: left out, as pairs and as faces.
        copies = ~own & (similarities > similarity_of(DUPLICATE_DISTANCE))
        others = np.where(own | copies, -np.inf, similarities)
        strangers = ~copies.any(axis=1) & (np.isfinite(others).sum(axis=1) >= 2)
        best_two = -np.partition(-others[strangers], 1, axis=1)[:, :2]
        d1, d2 = distance_of(best_two[:, 0]), distance_of(best_two[:, 1])
        return cls(len(templates), similarities[~own & ~copies], d1, d2 - d1)

    def calibration(self, gallery_size: int, settings: Settings) -> Calibration:
        """The impostor fit (shrunk towards the prior) and the gap line these strangers give a gallery."""
        estimate = prior(settings)
        if len(self.similarities) >= 10:
            estimate = ImpostorScores.fit(self.similarities).shrink_towards(estimate, self.members)
        return Calibration(gallery_size, estimate, GapModel.fit(self.nearest, self.gap))


def consistent(templates: np.ndarray, embeddings: np.ndarray, owners: np.ndarray, rule: DecisionRule) -> np.ndarray:
    """Per template: whether every face of its member agrees with the member's other faces (agreement's rule).
    A member whose faces show several people (forced in by an admin, or from before the check) has an average
    face for a template, near many people: as a known stranger it would drag everyone's accept score."""
    keep = np.ones(len(templates), dtype=bool)
    for member in np.unique(owners):
        faces = embeddings[owners == member].astype(np.float64)
        if len(faces) < 2:
            continue
        for i in range(len(faces)):
            others = np.delete(faces, i, axis=0).mean(axis=0)
            if distance_of(faces[i] @ others / max(float(np.linalg.norm(others)), 1e-12)) > rule.review:
                keep[member] = False
                break
    return keep


def known_strangers(session: Session, settings: Settings) -> KnownStrangers:
    members = session.execute(
        select(Member.id, Member.template)
        .where(Member.template.is_not(None))
        .order_by(func.random())
        .limit(settings.calibration_sample_members)
    ).all()
    index = {member_id: i for i, (member_id, _) in enumerate(members)}
    faces = session.execute(
        select(Face.member_id, Face.embedding).where(Face.enabled, Face.member_id.in_(list(index)))
    ).all()
    templates = np.array([np.asarray(t, dtype=np.float32) for _, t in members]).reshape(-1, EMBEDDING_DIM)
    embeddings = np.array([np.asarray(e, dtype=np.float32) for _, e in faces]).reshape(-1, EMBEDDING_DIM)
    owners = np.array([index[m] for m, _ in faces], dtype=np.int64)
    keep = consistent(templates, embeddings, owners, Calibration(1, prior(settings)).verify_rule(settings))
    renumber = np.cumsum(keep) - 1
    kept_faces = keep[owners]
    templates, embeddings, owners = templates[keep], embeddings[kept_faces], renumber[owners[kept_faces]]
    if len(templates) < 3:  # a d2 needs two other members
        return KnownStrangers(len(templates), np.zeros(0), np.zeros(0), np.zeros(0))
    return KnownStrangers.of(templates, embeddings, owners)


def gallery_size(session: Session) -> int:
    """Members with a template: kept by triggers on members (migration 0008), as exact as count(*) without its
    scan of the whole gallery on every request."""
    return session.scalar(text("SELECT members FROM gallery_size")) or 0


class GalleryCalibration:
    """The calibration of the current gallery, refitted (impostor fit and simulated strangers) when its size moves
    by more than `refit_change` or after `refit_seconds`; between refits it stands for the gallery size it was
    fitted at. One per process, shared by request threads."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._lock = threading.Lock()
        self._calibration: Calibration | None = None
        self._fitted_at = 0.0
        # Why the last refit could not fit the gallery (None: it could); readiness reports it.
        self.fallback_reason: str | None = None

    def current(self, session: Session) -> Calibration:
        size = gallery_size(session)
        GALLERY_MEMBERS.set(size)
        with self._lock:
            calibration, fitted_at = self._calibration, self._fitted_at
        if (
            calibration is None
            or time.monotonic() - fitted_at > self.settings.calibration_refit_seconds
            or abs(size - calibration.gallery_size)
            > self.settings.calibration_refit_change * max(calibration.gallery_size, 1)
        ):
            calibration = self._refit(session, size)
        return calibration

    def _refit(self, session: Session, size: int) -> Calibration:
        """A fit of the current gallery; when its data cannot be fitted (degenerate, duplicated), the last good
        fit, or the prior, at the current size: a decision is never refused for want of a calibration."""
        try:
            known = known_strangers(session, self.settings)
            calibration = known.calibration(size, self.settings)
            if not calibration.finite:
                raise ValueError(f"a fit that is not finite: {calibration.impostors}, {calibration.gaps}")
            reason = None
        except (ValueError, np.linalg.LinAlgError, FloatingPointError) as exc:
            with self._lock:
                last = self._calibration
            calibration = replace(last, gallery_size=size) if last else Calibration(size, prior(self.settings))
            reason = f"{exc.__class__.__name__}: {exc}"[:200]
            log.warning("the gallery's calibration could not be fitted (%s): using %s", reason,
                        "the last good fit" if last else "the prior")  # fmt: skip
        with self._lock:
            self._calibration, self._fitted_at, self.fallback_reason = calibration, time.monotonic(), reason
        if reason is None:
            log.info("calibrated on %d members, %d impostor pairs: %s, %s", size, len(known.similarities),
                     calibration.impostors, calibration.gaps)  # fmt: skip
        return calibration
