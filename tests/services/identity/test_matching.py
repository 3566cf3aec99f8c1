"""Identify's search on the embedded database: ef_search from the recall target, the exact re-rank, the blacklist
lookup, and the bulk import that loads galleries (no models)."""

import json

import numpy as np
import pytest
from sqlalchemy import select, text

from core.errors import FaceGateError
from core.settings import get_settings
from db.models import Face, Member
from services.identity.matching import BLACKLISTED_AMONG, EF_SEARCH_FOR_RECALL, ef_search, nearest_members


def unit_rows(n: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, 128)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def literal(v: np.ndarray) -> str:
    return "[" + ",".join(f"{x:.7g}" for x in v) + "]"


def import_gallery(n: int, seed: int = 0, **kwargs):
    from db.session import get_engine
    from services.identity.bulk import import_embeddings

    gallery = unit_rows(n, seed)
    ids = [f"g{i:05d}" for i in range(n)]
    return gallery, ids, import_embeddings(get_engine(), ids, ids, gallery, **kwargs)


def test_ef_search_follows_the_recall_target_and_the_gallery_size():
    settings = get_settings().model_copy()
    for size, curve in EF_SEARCH_FOR_RECALL:
        for recall, ef in curve:
            settings.search_recall_target = recall
            assert ef_search(settings, 5, size) == ef
    small, (large, large_curve) = EF_SEARCH_FOR_RECALL[0][0], EF_SEARCH_FOR_RECALL[-1]
    settings.search_recall_target = 0.99
    assert ef_search(settings, 5, 50) == ef_search(settings, 5, small)  # below the smallest size measured
    assert ef_search(settings, 5, small + 1) == ef_search(settings, 5, EF_SEARCH_FOR_RECALL[1][0])
    assert ef_search(settings, 5, 10 * large) == ef_search(settings, 5, large)  # past the largest
    assert ef_search(settings, 5, small) < ef_search(settings, 5, large)  # a bigger gallery searches wider
    settings.search_recall_target = (large_curve[0][0] + large_curve[1][0]) / 2
    assert ef_search(settings, 5, large) == large_curve[1][1]  # between two entries: the wider search
    settings.search_recall_target = 0.99999
    assert ef_search(settings, 5, large) == large_curve[-1][1]
    settings.search_ef_search = 7
    assert ef_search(settings, 5, large) == 7
    assert ef_search(settings, 30, large) == 30  # never fewer than the candidates it must return


def test_search_uses_the_chosen_ef_search_and_reranks_exactly(anonymous):
    from db.session import session_scope

    gallery, ids, _ = import_gallery(300)
    settings = get_settings().model_copy(update={"search_recall_target": 0.995, "search_rerank_candidates": 12})
    probe = unit_rows(1, seed=99)[0]
    with session_scope() as session:
        found = nearest_members(session, probe, settings, k=6, gallery_size=300)
        in_force = session.execute(text("SHOW hnsw.ef_search")).scalar_one()
        scan = session.execute(text("SHOW hnsw.iterative_scan")).scalar_one()
    assert int(in_force) == ef_search(settings, 12, 300)
    assert scan == "off"  # nothing the index holds is filtered out
    exact = np.linalg.norm(gallery - probe, axis=1)
    order = np.argsort(exact)[:6]
    assert [c.external_id for c in found] == [ids[i] for i in order]
    # Full-precision distances (half precision would be off by ~1e-3), nearest first.
    assert np.allclose([c.distance for c in found], exact[order], atol=1e-5)

    # Restricted to one member (verify), the search returns that member even when it is the farthest from the probe.
    farthest = int(np.argmax(exact))
    with session_scope() as session:
        member = session.scalar(select(Member.id).where(Member.external_id == ids[farthest]))
        (only,) = nearest_members(session, probe, settings, k=1, gallery_size=300, member_id=member)
        scan = session.execute(text("SHOW hnsw.iterative_scan")).scalar_one()
    assert only.external_id == ids[farthest] and np.isclose(only.distance, exact[farthest], atol=1e-5)
    assert scan == "strict_order"


def test_template_versions_awaiting_vacuum_do_not_hide_a_member(anonymous):
    """Every template update leaves the old version in the index until a vacuum, and the index scan returns those
    versions first when they are nearer: identify's search goes on until it has found live members."""
    from db.session import session_scope

    _, ids, _ = import_gallery(100)
    probe = unit_rows(1, seed=7)[0]
    kept = probe + 0.05 * unit_rows(1, seed=8)[0]
    kept /= np.linalg.norm(kept)
    update = text("UPDATE members SET template = CAST(:template AS vector) WHERE external_id = :id")
    with session_scope() as session:
        session.execute(text("ALTER TABLE members SET (autovacuum_enabled = false)"))
    try:
        near = probe + 0.001 * unit_rows(60, seed=9)  # distinct: the index keeps equal vectors as one element
        versions = list(near / np.linalg.norm(near, axis=1, keepdims=True)) + [kept]
        for template in versions:  # 60 versions 0.001 from the probe, replaced in the end by one 0.05 away
            with session_scope() as session:
                session.execute(update, {"template": literal(template), "id": ids[0]})
        with session_scope() as session:
            session.execute(text("SET LOCAL enable_seqscan = off"))  # the index, as in a big gallery
            found = nearest_members(session, probe, get_settings(), k=6, gallery_size=100)
    finally:
        with session_scope() as session:
            session.execute(text("ALTER TABLE members RESET (autovacuum_enabled)"))
    assert len(found) == 6
    assert found[0].external_id == ids[0] and np.isclose(found[0].distance, np.linalg.norm(kept - probe), atol=1e-5)


