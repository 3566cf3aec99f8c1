"""Identify's template index rebuilt with a denser graph (m 32, ef_construction 128)

Revision ID: 0009
Revises: 0008

Measured on a quiet 2-core machine with bench/scale.py at 1M members (docs/scaling.md): m 16 / ef_construction 64
found the true nearest template for 98.3% of probes at ef_search 800 (26.7 / 32.7 ms p50 / p99); m 32 / 128
found it for 99.6% at ef_search 200 (15.1 / 17.9 ms). The price: a 34% larger index, a build 4x as long (19 min
for 1M on 2 cores) and slower inserts. The new index is built CONCURRENTLY beside the old one, which serves
identify (and takes inserts) until the new one replaces it: a running service is not blocked meanwhile.
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def _template_index(m: int, ef_construction: int) -> None:
    # CONCURRENTLY cannot run inside a transaction. An interrupted build leaves an invalid "_new" index: dropped first.
    with op.get_context().autocommit_block():
        op.execute("DROP INDEX CONCURRENTLY IF EXISTS ix_members_template_hnsw_new")
        op.execute(
            "CREATE INDEX CONCURRENTLY ix_members_template_hnsw_new ON members"
            " USING hnsw ((CAST(template AS halfvec(128))) halfvec_l2_ops)"
            f" WITH (m = {m}, ef_construction = {ef_construction})"
        )
        op.execute("DROP INDEX CONCURRENTLY ix_members_template_hnsw")
        op.execute("ALTER INDEX ix_members_template_hnsw_new RENAME TO ix_members_template_hnsw")


def upgrade() -> None:
    _template_index(32, 128)


def downgrade() -> None:
    _template_index(16, 64)
