"""Apply Alembic migrations programmatically (on service start and from `facegate migrate`)."""

from pathlib import Path

from alembic import command
from alembic.config import Config

ALEMBIC_INI = Path(__file__).resolve().parent / "alembic.ini"


def upgrade_to_head() -> None:
    config = Config(str(ALEMBIC_INI))
    # The application configures logging itself; alembic's fileConfig would replace it.
    config.attributes["configure_logging"] = False
    command.upgrade(config, "head")
