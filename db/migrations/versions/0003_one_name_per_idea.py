"""One name per idea: attempts.expression (was emotion); every stored box is {x, y, width, height}

Revision ID: 0003
Revises: 0002
"""
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.alter_column("attempts", "emotion", new_column_name="expression")
    # attempts.box was {x1, y1, x2, y2}; faces.quality.box was [x1, y1, x2, y2].
    op.execute("""
        UPDATE attempts SET box = jsonb_build_object(
            'x', (box->>'x1')::float, 'y', (box->>'y1')::float,
            'width', round(((box->>'x2')::float - (box->>'x1')::float)::numeric, 1),
            'height', round(((box->>'y2')::float - (box->>'y1')::float)::numeric, 1))
        WHERE box ? 'x1'
    """)
    op.execute("""
        UPDATE faces SET quality = jsonb_set(quality, '{box}', jsonb_build_object(
            'x', (quality->'box'->>0)::float, 'y', (quality->'box'->>1)::float,
            'width', round(((quality->'box'->>2)::float - (quality->'box'->>0)::float)::numeric, 1),
            'height', round(((quality->'box'->>3)::float - (quality->'box'->>1)::float)::numeric, 1)))
        WHERE jsonb_typeof(quality->'box') = 'array'
    """)


def downgrade() -> None:
    op.execute("""
        UPDATE faces SET quality = jsonb_set(quality, '{box}', jsonb_build_array(
            (quality->'box'->>'x')::float, (quality->'box'->>'y')::float,
            (quality->'box'->>'x')::float + (quality->'box'->>'width')::float,
            (quality->'box'->>'y')::float + (quality->'box'->>'height')::float))
        WHERE jsonb_typeof(quality->'box') = 'object'
    """)
    op.execute("""
        UPDATE attempts SET box = jsonb_build_object(
            'x1', (box->>'x')::float, 'y1', (box->>'y')::float,
            'x2', (box->>'x')::float + (box->>'width')::float, 'y2', (box->>'y')::float + (box->>'height')::float)
        WHERE box ? 'x'
    """)
    op.alter_column("attempts", "expression", new_column_name="emotion")
