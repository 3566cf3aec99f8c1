"""The embedded server runs with the tuning db.session sizes for this machine, and identify's index is the one the
models describe (alembic's check does not compare expression indexes)."""

from sqlalchemy import text

from core.settings import get_settings


def test_embedded_server_runs_tuned_for_the_machine(anonymous):
    from db.session import embedded_tuning, session_scope

    wanted = embedded_tuning(get_settings())
    with session_scope() as session:
        for name in ("shared_buffers", "maintenance_work_mem", "effective_cache_size"):
            in_force, expected = session.execute(
                text("SELECT pg_size_bytes(current_setting(:name)), pg_size_bytes(:wanted)"),
                {"name": name, "wanted": wanted[name]},
            ).one()
            assert in_force == expected, name  # shared_buffers: applied by the restart at first start
        workers = session.execute(text("SELECT current_setting('max_parallel_maintenance_workers')")).scalar_one()
    assert workers == wanted["max_parallel_maintenance_workers"]


def test_identify_index_is_hnsw_over_half_precision_templates(anonymous):
    from db.models import TEMPLATE_INDEX_EF_CONSTRUCTION, TEMPLATE_INDEX_M
    from db.session import session_scope

    with session_scope() as session:
        indexes = dict(
            session.execute(text("SELECT indexname, indexdef FROM pg_indexes WHERE indexdef LIKE '%hnsw%'")).all()
        )
    assert set(indexes) == {"ix_members_template_hnsw"}  # faces are never searched: no index to keep up
    definition = indexes["ix_members_template_hnsw"]
    assert "(template)::halfvec(128)) halfvec_l2_ops" in definition, definition
    assert (
        f"m='{TEMPLATE_INDEX_M}'" in definition and f"ef_construction='{TEMPLATE_INDEX_EF_CONSTRUCTION}'" in definition
    )


def test_huge_page_report_covers_the_shared_buffers(anonymous):
    """The start-up log's advice: how many 2 MB pages the server's shared memory takes (at least its buffers)."""
    from db.session import get_engine, huge_pages, session_scope

    status, pages = huge_pages(get_engine().url.set(drivername="postgresql").render_as_string(hide_password=False))
    with session_scope() as session:
        buffers = session.execute(text("SELECT pg_size_bytes(current_setting('shared_buffers'))")).scalar_one()
    assert status in ("on", "off") and pages * 2**21 >= buffers
