"""The CLI's own manners, without the models: its version, quiet unless asked, no new empty database started
where one is expected, and a database or input file it cannot use named in one line."""

import os
import socket
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pytest

from cli import main
from core.settings import get_settings

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def settings_restored(monkeypatch):
    """--data-dir sets FACEGATE_DATA_DIR for the process: put it back, and the settings read from it."""
    monkeypatch.setenv("FACEGATE_DATA_DIR", os.environ["FACEGATE_DATA_DIR"])
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


def test_version_is_the_packages(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"facegate {version('facegate')}"


@pytest.mark.parametrize("before_the_command", [True, False])
def test_a_command_refuses_to_start_a_new_database_where_it_finds_none(tmp_path, settings_restored, before_the_command):
    elsewhere = tmp_path / "elsewhere"
    option = ["--data-dir", str(elsewhere)]
    with pytest.raises(SystemExit) as exited:
        main([*option, "keys", "list"] if before_the_command else ["keys", "list", *option])
    message = str(exited.value.code)
    assert f"no FaceGate database in {elsewhere / 'pgdata'}" in message
    assert "--data-dir" in message and "FACEGATE_DATA_DIR" in message and "DATABASE_URL" in message
    assert not elsewhere.exists()  # nothing was created


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "cli", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_commands_are_quiet_unless_asked(anonymous, admin_key):
    """The test database (FACEGATE_DATA_DIR) exists: `keys list` prints the keys and no log lines; -v logs."""
    quiet = _cli("keys", "list")
    assert quiet.returncode == 0, quiet.stderr
    assert admin_key[:8] in quiet.stdout
    assert " INFO " not in quiet.stderr
    verbose = _cli("keys", "list", "-v")
    assert verbose.returncode == 0, verbose.stderr
    assert " INFO " in verbose.stderr


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize(
    ("database_url", "said"),
    [
        ("not a url", "DATABASE_URL is not a database URL; it looks like postgresql://"),
        ("mysql://someone:s3cret@127.0.0.1/facegate", "DATABASE_URL must point at PostgreSQL with pgvector, got mysql"),
        (
            f"postgresql://someone:s3cret@127.0.0.1:{_closed_port()}/facegate",
            "Cannot connect to PostgreSQL at postgresql+psycopg2://someone:***@127.0.0.1:",
        ),
    ],
)
def test_serve_names_a_database_it_cannot_use_in_one_line(tmp_path, database_url, said):
    """Before the app starts, so the operator reads which setting to fix instead of a traceback; the password in
    DATABASE_URL is not shown."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DATABASE_URL": database_url, "FACEGATE_DATA_DIR": str(tmp_path)}
    served = subprocess.run(
        [sys.executable, "-m", "cli", "serve", "--port", "1"], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert served.returncode == 2
    assert served.stderr.strip().splitlines()[-1].startswith(f"facegate serve: {said}")
    assert "Traceback" not in served.stderr and "s3cret" not in served.stderr


def test_bad_input_files_are_named_in_one_line(tmp_path, capsys):
    """A folder or file that cannot be what the command reads is refused before anything is enrolled or imported;
    enrolling nobody from a folder without people would look like success."""
    (tmp_path / "empty").mkdir()
    (tmp_path / "junk.npz").write_text("not an archive")
    np.savez(tmp_path / "no_embeddings.npz", external_id=np.array(["a"]))
    np.savez(tmp_path / "short.npz", external_id=np.array(["a"]), embedding=np.ones((1, 5)))
    cases = {
        ("enroll-folder", str(tmp_path / "missing")): "missing is not a folder",
        ("enroll-folder", str(tmp_path / "empty")): "empty holds no <person>/ folders of photos",
        (
            "import-embeddings",
            str(tmp_path / "missing.npz"),
        ): "missing.npz is not an .npz with external_id and embedding",
        ("import-embeddings", str(tmp_path / "junk.npz")): "junk.npz is not an .npz",
        ("import-embeddings", str(tmp_path / "no_embeddings.npz")): "no_embeddings.npz is not an .npz",
        ("import-embeddings", str(tmp_path / "short.npz")): "Embeddings must be an N x 128 array, got (1, 5)",
    }
    for arguments, said in cases.items():
        with pytest.raises(SystemExit) as exited:
            main(list(arguments))
        assert exited.value.code == 2
        assert said in capsys.readouterr().err, arguments
