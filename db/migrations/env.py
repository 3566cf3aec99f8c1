import time
from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection, text

from db.models import Base
from db.session import get_engine, require_pgvector

# Any fixed number, the same in every process that migrates this database.
MIGRATION_LOCK_KEY = 4_617_324_690_001
config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logging", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _wait_for_the_migration_lock(lock: Connection) -> None:
    """Replicas starting together: one migrates, the others wait here, then find nothing left to do. A session lock
    on a connection of its own in autocommit, polled: no transaction stays open while it is held or awaited, as a
    migration that builds an index CONCURRENTLY (0009) commits on the way and waits for every open transaction."""
    while not lock.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY}).scalar_one():
        time.sleep(0.5)


def run_migrations_online() -> None:
    engine = get_engine()
    require_pgvector(engine)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as lock:
        _wait_for_the_migration_lock(lock)
        try:
            with engine.connect() as connection:
                context.configure(connection=connection, target_metadata=Base.metadata)
                with context.begin_transaction():
                    context.run_migrations()
        finally:
            lock.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY})


if context.is_offline_mode():
    raise SystemExit("FaceGate runs migrations online only: `facegate migrate`.")
run_migrations_online()
