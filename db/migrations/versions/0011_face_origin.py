"""Where each face came from: a signup photo, a reviewer's verdict, or a confident visit

Revision ID: 0011
Revises: 0010

Faces learned from visits (services/identity/learning.py) are removed when their attempt is later found a false
match, and signup faces are never pushed out by learned ones: both need to know a face's origin. Faces a reviewer
enrolled so far carry quality.from_review and a source attempt.
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("faces", sa.Column("origin", sa.String(length=16), server_default="signup", nullable=False))
    op.execute("UPDATE faces SET origin = 'review' WHERE source_attempt_id IS NOT NULL")


def downgrade() -> None:
    op.drop_column("faces", "origin")
