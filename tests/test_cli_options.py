"""The CLI's own manners, without the models: its version, quiet unless asked, and no new empty database started
where one is expected."""

import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

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
