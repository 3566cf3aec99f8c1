"""Search and decide stages: the nearest member templates to a probe embedding, and what to make of them."""

import uuid
from dataclasses import asdict, dataclass, replace

import numpy as np
from sqlalchemy import text
from sqlalchemy.orm import Session

from core.enums import Decision

_NEAREST_TEMPLATES = text("""
    SELECT m.id AS member_id, m.external_id, m.display_name, m.template_faces,
           m.template <-> CAST(:probe AS vector) AS distance,
           EXISTS (
               SELECT 1 FROM false_match_blacklist b
               WHERE b.member_id = m.id AND b.probe_embedding <-> CAST(:probe AS vector) < :radius
           ) AS blacklisted
    FROM members m
    WHERE m.template IS NOT NULL AND (CAST(:member_id AS uuid) IS NULL OR m.id = CAST(:member_id AS uuid))
    ORDER BY m.template <-> CAST(:probe AS vector)
    LIMIT :limit
""")


@dataclass(frozen=True)
class Candidate:
    member_id: uuid.UUID
    external_id: str
    display_name: str
    template_faces: int  # how many enabled faces back the member's template
    distance: float  # to the member's template
    blacklisted: bool  # an admin marked this member a false match for probes like this one
    # What the decision compares: 2*d - (distance of the next candidate) when calibrated, else the distance.
    score: float
    # 1 - the estimated chance that a stranger's face comes this near some member of this gallery
    # (services.identity.calibration); None when the caller set a fixed threshold.
    confidence: float | None = None

    @property
    def similarity(self) -> float:
        """Cosine similarity of the two unit vectors, from their Euclidean distance."""
        return 1.0 - self.distance**2 / 2.0

    def to_record(self) -> dict[str, object]:
        """As stored with an attempt."""
        return {**asdict(self), "member_id": str(self.member_id), "similarity": self.similarity}


def rescored(candidates: list[Candidate], *, with_next: bool) -> list[Candidate]:
    """Scores for a calibrated decision: 2*d - d_next, the next candidate's distance (with none: d). Without
    `with_next` (a fixed threshold, or 1:1) the score is the distance."""
    result = []
    for i, c in enumerate(candidates):
        following = candidates[i + 1].distance if with_next and i + 1 < len(candidates) else c.distance
        result.append(replace(c, score=2 * c.distance - following))
    return result


def vector_literal(embedding: np.ndarray) -> str:
    return "[" + ",".join(f"{v:.7g}" for v in embedding) + "]"


def nearest_members(
    session: Session, probe: np.ndarray, *, k: int, blacklist_radius: float, member_id: uuid.UUID | None = None
) -> list[Candidate]:
    """Up to k members, nearest template first."""
    # HNSW returns at most ef_search rows, and the filters apply after the index scan: search wide enough, and
    # let pgvector (>= 0.8) keep scanning until the filtered rows are found.
    session.execute(text(f"SET LOCAL hnsw.ef_search = {max(40, 4 * k)}"))
    session.execute(text("SET LOCAL hnsw.iterative_scan = strict_order"))
    rows = session.execute(
        _NEAREST_TEMPLATES,
        {
            "probe": vector_literal(probe),
            "radius": blacklist_radius,
            "limit": k,
            "member_id": str(member_id) if member_id else None,
        },
    )
    return [
        Candidate(
            r.member_id,
            r.external_id,
            r.display_name,
            r.template_faces,
            float(r.distance),
            bool(r.blacklisted),
            score=float(r.distance),
        )
        for r in rows
    ]


@dataclass(frozen=True)
class DecisionRule:
    """Where a score falls: a match at or below `accept`, the review band up to `review`, else unknown."""

    accept: float
    review: float


@dataclass(frozen=True)
class Outcome:
    decision: Decision
    match: Candidate | None  # the named member (decision match)
    needs_review: bool  # in the review band: nobody is named, and a person should look


def decide(candidates: list[Candidate], rule: DecisionRule, *, miss: Decision) -> Outcome:
    """The nearest candidate that is not blacklisted decides (blacklisted members never match; the next one may).
    `miss` is what no match is called: unknown (identify) or no_match (verify). Identify calls the review band
    `review`; verify answers no_match there, marked for review."""
    nearest = next((c for c in candidates if not c.blacklisted), None)
    if nearest is not None and nearest.score <= rule.accept:
        return Outcome(Decision.MATCH, nearest, needs_review=False)
    if nearest is not None and nearest.score <= rule.review:
        return Outcome(Decision.REVIEW if miss == Decision.UNKNOWN else miss, None, needs_review=True)
    return Outcome(miss, None, needs_review=False)
