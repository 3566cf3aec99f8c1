"""Search and decide stages: the nearest member templates to a probe embedding, and what to make of them."""

import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace

import numpy as np
from sqlalchemy import Row, text
from sqlalchemy.orm import Session

from core.enums import Decision
from core.settings import Settings
from db.models import EMBEDDING_DIM

# The HNSW index (ix_members_template_hnsw) orders half-precision copies of the templates; the nearest
# :candidates of them are re-ranked by the exact distance to the full-precision template.
_NEAREST_TEMPLATES = text(f"""
    SELECT member_id, external_id, display_name, template_faces, template <-> CAST(:probe AS vector) AS distance
    FROM (
        SELECT m.id AS member_id, m.external_id, m.display_name, m.template_faces, m.template
        FROM members m
        WHERE m.template IS NOT NULL AND (CAST(:member_id AS uuid) IS NULL OR m.id = CAST(:member_id AS uuid))
        ORDER BY CAST(m.template AS halfvec({EMBEDDING_DIM})) <-> CAST(:probe AS halfvec({EMBEDDING_DIM}))
        LIMIT :candidates
    ) AS nearest
    ORDER BY distance
    LIMIT :limit
""")

# SET LOCAL for the transaction, both in one round trip.
_SEARCH_SETTINGS = text(
    "SELECT set_config('hnsw.ef_search', :ef_search, true), set_config('hnsw.iterative_scan', :iterative_scan, true)"
)

# Only the found candidates' blacklist entries are compared with the probe (ix_false_match_blacklist_member_id),
# however long the blacklist grows.
BLACKLISTED_AMONG = text("""
    SELECT DISTINCT member_id FROM false_match_blacklist
    WHERE member_id = ANY(CAST(:member_ids AS uuid[])) AND probe_embedding <-> CAST(:probe AS vector) < :radius
""")

# Per gallery size, from bench/scale.py on the index of migration 0009 (docs/scaling.md, with the runs' dates and
# their build-to-build spread): the smallest hnsw.ef_search at which the index returned the true nearest template
# (exact search) for at least that share of 1,000 genuine probes. A gallery uses the row of the smallest measured
# size at least as large (past the largest: the largest); a target between two entries takes the wider search;
# one above the last entry takes the last.
EF_SEARCH_FOR_RECALL: tuple[tuple[int, tuple[tuple[float, int], ...]], ...] = (
    (10_000, ((1.0, 40),)),
    (100_000, ((0.994, 40), (0.997, 60), (0.999, 80), (1.0, 100))),
    (1_000_000, ((0.972, 100), (0.99, 150), (0.992, 170), (0.995, 200))),
)


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


def ef_search(settings: Settings, candidates: int, gallery_size: int) -> int:
    """hnsw.ef_search for a search that needs `candidates` rows: the setting, or the one for the recall target at
    this gallery size."""
    if settings.search_ef_search is not None:
        chosen = settings.search_ef_search
    else:
        curve = next((c for size, c in EF_SEARCH_FOR_RECALL if size >= gallery_size), EF_SEARCH_FOR_RECALL[-1][1])
        reaching = [ef for recall, ef in curve if recall >= settings.search_recall_target]
        chosen = reaching[0] if reaching else curve[-1][1]
    return max(chosen, candidates)


def nearest_members(
    session: Session,
    probe: np.ndarray,
    settings: Settings,
    *,
    k: int,
    gallery_size: int,
    member_id: uuid.UUID | None = None,
) -> list[Candidate]:
    """Up to k members, nearest template first. `gallery_size` (members with a template, as the calibration
    counts them) sets how wide the index search must be for the recall target."""
    candidates = max(k, settings.search_rerank_candidates)
    literal = vector_literal(probe)
    width = str(ef_search(settings, candidates, gallery_size))
    params = {
        "probe": literal,
        "candidates": candidates,
        "limit": k,
        "member_id": str(member_id) if member_id else None,
    }

    def search(iterative_scan: str) -> Sequence[Row]:
        session.execute(_SEARCH_SETTINGS, {"ef_search": width, "iterative_scan": iterative_scan})
        return session.execute(_NEAREST_TEMPLATES, params).all()

    # HNSW returns at most ef_search rows, and filters apply after the index scan; pgvector's iterative scan goes on
    # until enough rows pass. Identify's search runs without it first: its bookkeeping costs time at every size
    # (docs/scaling.md), and no filter removes what the index holds (a NULL template is not indexed). But
    # templates replaced or deleted since the last vacuum stay in the index, and when enough of them are nearer
    # than every live member, the scan returns fewer rows than the gallery has: then it runs again with it.
    # A member-restricted search (verify) always keeps it, should the planner ever take the index for it.
    if member_id is not None:
        rows = search("strict_order")
    elif len(rows := search("off")) < min(k, gallery_size):
        rows = search("strict_order")
    blacklisted = {
        r.member_id
        for r in session.execute(
            BLACKLISTED_AMONG,
            {"member_ids": [str(r.member_id) for r in rows], "probe": literal, "radius": settings.blacklist_radius},
        )
    }
    return [
        Candidate(
            r.member_id,
            r.external_id,
            r.display_name,
            r.template_faces,
            float(r.distance),
            r.member_id in blacklisted,
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
