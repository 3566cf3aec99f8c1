"""Webhooks: a URL and secret per API key, the key behind each attempt, and the delivery log

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("api_keys", sa.Column("webhook_url", sa.String(length=2000), nullable=True))
    op.add_column("api_keys", sa.Column("webhook_secret", sa.String(length=64), nullable=True))
    op.add_column("attempts", sa.Column("caller_key_id", sa.UUID(), nullable=True))
    op.create_foreign_key(
        "attempts_caller_key_id_fkey", "attempts", "api_keys", ["caller_key_id"], ["id"], ondelete="SET NULL"
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("key_id", sa.UUID(), nullable=False),
        sa.Column("event", sa.String(length=64), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(length=1000), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["key_id"], ["api_keys.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_webhook_deliveries_status_next_attempt_at", "webhook_deliveries", ["status", "next_attempt_at"]
    )
    op.create_index("ix_webhook_deliveries_key_id_created_at", "webhook_deliveries", ["key_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_webhook_deliveries_key_id_created_at", table_name="webhook_deliveries")
    op.drop_index("ix_webhook_deliveries_status_next_attempt_at", table_name="webhook_deliveries")
    op.drop_table("webhook_deliveries")
    op.drop_constraint("attempts_caller_key_id_fkey", "attempts", type_="foreignkey")
    op.drop_column("attempts", "caller_key_id")
    op.drop_column("api_keys", "webhook_secret")
    op.drop_column("api_keys", "webhook_url")
