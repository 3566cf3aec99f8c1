"""Identify's search at scale: load a realistic gallery of N members and measure the search (docs/scaling.md).

Run: FACEGATE_WEIGHTS_DIR=../shared/models .venv/bin/python -m bench.scale --members 100000 [--data DIR]
     [--ef 40 60 80 100 150 200] [--rerank 20] [--probes 1000] [--delete]
     [--ivfflat LISTS --ivf-probes 10 20 40]   (the IVFFlat lever instead of the product's HNSW index)
     [--hnsw-m 32 --hnsw-ef-construction 64]  (other HNSW graph parameters than the product's)

The database stays (stopped) for another sweep unless --delete; a run finding N members there skips the load.

The gallery: FaceNet embeddings of real LFW photos (the cache bench/lfw_embeddings.py makes through the
service's own pipeline, or --lfw-embeddings), a Gaussian fitted to them, N unit vectors drawn from it as member
templates. Genuine probes: a member's template plus noise drawn from the within-person scatter of the LFW people
with several photos, scaled so that the median probe-to-own-template distance is 0.7 (real genuine probes sit at
0.6-0.8). Uniform random vectors would be far harder to search and unlike faces.

It is loaded through the product's bulk path (services.identity.bulk: binary COPY in batches, template index
built once at the end) into an embedded PostgreSQL under DIR/members-N, tuned by db.session like the service's.
With --ivfflat or --hnsw-m the gallery goes into its own database folder with that index on the same
half-precision expression instead of the product's (the levers docs/scaling.md compares); for IVFFlat the sweep
is over ivfflat.probes instead of ef_search. Then, for each ef_search and re-rank depth: identify's search (services.identity.matching.nearest_members,
k = top_k + 1 as identify asks) for every probe in its own transaction, timed by the wall clock and by the
database backend's CPU time (robust to other jobs on a shared machine); recall = the first
candidate is the exact nearest template (numpy over all N); own-first = it is the probe's own member. Results
go to --results (JSON, one entry per N, merged with earlier runs)."""

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from db.models import EMBEDDING_DIM, TEMPLATE_INDEX

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / "bench" / "results" / "lfw_embeddings.npz"
LFW_IMAGES = REPO.parent / "shared" / "data" / "lfw" / "images"
GENUINE_MEDIAN_DISTANCE = 0.7
SEED = 0
IVFFLAT_INDEX = "ix_members_template_ivfflat"
LOAD_FIELDS = ("load_seconds", "load_rows_per_second", "index_build_seconds", "load_average_after_build")


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True).clip(min=1e-12)


def lfw_embeddings(path: Path | None) -> Path:
    """A cache of LFW embeddings made by the service's pipeline: the one given, an existing one, or a new one."""
    for candidate in (path, CACHE):
        if candidate is not None and candidate.exists():
            return candidate
    from bench.lfw_embeddings import build_cache

    build_cache(LFW_IMAGES, CACHE)
    return CACHE


