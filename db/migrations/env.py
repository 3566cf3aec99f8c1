from logging.config import fileConfig

from alembic import context
from sqlalchemy import text

from db.models import Base
from db.session import get_engine, require_pgvector

# Any fixed number, the same in every process that migrates this database.
MIGRATION_LOCK_KEY = 4_617_324_690_001
config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logging", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def run_migrations_online() -> None:
    engine = get_engine()
    require_pgvector(engine)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=Base.metadata)
        with context.begin_transaction():
            # Replicas starting together: one migrates, the others wait here, then find nothing left to do.
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("FaceGate runs migrations online only: `facegate migrate`.")
run_migrations_online()
