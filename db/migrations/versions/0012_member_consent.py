"""The consent a member gave at signup: the consent text's version and when

Revision ID: 0012
Revises: 0011

Biometric data needs the person's explicit consent (GDPR art. 9, BIPA): a signup may now record which consent
text the person agreed to and when (services.identity.members.Consent). Existing members have none recorded.
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("members", sa.Column("consent_text_version", sa.String(length=64), nullable=True))
    op.add_column("members", sa.Column("consent_given_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("members", "consent_given_at")
    op.drop_column("members", "consent_text_version")
