"""FaceGate benchmark: identify requests over HTTP (through facegate_client) against a running service (embedded
Postgres in a temporary folder), sequential and from --clients concurrent clients, the service's memory after
them, then each stage in-process, and optionally DeepFace on the same photos, its Python `represent` and its HTTP
API (bench/setup_peer_env.sh makes its environment).

Run: make bench   (or: FACEGATE_WEIGHTS_DIR=../shared/models .venv/bin/python -m bench.run [--probes 100]
                   [--clients 8] [--concurrent-requests 900] [--runtime onnx|torch])
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from facegate_client import FaceGate, FaceGateAPIError
from services.identity.auth import ADMIN_KEY_FILE

REPO = Path(__file__).resolve().parent.parent
PEER_PYTHON = REPO / "bench" / ".venv-peer" / "bin" / "python"


def summary(times_ms: list[float]) -> dict:
    ordered = sorted(times_ms)
    return {
        "n": len(ordered),
        "mean_ms": round(statistics.fmean(ordered), 2),
        "median_ms": round(statistics.median(ordered), 2),
        "p95_ms": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 2),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 2),
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_service(data_dir: Path, port: int):
    env = {**os.environ, "FACEGATE_DATA_DIR": str(data_dir), "FACEGATE_PORT": str(port)}
    env.pop("DATABASE_URL", None)
    log = (data_dir / "service.log").open("w")
    process = subprocess.Popen(
        [sys.executable, str(REPO / "cli.py"), "serve"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 300
        with FaceGate(base, timeout=2) as facegate:
            while time.time() < deadline:
                if process.poll() is not None:
                    raise RuntimeError(f"service exited; see {data_dir / 'service.log'}")
                if facegate.ready():
                    break
                time.sleep(1)
            else:
                raise RuntimeError("service did not become ready in 300 s")
        yield base, process.pid
    finally:
        process.terminate()
        process.wait(30)


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    """The process's resident memory now (VmRSS) or at its peak (VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def people_and_probes(lfw_images: Path, probes: int) -> tuple[list[Path], list[tuple[str, Path]]]:
    """Everyone with >= 10 photos enrolls photo 1; probes are their other photos, taken round-robin."""
    people = sorted(d for d in lfw_images.iterdir() if len(list(d.glob("*.jpg"))) >= 10)
    photos = {d.name: sorted(d.glob("*.jpg")) for d in people}
    probe_list = [(name, photos[name][n]) for n in range(1, 10) for name in sorted(photos)][:probes]
    return [photos[d.name][0] for d in people], probe_list


def time_http(base: str, api_key: str, enroll: list[Path], probes: list[tuple[str, Path]], warmup: int) -> dict:
    with FaceGate(base, api_key, timeout=60) as facegate:
        enrolled = 0
        for photo in enroll:
            name = photo.parent.name
            try:
                facegate.signup(name, name.replace("_", " "), photos=[photo], largest=True, allow_duplicate=True)
                enrolled += 1
            except FaceGateAPIError:  # refused by the quality gate
                pass
        bodies = [(name, path.read_bytes()) for name, path in probes]
        for _, body in bodies[:warmup]:
            facegate.identify(body)
        times, correct, unknown = [], 0, 0
        for name, body in bodies:
            start = time.perf_counter()
            faces = facegate.identify(body)["faces"]
            times.append((time.perf_counter() - start) * 1000)
            if faces:  # the LFW subject is the face nearest the centre
                face = min(
                    faces,
                    key=lambda f: (
                        (f["box"]["x"] + f["box"]["width"] / 2 - 125) ** 2
                        + (f["box"]["y"] + f["box"]["height"] / 2 - 125) ** 2
                    ),
                )
                match = face["match"]
                correct += match is not None and match["external_id"] == name
                unknown += match is None
    return {
        "enrolled_members": enrolled,
        "identify": summary(times),
        "rank1_correct": correct,
        "unknown": unknown,
        "probes": len(bodies),
    }