def test_blacklist_compares_only_the_candidates_entries(anonymous):
    from db.session import session_scope

    gallery, ids, _ = import_gallery(200)
    probe = gallery[0]
    with session_scope() as session:
        members = dict(session.execute(text("SELECT external_id, id FROM members")).all())
        # 100 entries per member, all far from the probe, then one near it for g00001 only.
        session.execute(
            text(
                "INSERT INTO false_match_blacklist (id, member_id, probe_embedding) "
                "SELECT gen_random_uuid(), m.id, CAST(:far AS vector) FROM members m, generate_series(1, 100)"
            ),
            {"far": literal(-probe)},
        )
        session.execute(
            text(
                "INSERT INTO false_match_blacklist (id, member_id, probe_embedding) "
                "VALUES (gen_random_uuid(), :member, CAST(:near AS vector))"
            ),
            {"member": members["g00001"], "near": literal(probe)},
        )
        session.execute(text("ANALYZE false_match_blacklist"))
    settings = get_settings()
    with session_scope() as session:
        found = {c.external_id: c.blacklisted for c in nearest_members(session, probe, settings, k=3, gallery_size=200)}
        candidates = [str(members[i]) for i in ("g00000", "g00001", "g00002")]
        plan = session.execute(
            text("EXPLAIN (ANALYZE, FORMAT JSON) " + BLACKLISTED_AMONG.text),
            {"member_ids": candidates, "probe": literal(probe), "radius": settings.blacklist_radius},
        ).scalar_one()
    assert found["g00000"] is False and found.get("g00001", True) is True
    nodes = json.dumps(plan)
    assert "Seq Scan" not in nodes, nodes
    # Of 20,001 entries, only the 3 candidates' ~300 reach the distance filter.
    scanned = _rows_read(plan[0]["Plan"])
    assert scanned <= 3 * 101, plan


def _rows_read(node: dict) -> int:
    """Rows the plan's leaves (its table and index scans) read, before any filter above them."""
    if "Plans" not in node:
        return node.get("Actual Rows", 0) + node.get("Rows Removed by Filter", 0)
    return sum(_rows_read(child) for child in node["Plans"])


def test_bulk_import_resumes_after_an_interruption(anonymous):
    from db.session import session_scope
    from services.identity.bulk import import_embeddings

    class Interrupted(Exception):
        pass

    def stop_after_first_batch(done: int, total: int) -> None:
        raise Interrupted

    with pytest.raises(Interrupted):
        import_gallery(250, batch_size=100, rebuild_index=True, progress=stop_after_first_batch)
    with session_scope() as session:
        assert session.execute(text("SELECT count(*) FROM members")).scalar_one() == 100
        assert session.execute(text("SELECT to_regclass('ix_members_template_hnsw')")).scalar_one() is None
    seen = []
    gallery, ids, report = import_gallery(250, batch_size=100, rebuild_index=True, progress=lambda d, t: seen.append(d))
    assert (report.imported, report.skipped) == (150, 100)
    assert seen == [100, 200, 250] and report.index_seconds is not None
    with session_scope() as session:
        assert session.execute(text("SELECT to_regclass('ix_members_template_hnsw')")).scalar_one() is not None
        rows = session.execute(
            select(Member.external_id, Member.template, Member.template_faces, Face.embedding)
            .join(Face)
            .order_by(Member.external_id)
        ).all()
    assert [r.external_id for r in rows] == ids and {r.template_faces for r in rows} == {1}
    assert np.allclose(np.array([r.template for r in rows]), gallery, atol=1e-6)
    assert np.allclose(np.array([r.embedding for r in rows]), gallery, atol=1e-6)
    with pytest.raises(FaceGateError) as bad:
        from db.session import get_engine

        import_embeddings(get_engine(), ["a"], ["A"], np.zeros((1, 128), np.float32))
    assert bad.value.code == "bad_embeddings"


def test_import_embeddings_command_reports_its_rate_and_resumes(anonymous, tmp_path, capsys):
    from cli import main

    gallery = unit_rows(5, seed=3)
    file = tmp_path / "gallery.npz"
    np.savez(file, external_id=np.array([f"c{i}" for i in range(5)]), embedding=gallery)
    main(["import-embeddings", str(file), "--batch", "2"])
    assert "imported 5 members (0 already there)" in capsys.readouterr().out
    main(["import-embeddings", str(file), "--rebuild-index"])
    out = capsys.readouterr().out
    assert "imported 0 members (5 already there)" in out and "index built in" in out


def test_gallery_size_follows_every_write_to_members(anonymous):
    """The triggers' count equals count(*) after bulk COPY, templates cleared and set, deletes and TRUNCATE."""
    from db.session import session_scope
    from services.identity.calibration import gallery_size

    def both() -> tuple[int, int]:
        with session_scope() as session:
            counted = session.execute(text("SELECT count(*) FROM members WHERE template IS NOT NULL")).scalar_one()
            return gallery_size(session), counted

    import_gallery(120)
    assert both() == (120, 120)
    with session_scope() as session:
        session.execute(text("UPDATE members SET template = NULL WHERE external_id < 'g00010'"))
        session.execute(text("UPDATE members SET display_name = 'renamed'"))  # no template changes: no count change
        session.execute(text("DELETE FROM members WHERE external_id >= 'g00100'"))
        session.execute(
            text(
                "INSERT INTO members (id, external_id, display_name, metadata) VALUES (gen_random_uuid(), 'x', 'X', '{}')"
            )
        )
    assert both() == (90, 90)
    with session_scope() as session:  # a rolled-back change leaves the count as it was
        session.execute(text("UPDATE members SET template = NULL"))
        session.rollback()
    assert both() == (90, 90)
    with session_scope() as session:
        session.execute(text("TRUNCATE members CASCADE"))
    assert both() == (0, 0)