def fit_faces(cache: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and covariance of the LFW embeddings, and the covariance of each person's photos around their mean."""
    z = np.load(cache)
    found = z["found"]
    embeddings, people = z["embedding"][found].astype(np.float64), z["person"][found]
    residuals = []
    for person in np.unique(people):
        photos = embeddings[people == person]
        if len(photos) >= 2:
            residuals.append(photos - photos.mean(axis=0))
    return embeddings.mean(axis=0), np.cov(embeddings, rowvar=False), np.cov(np.concatenate(residuals), rowvar=False)


def make_gallery(cache: Path, members: int, probes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Member templates (members x 128), the member each probe is of, and the probes."""
    mean, between, within = fit_faces(cache)
    rng = np.random.default_rng(SEED)
    draw = np.linalg.cholesky(between + 1e-9 * np.eye(len(mean)))
    gallery = np.empty((members, len(mean)), np.float32)
    for first in range(0, members, 100_000):
        n = min(100_000, members - first)
        gallery[first : first + n] = unit(mean + rng.standard_normal((n, len(mean))) @ draw.T)
    own = rng.choice(members, probes, replace=False)
    noise = rng.standard_normal((probes, len(mean))) @ np.linalg.cholesky(within + 1e-9 * np.eye(len(mean))).T
    low, high = 0.0, 5.0  # the noise scale, bisected to the genuine median distance
    for _ in range(40):
        scale = (low + high) / 2
        median = np.median(np.linalg.norm(unit(gallery[own] + scale * noise) - gallery[own], axis=1))
        low, high = (scale, high) if median < GENUINE_MEDIAN_DISTANCE else (low, scale)
    return gallery, own, unit(gallery[own] + scale * noise).astype(np.float32)


def exact_nearest(gallery: np.ndarray, probes: np.ndarray) -> np.ndarray:
    """The index of each probe's nearest template (unit vectors: the largest dot product)."""
    return np.concatenate([np.argmax(chunk @ gallery.T, axis=1) for chunk in np.array_split(probes, 20)])


def backend_cpu_ns(pid: int) -> int:
    """CPU time the database backend has run, in ns (/proc schedstat): the search's own work, which other jobs
    on a shared machine do not inflate the way they inflate wall-clock time."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])


def load_average() -> float:
    return os.getloadavg()[0]


def summary(times_ms: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(float(np.percentile(times_ms, 50)), 2),
        "p99_ms": round(float(np.percentile(times_ms, 99)), 2),
        "mean_ms": round(float(np.mean(times_ms)), 2),
    }


def time_writes(embeddings: np.ndarray) -> dict[str, float]:
    """A new member with one face, its template rebuilt, committed (what enrollment writes), each timed; they are
    deleted afterwards so that the gallery stays the generated one."""
    from db.models import Face
    from db.session import session_scope
    from services.identity import members, templates

    times, created = [], []
    for i, embedding in enumerate(embeddings):
        begin = time.perf_counter()
        with session_scope() as session:
            member = members.create_member(session, external_id=f"write-{i}", display_name="write", metadata={})
            session.add(Face(member_id=member.id, embedding=embedding.tolist(), detection_score=1.0, quality={}))
            templates.rebuild(session, member.id)
            created.append(member.id)
        times.append((time.perf_counter() - begin) * 1000)
    with session_scope() as session:
        for member_id in created:
            session.delete(members.get_member(session, member_id))
    return summary(times)


def time_gallery_size(engine) -> dict[str, dict[str, float]]:
    """What every identify and verify reads first: the number of members with a template, counted (before
    migration 0008) and read from the row the triggers keep (since), 20 times each."""
    from sqlalchemy import text

    ways = {
        "count": "SELECT count(*) FROM members WHERE template IS NOT NULL",
        "trigger_row": "SELECT members FROM gallery_size",
    }
    timed = {}
    with engine.connect() as conn:
        for name, query in ways.items():
            times = []
            for _ in range(20):
                begin = time.perf_counter()
                conn.execute(text(query)).scalar_one()
                times.append((time.perf_counter() - begin) * 1000)
            timed[name] = summary(times)
    return timed


def index_lever(args: argparse.Namespace) -> tuple[str, str, str] | None:
    """(name suffix, index name, CREATE INDEX) of the index measured instead of the product's; None: the product's."""
    expression = f"(CAST(template AS halfvec({EMBEDDING_DIM})) halfvec_l2_ops)"
    if args.ivfflat:
        return (
            f"-ivfflat{args.ivfflat}",
            IVFFLAT_INDEX,
            f"CREATE INDEX {IVFFLAT_INDEX} ON members USING ivfflat {expression} WITH (lists = {args.ivfflat})",
        )
    if args.hnsw_m:
        m, ef_construction = args.hnsw_m, args.hnsw_ef_construction
        return (
            f"-hnsw-m{m}-efc{ef_construction}",
            TEMPLATE_INDEX,
            f"CREATE INDEX {TEMPLATE_INDEX} ON members USING hnsw {expression} "
            f"WITH (m = {m}, ef_construction = {ef_construction})",
        )
    return None


def build_index(engine, create: str, name: str) -> float:
    """The measured index on the expression the search orders by; seconds it took."""
    from sqlalchemy import text

    start = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(text(f"DROP INDEX IF EXISTS {name}"))
        conn.execute(text(create))
    return round(time.perf_counter() - start, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, required=True)
    parser.add_argument("--probes", type=int, default=1000)
    parser.add_argument("--ef", type=int, nargs="+", default=[40, 60, 80, 100, 150, 200])
    parser.add_argument("--rerank", type=int, nargs="+", default=[20])
    parser.add_argument(
        "--data", type=Path, default=REPO.parent / "scale-data", help="database folders, outside the repository"
    )
    parser.add_argument("--lfw-embeddings", type=Path)
    parser.add_argument("--results", type=Path, default=REPO / "bench" / "results" / "scale.json")
    parser.add_argument("--label", default="", help="added to the result's key (e.g. a variant being compared)")
    parser.add_argument("--delete", action="store_true", help="delete the database folder at the end")
    parser.add_argument("--ivfflat", type=int, metavar="LISTS", help="an IVFFlat index with this many lists")
    parser.add_argument("--ivf-probes", type=int, nargs="+", default=[10, 20, 40, 80])
    parser.add_argument("--hnsw-m", type=int, help="an HNSW index with this m instead of the product's")
    parser.add_argument("--hnsw-ef-construction", type=int, default=64)
    args = parser.parse_args()

    lever = index_lever(args)
    suffix, index_name = (lever[0], lever[1]) if lever else ("", TEMPLATE_INDEX)
    data_dir = args.data / f"members-{args.members}{suffix}"
    data_dir.mkdir(parents=True, exist_ok=True)
    os.environ["FACEGATE_DATA_DIR"] = str(data_dir)
    os.environ.pop("DATABASE_URL", None)
    from sqlalchemy import text

    from core.settings import get_settings
    from db.migrate import upgrade_to_head
    from db.session import embedded_tuning, get_engine, session_scope, stop_embedded_postgres
    from services.identity.bulk import import_embeddings
    from services.identity.matching import nearest_members

    settings = get_settings()
    cache = lfw_embeddings(args.lfw_embeddings)
    start = time.perf_counter()
    gallery, own, probes = make_gallery(cache, args.members, args.probes)
    result: dict = {
        "members": args.members,
        "probes": args.probes,
        "lfw_embeddings": str(cache),
        "generate_seconds": round(time.perf_counter() - start, 1),
        "genuine_distance_p10_p50_p90": [
            round(float(d), 3) for d in np.percentile(np.linalg.norm(probes - gallery[own], axis=1), [10, 50, 90])
        ],
        "server": embedded_tuning(settings),
        "cpus": os.cpu_count(),
        "load_average_before": load_average(),
    }
    engine = get_engine()
    upgrade_to_head()
    with engine.connect() as conn:
        present = conn.execute(text("SELECT count(*) FROM members")).scalar_one()
    if present != args.members:
        with engine.begin() as conn:
            conn.execute(text("TRUNCATE members, faces, attempts, false_match_blacklist CASCADE"))
            if lever:
                conn.execute(text(f"DROP INDEX IF EXISTS {TEMPLATE_INDEX}"))
        external_ids = [f"m{i:09d}" for i in range(args.members)]

        def progress(done: int, total: int) -> None:
            print(f"loaded {done}/{total} in {time.perf_counter() - load_start:.0f}s", flush=True)

        load_start = time.perf_counter()
        report = import_embeddings(
            engine,
            external_ids,
            external_ids,
            gallery,
            rebuild_index=lever is None,
            progress=progress,
            batch_size=100_000,
        )
        result.update(
            load_seconds=round(report.load_seconds, 1),
            load_rows_per_second=round(report.rows_per_second),
            index_build_seconds=round(report.index_seconds or 0, 1),
            load_average_after_build=load_average(),
        )
        if lever:
            result["index_build_seconds"] = build_index(engine, lever[2], index_name)
        print(f"load {report.load_seconds:.0f}s, index {result['index_build_seconds']:.0f}s", flush=True)
        with engine.begin() as conn:
            conn.execute(text("ANALYZE members"))
    with engine.connect() as conn:
        result["sizes_mb"] = {
            name: round(conn.execute(text(f"SELECT pg_relation_size('{name}')")).scalar_one() / 2**20, 1)
            for name in ("members", "faces", index_name)
        }
        result["database_mb"] = round(
            conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one() / 2**20, 1
        )
        result["huge_pages"] = conn.execute(text("SELECT current_setting('huge_pages_status')")).scalar_one()
    nearest = exact_nearest(gallery, probes)
    result["exact_nearest_is_own"] = round(float(np.mean(nearest == own)), 4)
    k = settings.top_k + 1
    sweep = []
    widths = [("ivfflat.probes", p) for p in args.ivf_probes] if args.ivfflat else [("ef_search", e) for e in args.ef]
    for rerank in args.rerank:
        for width_name, width in widths:
            settings.search_rerank_candidates = rerank
            if not args.ivfflat:
                settings.search_ef_search = width
            times, cpu_times, first = [], [], []
            for probe in probes:
                with session_scope() as session:
                    if args.ivfflat:
                        session.execute(text(f"SET LOCAL ivfflat.probes = {width}"))
                    backend = session.connection().connection.dbapi_connection.info.backend_pid
                    cpu_before, begin = backend_cpu_ns(backend), time.perf_counter()
                    found = nearest_members(session, probe, settings, k=k, gallery_size=args.members)
                    times.append((time.perf_counter() - begin) * 1000)
                    cpu_times.append((backend_cpu_ns(backend) - cpu_before) / 1e6)
                first.append(int(found[0].external_id[1:]))
            row = {
                width_name: width,
                "rerank": rerank,
                **summary(times),
                "backend_cpu": summary(cpu_times),
                "recall_at_1": round(float(np.mean(np.array(first) == nearest)), 4),
                "own_first": round(float(np.mean(np.array(first) == own)), 4),
                "load_average": load_average(),
            }
            print(row, flush=True)
            sweep.append(row)
    result["search"] = sweep
    verify_times = []
    with engine.connect() as conn:
        ids = dict(
            conn.execute(
                text("SELECT external_id, id FROM members WHERE external_id = ANY(:ids)"),
                {"ids": [f"m{i:09d}" for i in own[:200]]},
            ).all()
        )
    for member, probe in zip(own[:200], probes[:200], strict=True):
        begin = time.perf_counter()
        with session_scope() as session:
            nearest_members(session, probe, settings, k=1, gallery_size=args.members, member_id=ids[f"m{member:09d}"])
        verify_times.append((time.perf_counter() - begin) * 1000)
    result["verify_search"] = summary(verify_times)
    result["gallery_size_read"] = time_gallery_size(engine)
    result["add_member_with_face"] = time_writes(probes[:200])
    result["load_average_after"] = load_average()

    results = json.loads(args.results.read_text()) if args.results.exists() else {}
    key = f"{args.members}{suffix}{args.label}"
    if "load_seconds" not in result:  # loaded by an earlier run: keep what it measured
        earlier = {name: value for name, value in results.get(key, {}).items() if name in LOAD_FIELDS}
        result.update(earlier, load_by_earlier_run=bool(earlier))
    results[key] = result
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "search"}, indent=1))
    stop_embedded_postgres(data_dir)
    if args.delete:
        import shutil

        shutil.rmtree(data_dir)


if __name__ == "__main__":
    main()
