"""The review queue pages by (created_at, id): an index to walk it in that order without sorting every attempt

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_attempts_created_at_id", "attempts", ["created_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_attempts_created_at_id", table_name="attempts")
