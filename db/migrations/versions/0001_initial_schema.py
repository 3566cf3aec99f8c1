"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-24 15:52:10.909067
"""
from alembic import op
import sqlalchemy as sa
import pgvector.sqlalchemy
from sqlalchemy.dialects import postgresql

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS vector")
    op.create_table('members',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('external_id', sa.String(length=255), nullable=False),
    sa.Column('display_name', sa.String(length=255), nullable=False),
    sa.Column('metadata', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('external_id')
    )
    op.create_table('attempts',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('request_id', sa.UUID(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('face_index', sa.Integer(), nullable=False),
    sa.Column('box', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('detection_score', sa.Float(), nullable=False),
    sa.Column('probe_embedding', pgvector.sqlalchemy.vector.VECTOR(dim=128), nullable=False),
    sa.Column('probe_crop_jpeg', sa.LargeBinary(), nullable=True),
    sa.Column('candidates', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('threshold', sa.Float(), nullable=False),
    sa.Column('decision', sa.String(length=16), nullable=False),
    sa.Column('claimed_member_id', sa.UUID(), nullable=True),
    sa.Column('matched_member_id', sa.UUID(), nullable=True),
    sa.Column('distance', sa.Float(), nullable=True),
    sa.Column('emotion', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('review_status', sa.String(length=24), server_default='pending', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['claimed_member_id'], ['members.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['matched_member_id'], ['members.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_attempts_matched_member_id'), 'attempts', ['matched_member_id'], unique=False)
    op.create_index(op.f('ix_attempts_request_id'), 'attempts', ['request_id'], unique=False)
    op.create_table('faces',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('member_id', sa.UUID(), nullable=False),
    sa.Column('embedding', pgvector.sqlalchemy.vector.VECTOR(dim=128), nullable=False),
    sa.Column('detection_score', sa.Float(), nullable=False),
    sa.Column('quality', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('crop_jpeg', sa.LargeBinary(), nullable=True),
    sa.Column('enabled', sa.Boolean(), server_default='true', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_faces_embedding_hnsw', 'faces', ['embedding'], unique=False, postgresql_using='hnsw', postgresql_ops={'embedding': 'vector_l2_ops'})
    op.create_index(op.f('ix_faces_member_id'), 'faces', ['member_id'], unique=False)
    op.create_table('false_match_blacklist',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('member_id', sa.UUID(), nullable=False),
    sa.Column('probe_embedding', pgvector.sqlalchemy.vector.VECTOR(dim=128), nullable=False),
    sa.Column('attempt_id', sa.UUID(), nullable=True),
    sa.Column('note', sa.String(length=1000), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['attempt_id'], ['attempts.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_false_match_blacklist_member_id'), 'false_match_blacklist', ['member_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_false_match_blacklist_member_id'), table_name='false_match_blacklist')
    op.drop_table('false_match_blacklist')
    op.drop_index(op.f('ix_faces_member_id'), table_name='faces')
    op.drop_index('ix_faces_embedding_hnsw', table_name='faces', postgresql_using='hnsw', postgresql_ops={'embedding': 'vector_l2_ops'})
    op.drop_table('faces')
    op.drop_index(op.f('ix_attempts_request_id'), table_name='attempts')
    op.drop_index(op.f('ix_attempts_matched_member_id'), table_name='attempts')
    op.drop_table('attempts')
    op.drop_table('members')