def time_concurrent(base: str, api_key: str, probes: list[tuple[str, Path]], clients: int, requests: int) -> dict:
    """`requests` identify calls (the probes over and over) from `clients` threads, each with its own connection."""
    bodies = [path.read_bytes() for _, path in probes]
    connections = [FaceGate(base, api_key, timeout=60) for _ in range(clients)]
    errors: list[str] = []

    def client(k: int) -> list[float]:
        times = []
        for n in range(k, requests, clients):
            start = time.perf_counter()
            try:
                connections[k].identify(bodies[n % len(bodies)])
            except Exception as error:  # counted and reported, not fatal: errors are part of the result
                errors.append(repr(error))
                continue
            times.append((time.perf_counter() - start) * 1000)
        return times

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        times = [t for per_client in pool.map(client, range(clients)) for t in per_client]
    seconds = time.perf_counter() - start
    for connection in connections:
        connection.close()
    return {
        "clients": clients,
        "requests": requests,
        "errors": len(errors),
        "first_errors": errors[:3],
        "requests_per_s": round(requests / seconds, 2),
        "latency": summary(times),
    }


def time_stages(data_dir: Path, probes: list[tuple[str, Path]]) -> dict:
    """Each stage of the request path, in this process, on the same photos and the same database."""
    os.environ["FACEGATE_DATA_DIR"] = str(data_dir)
    from sqlalchemy import text

    from core.settings import get_settings
    from db.session import session_scope, stop_embedded_postgres
    from services.faces.alignment import expression_crop, facenet_crop
    from services.faces.pipeline import FacePipeline
    from services.identity.matching import nearest_members

    settings = get_settings()
    pipeline = FacePipeline(settings)
    pipeline.load()
    stages = {k: [] for k in ("decode", "detect", "align", "embed", "expression", "search")}

    def timed(stage, fn, *args, **kwargs):
        start = time.perf_counter()
        out = fn(*args, **kwargs)
        stages[stage].append((time.perf_counter() - start) * 1000)
        return out

    def time_one(data: bytes) -> np.ndarray:
        image = timed("decode", pipeline.decode, data)
        faces = timed("detect", pipeline.detect, image)
        if not faces:
            return np.zeros((0, 128), dtype=np.float32)
        crops = timed(
            "align",
            lambda: (
                np.stack([facenet_crop(image, f) for f in faces]),
                np.stack([expression_crop(image, f) for f in faces]),
            ),
        )
        embeddings = timed("embed", pipeline.embedder.predict, crops[0])
        timed("expression", pipeline.expression.predict, crops[1])
        return embeddings

    with session_scope() as session:
        gallery_size = session.execute(text("SELECT count(*) FROM members WHERE template IS NOT NULL")).scalar_one()
    for _, path in probes:
        # The models run where the service runs them: on the pipeline's inference thread.
        embeddings = pipeline.run(time_one, path.read_bytes())
        with session_scope() as session:
            for embedding in embeddings:
                timed(
                    "search",
                    nearest_members,
                    session,
                    embedding,
                    settings,
                    k=settings.top_k,
                    gallery_size=gallery_size,
                )
    stop_embedded_postgres(data_dir)
    return {stage: summary(times) for stage, times in stages.items()}


