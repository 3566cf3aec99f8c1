from logging.config import fileConfig

from alembic import context

from db.models import Base
from db.session import get_engine, require_pgvector

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logging", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def run_migrations_online() -> None:
    engine = get_engine()
    require_pgvector(engine)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=Base.metadata)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("FaceGate runs migrations online only: `facegate migrate`.")
run_migrations_online()
