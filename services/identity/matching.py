"""Search and decide stages: nearest enrolled members for a probe embedding, and whether one is a match."""

import uuid
from dataclasses import asdict, dataclass

import numpy as np
from sqlalchemy import text
from sqlalchemy.orm import Session

# Nearest faces fetched per requested member: a member with several enrolled photos takes several rows.
FACES_PER_MEMBER = 4

_NEAREST_FACES = text("""
    SELECT f.id AS face_id, m.id AS member_id, m.external_id, m.display_name,
           f.embedding <-> CAST(:probe AS vector) AS distance,
           EXISTS (
               SELECT 1 FROM false_match_blacklist b
               WHERE b.member_id = f.member_id AND b.probe_embedding <-> CAST(:probe AS vector) < :radius
           ) AS blacklisted
    FROM faces f JOIN members m ON m.id = f.member_id
    WHERE f.enabled AND (CAST(:member_id AS uuid) IS NULL OR f.member_id = CAST(:member_id AS uuid))
    ORDER BY f.embedding <-> CAST(:probe AS vector)
    LIMIT :limit
""")


@dataclass(frozen=True)
class Candidate:
    member_id: uuid.UUID
    external_id: str
    display_name: str
    face_id: uuid.UUID
    distance: float
    blacklisted: bool  # an admin marked this member a false match for probes like this one

    @property
    def similarity(self) -> float:
        """Cosine similarity of the two unit embeddings, from their Euclidean distance."""
        return 1.0 - self.distance**2 / 2.0

    def to_record(self) -> dict[str, object]:
        """As stored with an attempt."""
        return {
            **asdict(self),
            "member_id": str(self.member_id),
            "face_id": str(self.face_id),
            "similarity": self.similarity,
        }


def vector_literal(embedding: np.ndarray) -> str:
    return "[" + ",".join(f"{v:.7g}" for v in embedding) + "]"


def nearest_members(
    session: Session, probe: np.ndarray, *, k: int, blacklist_radius: float, member_id: uuid.UUID | None = None
) -> list[Candidate]:
    """Up to k members, nearest first, each at the distance of its nearest enabled face."""
    limit = k * FACES_PER_MEMBER
    # HNSW returns at most ef_search rows, and filters (disabled faces, one member) apply after the index scan:
    # search wide enough, and let pgvector (>= 0.8) keep scanning until the filtered rows are found.
    session.execute(text(f"SET LOCAL hnsw.ef_search = {max(40, limit)}"))
    session.execute(text("SET LOCAL hnsw.iterative_scan = strict_order"))
    rows = session.execute(
        _NEAREST_FACES,
        {
            "probe": vector_literal(probe),
            "radius": blacklist_radius,
            "limit": limit,
            "member_id": str(member_id) if member_id else None,
        },
    )
    best: dict[uuid.UUID, Candidate] = {}
    for row in rows:
        if row.member_id not in best:
            best[row.member_id] = Candidate(
                row.member_id,
                row.external_id,
                row.display_name,
                row.face_id,
                float(row.distance),
                bool(row.blacklisted),
            )
    return list(best.values())[:k]


def decide(candidates: list[Candidate], threshold: float) -> Candidate | None:
    """The nearest candidate within the threshold that is not blacklisted; None means unknown."""
    return next((c for c in candidates if c.distance <= threshold and not c.blacklisted), None)
