"""Calibrated decisions: accept distances set by a target error rate, not a fixed number.

In 1:N search every enrolled member is another chance for a stranger to come near someone, so a fixed distance
names more and more strangers as the gallery grows. FaceGate models how near a stranger's face comes to one
member's template (the impostor distribution of cosine similarities, a normal fitted to its upper tail) and
picks, for the current gallery size N, the distance at which a stranger is named as *some* member with the
target probability (false positive identification rate, FPIR):

    FPIR(d) = 1 - (1 - p(d)) ** N        p(d): chance that one impostor pair comes within distance d

The impostor distribution is estimated from the gallery itself (each enrolled face against the templates of
other members), blended with a prior measured on LFW while the gallery is small, and refitted as it changes.
Verify (1:1) uses the same distribution with N = 1 and its own false accept target."""

import logging
import math
import threading
import time
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from core.settings import Settings
from db.models import Face, Member
from services.identity.matching import DecisionRule

log = logging.getLogger(__name__)

# Upper-tail quantiles the normal is fitted to: the tail is what decides, and it is heavier than a normal fitted
# to the whole distribution would say.
TAIL_QUANTILES = (0.9, 0.99, 0.999)
# The prior counts as this many impostor pairs when blended with a gallery's own estimate.
PRIOR_PAIRS = 20_000


def distance_of(similarity: float) -> float:
    return math.sqrt(max(0.0, 2.0 - 2.0 * similarity))


def similarity_of(distance: float) -> float:
    return 1.0 - distance**2 / 2.0


@dataclass(frozen=True)
class ImpostorScores:
    """Cosine similarity between a face and a template of someone else: normal(mean, std) in its upper tail."""

    mean: float
    std: float
    pairs: int  # how many impostor pairs it was estimated from

    def pair_rate(self, distance: float) -> float:
        """The chance that one impostor pair comes within `distance`."""
        return 1.0 - NormalDist(self.mean, self.std).cdf(similarity_of(distance))

    def distance_at(self, pair_rate: float) -> float:
        """The distance within which impostor pairs come with probability `pair_rate`."""
        return distance_of(NormalDist(self.mean, self.std).inv_cdf(1.0 - min(max(pair_rate, 1e-15), 0.5)))

    @classmethod
    def fit(cls, similarities: np.ndarray) -> "ImpostorScores":
        """Least-squares normal through the upper-tail quantiles that the sample resolves (>= 10 pairs above)."""
        n = len(similarities)
        levels = [q for q in TAIL_QUANTILES if n * (1 - q) >= 10] or [0.5, 0.9]
        z = np.array([NormalDist().inv_cdf(q) for q in levels])
        s = np.quantile(similarities, levels)
        std, mean = np.polyfit(z, s, 1) if len(levels) > 1 else (float(np.std(similarities)), float(s[0]))
        return cls(float(mean), max(float(std), 1e-3), n)

    def blend(self, other: "ImpostorScores") -> "ImpostorScores":
        """Pair-count-weighted mix of two estimates."""
        w = other.pairs / (other.pairs + self.pairs)
        return ImpostorScores(
            (1 - w) * self.mean + w * other.mean, (1 - w) * self.std + w * other.std, self.pairs + other.pairs
        )


@dataclass(frozen=True)
class Calibration:
    gallery_size: int  # members with a template
    impostors: ImpostorScores

    def fpir(self, distance: float) -> float:
        """Estimated chance that a stranger comes within `distance` of some member of the gallery."""
        return 1.0 - (1.0 - self.impostors.pair_rate(distance)) ** max(self.gallery_size, 1)

    def confidence(self, distance: float) -> float:
        return 1.0 - self.fpir(distance)

    def distance_for_fpir(self, fpir: float) -> float:
        pair_rate = 1.0 - (1.0 - fpir) ** (1.0 / max(self.gallery_size, 1))
        return self.impostors.distance_at(pair_rate)

    def identify_rule(self, settings: Settings) -> DecisionRule:
        return DecisionRule(
            accept=self.distance_for_fpir(settings.identify_fpir),
            review=self.distance_for_fpir(settings.review_fpir),
        )

    def verify_rule(self, settings: Settings) -> DecisionRule:
        return DecisionRule(
            accept=self.impostors.distance_at(settings.verify_far),
            review=self.impostors.distance_at(settings.verify_review_far),
        )


def prior(settings: Settings) -> ImpostorScores:
    return ImpostorScores(settings.prior_impostor_mean, settings.prior_impostor_std, PRIOR_PAIRS)


def impostor_similarities(session: Session, settings: Settings) -> np.ndarray:
    """Each enabled face of a sample of members against the templates of the other sampled members."""
    members = session.execute(
        select(Member.id, Member.template)
        .where(Member.template.is_not(None))
        .order_by(func.random())
        .limit(settings.calibration_sample_members)
    ).all()
    if len(members) < 2:
        return np.zeros(0, dtype=np.float32)
    index = {member_id: i for i, (member_id, _) in enumerate(members)}
    templates = np.array([np.asarray(t, dtype=np.float32) for _, t in members])
    faces = session.execute(
        select(Face.member_id, Face.embedding).where(Face.enabled, Face.member_id.in_(list(index)))
    ).all()
    embeddings = np.array([np.asarray(e, dtype=np.float32) for _, e in faces])
    owners = np.array([index[m] for m, _ in faces])
    similarities = embeddings @ templates.T
    others = owners[:, None] != np.arange(len(members))[None, :]
    return similarities[others]


class GalleryCalibration:
    """The calibration of the current gallery, refitted when its size moves by more than `refit_change` or after
    `refit_seconds`; one per process, shared by request threads."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._lock = threading.Lock()
        self._current: Calibration | None = None
        self._fitted_at = 0.0

    def current(self, session: Session) -> Calibration:
        size = session.scalar(text("SELECT count(*) FROM members WHERE template IS NOT NULL")) or 0
        with self._lock:
            cached = self._current
            fresh = time.monotonic() - self._fitted_at < self.settings.calibration_refit_seconds
            if (
                cached
                and fresh
                and abs(size - cached.gallery_size)
                <= self.settings.calibration_refit_change * max(cached.gallery_size, 1)
            ):
                # The fit still holds; the gallery size itself is always current.
                return Calibration(size, cached.impostors) if size != cached.gallery_size else cached
        estimate = prior(self.settings)
        similarities = impostor_similarities(session, self.settings)
        if len(similarities):
            estimate = estimate.blend(ImpostorScores.fit(similarities))
        calibration = Calibration(size, estimate)
        with self._lock:
            self._current, self._fitted_at = calibration, time.monotonic()
        log.info(
            "calibrated on %d members, %d impostor pairs: mean %.4f std %.4f",
            size,
            len(similarities),
            estimate.mean,
            estimate.std,
        )
        return calibration
