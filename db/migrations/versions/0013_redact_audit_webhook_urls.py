"""Webhook URLs in the audit trail as it shows them now: redacted

Revision ID: 0013
Revises: 0012

The audit trail used to record a key's new webhook URL (`key.webhook`) as given, with any credentials, query values
or path tokens in it; it now records it redacted (core.logs.redact_url). This rewrites the older entries the same
way. It uses the service's redaction of the day rather than a frozen copy: redacting more
than an older rule did is what an upgrade should do. There is no way back: the secrets are not kept.
"""

import sqlalchemy as sa
from alembic import op

from core.logs import redact_url

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    connection = op.get_bind()
    entries = connection.execute(
        sa.text("SELECT id, details->>'url' FROM audit_log WHERE action = 'key.webhook' AND details->>'url' <> ''")
    ).all()
    for entry_id, url in entries:
        redacted = redact_url(url)
        if redacted != url:
            connection.execute(
                sa.text("UPDATE audit_log SET details = jsonb_set(details, '{url}', to_jsonb(CAST(:url AS text)))"
                        " WHERE id = :id"),
                {"id": entry_id, "url": redacted},
            )  # fmt: skip


def downgrade() -> None:
    pass  # the redacted values stay redacted
