"""Peer benchmark: time DeepFace's own embedding pipeline (MTCNN + FaceNet-128).

OPTIONAL, not part of FaceGate. Run it with the peer virtualenv's python
(see bench/setup_peer_env.sh and bench/README_peer.md):

    bench/.venv-peer/bin/python bench/peer_deepface.py --images /path/to/jpgs --limit 100

Per image it times one call of
    DeepFace.represent(img_path=..., model_name="Facenet", detector_backend="mtcnn",
                       enforce_detection=False)
sequentially, after a warm-up, i.e. decode + detect + align + embed, all DeepFace's code.
With --http it then also serves DeepFace's own HTTP API (its Flask app under gunicorn, one worker, as
deepface's Docker image runs it) and times POST /represent with the same arguments, one image per request
(JSON, base64 image), sequentially, from one keep-alive client.
Nothing is downloaded: the FaceNet weights come from --weights-dir (copied into a
temporary DEEPFACE_HOME), MTCNN's weights ship inside the mtcnn package.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WEIGHTS_FILE = "facenet_keras.h5"
DEEPFACE_WEIGHTS_NAME = "facenet_weights.h5"
MODEL_NAME = "Facenet"
DETECTOR = "mtcnn"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    default_weights = os.environ.get("FACEGATE_WEIGHTS_DIR") or str(REPO.parent / "shared" / "models")
    p = argparse.ArgumentParser(description="Time DeepFace.represent (Facenet + mtcnn) per image.")
    p.add_argument(
        "--weights-dir",
        default=default_weights,
        help=f"folder holding {WEIGHTS_FILE} (default: $FACEGATE_WEIGHTS_DIR or <repo>/../shared/models)",
    )
    p.add_argument("--images", required=True, help="folder; every *.jpg below it is used, sorted by path")
    p.add_argument("--limit", type=int, default=100, help="number of images to time (default 100)")
    p.add_argument(
        "--warmup", type=int, default=3, help="untimed calls first, on the first N selected images (default 3)"
    )
    p.add_argument("--json", dest="json_out", default=None, help="also write the results to this JSON file")
    p.add_argument(
        "--threads", type=int, default=0, help="TF intra/inter-op threads; 0 = the CPUs this process may use (default)"
    )
    p.add_argument("--http", action="store_true", help="also time DeepFace's HTTP API (POST /represent)")
    args = p.parse_args(argv)
    if args.limit < 1:
        p.error("--limit must be >= 1")
    if args.warmup < 0:
        p.error("--warmup must be >= 0")
    return args


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def peak_rss_mb() -> float:
    # ru_maxrss is KiB on Linux, bytes on macOS.
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile (same as numpy's default)."""
    xs = sorted(values)
    if len(xs) == 1:
        return xs[0]
    pos = (len(xs) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def time_calls(represent, images: list[Path], warmup: int) -> dict:
    """Untimed warm-up calls (the first builds FaceNet and MTCNN), then one timed call per image."""
    t0 = time.perf_counter()
    for path in images[:warmup]:
        represent(path)
    warmup_s = time.perf_counter() - t0

    times_ms: list[float] = []
    faces_found = 0
    dims = None
    t_total = time.perf_counter()
    for path in images:
        t = time.perf_counter()
        out = represent(path)
        times_ms.append((time.perf_counter() - t) * 1000.0)
        if out:
            dims = len(out[0]["embedding"])
            if out[0].get("face_confidence", 0) > 0:
                faces_found += 1
    total_s = time.perf_counter() - t_total
    return {
        "n_images": len(times_ms),
        "warmup_images": len(images[:warmup]),
        "mean_ms": round(statistics.fmean(times_ms), 2),
        "median_ms": round(statistics.median(times_ms), 2),
        "p95_ms": round(percentile(times_ms, 95), 2),
        "min_ms": round(min(times_ms), 2),
        "max_ms": round(max(times_ms), 2),
        "total_s": round(total_s, 3),
        "images_per_s": round(len(times_ms) / total_s, 3),
        "warmup_s": round(warmup_s, 3),
        "images_with_face": faces_found,
        "embedding_dim": dims,
    }


def print_timing(label: str, t: dict) -> None:
    print(
        f"{label}  mean {t['mean_ms']:.1f} ms  median {t['median_ms']:.1f} ms  p95 {t['p95_ms']:.1f} ms  "
        f"(min {t['min_ms']:.1f}, max {t['max_ms']:.1f}); {t['total_s']:.2f} s ({t['images_per_s']:.2f} img/s), "
        f"warm-up {t['warmup_s']:.2f} s"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def time_http_api(images: list[Path], warmup: int, threads: int) -> dict:
    """DeepFace's Flask app under gunicorn (deepface's Docker entrypoint: one worker), models loaded at startup,
    POST /represent per image from one keep-alive client."""
    import requests

    port = free_port()
    env = {
        **os.environ,
        "DEEPFACE_FACE_RECOGNITION_MODELS": MODEL_NAME,
        "DEEPFACE_FACE_DETECTION_MODELS": DETECTOR,
        "TF_NUM_INTRAOP_THREADS": str(threads),
        "TF_NUM_INTEROP_THREADS": str(threads),
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--workers=1", "--timeout=600", f"--bind=127.0.0.1:{port}",
         "--log-level=warning", "deepface.api.src.app:create_app()"],
        env=env,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    client = requests.Session()
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                if client.get(f"{base}/", timeout=30).ok:
                    break
            except (requests.ConnectionError, requests.Timeout):  # not listening yet, or loading the models
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"DeepFace API did not start (exit code {server.poll()})")
            time.sleep(0.5)

        def represent(path: Path) -> list[dict]:
            image = "data:image/jpeg;base64," + base64.b64encode(path.read_bytes()).decode()
            body = {"img": image, "model_name": MODEL_NAME, "detector_backend": DETECTOR, "enforce_detection": False}
            response = client.post(f"{base}/represent", json=body, timeout=120)
            response.raise_for_status()
            return response.json()["results"]

        timed = time_calls(represent, images, warmup)
        workers = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
        timed["server_rss_mb"] = round(sum(process_rss_mb(int(pid)) for pid in [server.pid, *workers]), 1)
        timed["server"] = "gunicorn, 1 worker, deepface.api.src.app:create_app()"
        return timed
    finally:
        client.close()
        server.terminate()
        server.wait(timeout=30)


def process_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    weights = Path(args.weights_dir) / WEIGHTS_FILE
    if not weights.is_file():
        print(f"error: {weights} not found (set --weights-dir or FACEGATE_WEIGHTS_DIR)", file=sys.stderr)
        return 2
    images = sorted(Path(args.images).rglob("*.jpg"))[: args.limit]
    if not images:
        print(f"error: no *.jpg below {args.images}", file=sys.stderr)
        return 2

    home = Path(tempfile.mkdtemp(prefix="deepface-home-"))
    try:
        # Must be in place before deepface is imported / looks for its weights.
        os.environ["DEEPFACE_HOME"] = str(home)
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        # DeepFace.py sets this itself at import; set it before TF is imported here too, so
        # tf.keras resolves to tf-keras exactly as in a plain `from deepface import DeepFace`.
        os.environ["TF_USE_LEGACY_KERAS"] = "1"
        weights_dst = home / ".deepface" / "weights" / DEEPFACE_WEIGHTS_NAME
        weights_dst.parent.mkdir(parents=True)
        shutil.copyfile(weights, weights_dst)
        return run(args, images)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def run(args: argparse.Namespace, images: list[Path]) -> int:
    t_import = time.perf_counter()
    import tensorflow as tf

    threads = args.threads or available_cpus()
    # Matches TF's own default on a machine whose CPUs are all usable; stated explicitly so a
    # container that reports the host's core count does not oversubscribe.
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)

    from importlib.metadata import version

    import deepface
    import tf_keras
    from deepface import DeepFace

    import_s = time.perf_counter() - t_import

    def represent(path: Path) -> list[dict]:
        return DeepFace.represent(
            img_path=str(path),
            model_name=MODEL_NAME,
            detector_backend=DETECTOR,
            enforce_detection=False,
        )

    timed = time_calls(represent, images, args.warmup)
    result = {
        "tool": "deepface",
        "model_name": MODEL_NAME,
        "detector_backend": DETECTOR,
        "images_dir": str(Path(args.images).resolve()),
        **timed,
        "import_s": round(import_s, 3),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "tf_threads": threads,
        "cpus": available_cpus(),
        "versions": {
            "deepface": deepface.__version__,
            "tensorflow": tf.__version__,
            "tf_keras": tf_keras.__version__,
            "mtcnn": version("mtcnn"),
            "numpy": version("numpy"),
            "python": platform.python_version(),
        },
    }

    if args.http:
        result["http"] = time_http_api(images, args.warmup, threads)

    v = result["versions"]
    print(
        f"DeepFace.represent(model_name={MODEL_NAME!r}, detector_backend={DETECTOR!r}) "
        f"deepface {v['deepface']}, tensorflow {v['tensorflow']}, tf-keras {v['tf_keras']}, "
        f"mtcnn {v['mtcnn']}, python {v['python']}"
    )
    print(
        f"images        {result['n_images']} (warm-up {result['warmup_images']}, "
        f"face found in {result['images_with_face']}, dim {result['embedding_dim']})"
    )
    print_timing("per image   ", result)
    print(f"import {result['import_s']:.2f} s, peak RSS {result['peak_rss_mb']:.0f} MB, "
          f"TF threads {threads} of {result['cpus']} CPUs")  # fmt: skip
    if args.http:
        print_timing("HTTP API    ", result["http"])
        print(
            f"HTTP API server (gunicorn master + worker) resident after the run {result['http']['server_rss_mb']:.0f} MB"
        )

    if args.json_out:
        out = Path(args.json_out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
