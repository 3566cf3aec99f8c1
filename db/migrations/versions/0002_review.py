"""review: api keys, audit log, admin sessions, verdicts

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 16:32:25.745712
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('api_keys',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('prefix', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key_hash')
    )
    op.create_table('admin_sessions',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('key_id', sa.UUID(), nullable=False),
    sa.Column('csrf_token', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['key_id'], ['api_keys.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('audit_log',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('actor_key_id', sa.UUID(), nullable=True),
    sa.Column('actor_name', sa.String(length=255), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('target_type', sa.String(length=32), nullable=False),
    sa.Column('target_id', sa.String(length=64), nullable=True),
    sa.Column('details', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['actor_key_id'], ['api_keys.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_audit_log_created_at', 'audit_log', ['created_at'], unique=False)
    op.add_column('attempts', sa.Column('review_note', sa.String(length=1000), nullable=True))
    op.add_column('attempts', sa.Column('reviewed_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('attempts', sa.Column('reviewed_by', sa.UUID(), nullable=True))
    op.create_index('ix_attempts_review_status_created_at', 'attempts', ['review_status', 'created_at'], unique=False)
    op.create_foreign_key('attempts_reviewed_by_fkey', 'attempts', 'api_keys', ['reviewed_by'], ['id'], ondelete='SET NULL')
    op.add_column('faces', sa.Column('source_attempt_id', sa.UUID(), nullable=True))
    op.create_foreign_key('faces_source_attempt_id_fkey', 'faces', 'attempts', ['source_attempt_id'], ['id'], ondelete='SET NULL')


def downgrade() -> None:
    op.drop_constraint('faces_source_attempt_id_fkey', 'faces', type_='foreignkey')
    op.drop_column('faces', 'source_attempt_id')
    op.drop_constraint('attempts_reviewed_by_fkey', 'attempts', type_='foreignkey')
    op.drop_index('ix_attempts_review_status_created_at', table_name='attempts')
    op.drop_column('attempts', 'reviewed_by')
    op.drop_column('attempts', 'reviewed_at')
    op.drop_column('attempts', 'review_note')
    op.drop_index('ix_audit_log_created_at', table_name='audit_log')
    op.drop_table('audit_log')
    op.drop_table('admin_sessions')
    op.drop_table('api_keys')
