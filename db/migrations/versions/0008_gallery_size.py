"""The gallery's size (members with a template) kept in one row by triggers, so identify reads it instead of counting

Revision ID: 0008
Revises: 0007

Every identify and verify needs the number of searchable members (it sets the calibrated threshold and the index
search's width). count(*) over members costs a scan that grows with the gallery (docs/scaling.md); statement
triggers keep the count exact in the same transactions that change it, whoever writes (the API, bulk COPY,
another process).
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE gallery_size (
            one_row boolean PRIMARY KEY DEFAULT true CHECK (one_row),
            members bigint NOT NULL
        );
        INSERT INTO gallery_size (members) SELECT count(*) FROM members WHERE template IS NOT NULL;

        CREATE FUNCTION gallery_size_follow_members() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            change bigint := 0;
        BEGIN
            IF TG_OP = 'TRUNCATE' THEN
                UPDATE gallery_size SET members = 0;
                RETURN NULL;
            END IF;
            IF TG_OP IN ('INSERT', 'UPDATE') THEN
                change := change + (SELECT count(*) FROM new_rows WHERE template IS NOT NULL);
            END IF;
            IF TG_OP IN ('UPDATE', 'DELETE') THEN
                change := change - (SELECT count(*) FROM old_rows WHERE template IS NOT NULL);
            END IF;
            IF change <> 0 THEN  -- most updates (a rebuilt template, a new name) leave the count, and its row, alone
                UPDATE gallery_size SET members = members + change;
            END IF;
            RETURN NULL;
        END $$;

        CREATE TRIGGER gallery_size_on_insert AFTER INSERT ON members REFERENCING NEW TABLE AS new_rows
            FOR EACH STATEMENT EXECUTE FUNCTION gallery_size_follow_members();
        CREATE TRIGGER gallery_size_on_update AFTER UPDATE ON members
            REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
            FOR EACH STATEMENT EXECUTE FUNCTION gallery_size_follow_members();
        CREATE TRIGGER gallery_size_on_delete AFTER DELETE ON members REFERENCING OLD TABLE AS old_rows
            FOR EACH STATEMENT EXECUTE FUNCTION gallery_size_follow_members();
        CREATE TRIGGER gallery_size_on_truncate AFTER TRUNCATE ON members
            FOR EACH STATEMENT EXECUTE FUNCTION gallery_size_follow_members();
    """)


def downgrade() -> None:
    op.execute("""
        DROP TRIGGER gallery_size_on_truncate ON members;
        DROP TRIGGER gallery_size_on_delete ON members;
        DROP TRIGGER gallery_size_on_update ON members;
        DROP TRIGGER gallery_size_on_insert ON members;
        DROP FUNCTION gallery_size_follow_members();
        DROP TABLE gallery_size;
    """)
