"""Member templates weighted by how well each face agrees with the member's other faces

Revision ID: 0010
Revises: 0009

The service's templates (services/identity/templates.py) weigh a face by exp(4 x its mean cosine similarity to the
member's other faces) instead of averaging all alike (docs/identification.md, "Templates"). Members with one or
two faces keep their template (their weights are equal); those with three or more get it recomputed here.

Frozen: the weighting is copied here as it was when this migration was written, so that upgrading an old
database gives the same templates whatever the service's rule becomes later.
"""

from itertools import groupby

import numpy as np
import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_MEMBERS_WITH_THREE_FACES = "SELECT member_id FROM faces WHERE enabled GROUP BY member_id HAVING count(*) >= 3"
_AGREEMENT_WEIGHT = 4.0


def _weighted_template(embeddings: np.ndarray) -> np.ndarray:
    """The normalised mean of three or more unit embeddings, each weighted by exp(4 x its mean cosine similarity
    to the others)."""
    faces = np.asarray(embeddings, dtype=np.float64)
    similarity = faces @ faces.T
    agreement = (similarity.sum(axis=1) - np.diag(similarity)) / (len(faces) - 1)
    mean = np.exp(_AGREEMENT_WEIGHT * agreement) @ faces
    return (mean / max(float(np.linalg.norm(mean)), 1e-12)).astype(np.float32)


def upgrade() -> None:
    connection = op.get_bind()
    # Streamed (a server-side cursor): a big gallery's faces need not fit in memory at once.
    rows = connection.execute(
        sa.text(
            "SELECT member_id, CAST(embedding AS real[]) FROM faces "
            f"WHERE enabled AND member_id IN ({_MEMBERS_WITH_THREE_FACES}) ORDER BY member_id"
        ).execution_options(yield_per=10_000)
    )
    for member_id, faces in groupby(rows, key=lambda row: row[0]):
        template = _weighted_template(np.array([embedding for _, embedding in faces]))
        connection.execute(
            sa.text("UPDATE members SET template = CAST(:template AS vector) WHERE id = :id"),
            {"template": str(template.tolist()), "id": member_id},
        )


def downgrade() -> None:
    op.execute(f"""
        UPDATE members m SET template = (
            SELECT l2_normalize(avg(f.embedding)) FROM faces f WHERE f.member_id = m.id AND f.enabled
        )
        WHERE m.id IN ({_MEMBERS_WITH_THREE_FACES})
    """)