def time_peer(probes: list[tuple[str, Path]], workdir: Path) -> dict | None:
    if not PEER_PYTHON.exists():
        print("peer: bench/.venv-peer not found (bash bench/setup_peer_env.sh makes it); skipped")
        return None
    images = workdir / "peer_images"
    for i, (_, path) in enumerate(probes):
        (images / f"{i:04d}").mkdir(parents=True)
        (images / f"{i:04d}" / path.name).symlink_to(path.resolve())
    out = workdir / "peer.json"
    subprocess.run(
        [
            str(PEER_PYTHON),
            str(REPO / "bench" / "peer_deepface.py"),
            "--images",
            str(images),
            "--limit",
            str(len(probes)),
            "--json",
            str(out),
            "--http",
        ],
        check=True,
    )
    return json.loads(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lfw", type=Path, default=REPO.parent / "shared" / "data" / "lfw")
    parser.add_argument("--probes", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument(
        "--concurrent-requests",
        type=int,
        default=900,
        help="with --probes 100 and the warm-up: "
        "1,005 identify requests in all, after which the service's memory is read",
    )
    parser.add_argument("--runtime", choices=["onnx", "torch"], default="onnx", help="FACEGATE_INFERENCE_RUNTIME")
    parser.add_argument("--no-peer", action="store_true")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    args = parser.parse_args()

    os.environ["FACEGATE_INFERENCE_RUNTIME"] = args.runtime
    enroll, probes = people_and_probes(args.lfw / "images", args.probes)
    result = {
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0], "load_before": os.getloadavg()},
        "runtime": args.runtime,
    }
    with tempfile.TemporaryDirectory(prefix="facegate-bench-") as tmp:
        data_dir = Path(tmp)
        with running_service(data_dir, free_port()) as (base, pid):
            # The first start wrote an admin key into the fresh data folder.
            api_key = (data_dir / ADMIN_KEY_FILE).read_text().strip()
            result["http"] = time_http(base, api_key, enroll, probes, args.warmup)
            result["concurrent"] = time_concurrent(base, api_key, probes, args.clients, args.concurrent_requests)
            result["service_rss_mb"] = round(rss_mb(pid), 1)
            result["service_peak_rss_mb"] = round(rss_mb(pid, "VmHWM"), 1)
            result["machine"]["load_after_http"] = os.getloadavg()
        # With the service stopped, the stage timings run alone on the same photos and database.
        result["stages"] = time_stages(data_dir, probes)
        if not args.no_peer:
            result["peer_deepface"] = time_peer(probes, data_dir)

    http = result["http"]
    print(
        f"\nenrolled {http['enrolled_members']} members; {http['probes']} probe photos, "
        f"rank-1 correct {http['rank1_correct']}, unknown {http['unknown']}"
    )
    print("stage (in-process)     mean ms  median ms  p95 ms")
    for stage, s in result["stages"].items():
        print(f"  {stage:20s} {s['mean_ms']:8.1f} {s['median_ms']:10.1f} {s['p95_ms']:7.1f}")
    s = http["identify"]
    print(f"identify over HTTP     {s['mean_ms']:8.1f} {s['median_ms']:10.1f} {s['p95_ms']:7.1f}  (sequential)")
    c = result["concurrent"]
    print(
        f"{c['clients']} concurrent clients   {c['requests_per_s']:.1f} requests/s (sequential {1000 / s['mean_ms']:.1f}), "
        f"median {c['latency']['median_ms']:.1f} ms, p99 {c['latency']['p99_ms']:.1f} ms, "
        f"{c['errors']} errors in {c['requests']}"
    )
    print(
        f"service RSS            {result['service_rss_mb']:.0f} MB after the run, peak {result['service_peak_rss_mb']:.0f} MB"
    )
    print(f"runtime {result['runtime']}; load average before {result['machine']['load_before']}")
    peer = result.get("peer_deepface")
    if peer:
        print(
            f"DeepFace represent     {peer['mean_ms']:8.1f} {peer['median_ms']:10.1f} {peer['p95_ms']:7.1f}  "
            f"(Facenet + MTCNN, TensorFlow), peak RSS {peer['peak_rss_mb']:.0f} MB"
        )
        api = peer["http"]
        print(
            f"DeepFace HTTP API      {api['mean_ms']:8.1f} {api['median_ms']:10.1f} {api['p95_ms']:7.1f}  "
            f"(POST /represent, gunicorn), server RSS {api['server_rss_mb']:.0f} MB"
        )
        for name, t in (("represent", peer), ("HTTP API", api)):
            print(
                f"FaceGate identify over HTTP is {t['mean_ms'] / s['mean_ms']:.2f}x faster (mean), "
                f"{t['median_ms'] / s['median_ms']:.2f}x (median) than DeepFace's {name}"
            )
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / time.strftime("bench-%Y%m%d-%H%M%S.json")
    path.write_text(json.dumps(result, indent=2))
    print(f"written to {path}")


if __name__ == "__main__":
    main()
