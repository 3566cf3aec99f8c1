"""Member templates weighted by how well each face agrees with the member's other faces

Revision ID: 0010
Revises: 0009

services/identity/templates.template_of now weighs a face by exp(4 x its mean cosine similarity to the member's
other faces) instead of averaging all alike: on ../shared LFW with 3 photos per member, identify named 93.1% of
members at 188 instead of 91.8%, at the same FPIR (docs/identification.md). Members with one or two faces keep
their template (their weights are equal); those with three or more get it recomputed here.
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


def upgrade() -> None:
    from services.identity.templates import template_of  # the rule the service builds templates by from now on

    connection = op.get_bind()
    # Streamed (a server-side cursor): a big gallery's faces need not fit in memory at once.
    rows = connection.execute(
        sa.text(
            "SELECT member_id, CAST(embedding AS real[]) FROM faces "
            f"WHERE enabled AND member_id IN ({_MEMBERS_WITH_THREE_FACES}) ORDER BY member_id"
        ).execution_options(yield_per=10_000)
    )
    for member_id, faces in groupby(rows, key=lambda row: row[0]):
        template = template_of(np.array([embedding for _, embedding in faces]))
        assert template is not None  # three faces or more
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
