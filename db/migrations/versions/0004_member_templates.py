"""Member templates (one L2-normalised vector per member, searched by identify) and the review band

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op
from pgvector.sqlalchemy import Vector

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("members", sa.Column("template", Vector(128), nullable=True))
    op.add_column("members", sa.Column("template_faces", sa.Integer(), server_default="0", nullable=False))
    op.create_index("ix_members_template_hnsw", "members", ["template"], postgresql_using="hnsw",
                    postgresql_ops={"template": "vector_l2_ops"})
    op.add_column("attempts", sa.Column("needs_review", sa.Boolean(), server_default="false", nullable=False))
    op.add_column("attempts", sa.Column("confidence", sa.Float(), nullable=True))
    op.add_column("attempts", sa.Column("score", sa.Float(), nullable=True))
    op.create_index("ix_attempts_needs_review_created_at", "attempts", ["needs_review", "created_at"])
    # Templates of the members enrolled so far: the normalised mean of their enabled faces.
    op.execute("""
        UPDATE members m SET template = t.template, template_faces = t.faces
        FROM (SELECT member_id, l2_normalize(avg(embedding)) AS template, count(*) AS faces
              FROM faces WHERE enabled GROUP BY member_id) t
        WHERE t.member_id = m.id
    """)


def downgrade() -> None:
    op.drop_index("ix_attempts_needs_review_created_at", table_name="attempts")
    op.drop_column("attempts", "score")
    op.drop_column("attempts", "confidence")
    op.drop_column("attempts", "needs_review")
    op.drop_index("ix_members_template_hnsw", table_name="members")
    op.drop_column("members", "template_faces")
    op.drop_column("members", "template")
