"""Identify's template index on half-precision copies with tuned graph parameters; the unused face index goes

Revision ID: 0007
Revises: 0006

Faces are only ever read per member (review, template rebuilds), never searched, so their HNSW index only cost
time on every face insert. Built with this server's maintenance_work_mem (docs/scaling.md: raise it for a big
gallery).
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_faces_embedding_hnsw", table_name="faces")
    op.drop_index("ix_members_template_hnsw", table_name="members")
    op.execute(
        "CREATE INDEX ix_members_template_hnsw ON members USING hnsw ((CAST(template AS halfvec(128))) halfvec_l2_ops)"
        " WITH (m = 16, ef_construction = 64)"
    )


def downgrade() -> None:
    op.drop_index("ix_members_template_hnsw", table_name="members")
    op.create_index(
        "ix_members_template_hnsw",
        "members",
        ["template"],
        postgresql_using="hnsw",
        postgresql_ops={"template": "vector_l2_ops"},
    )
    op.create_index(
        "ix_faces_embedding_hnsw",
        "faces",
        ["embedding"],
        postgresql_using="hnsw",
        postgresql_ops={"embedding": "vector_l2_ops"},
    )
