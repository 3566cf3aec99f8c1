"""What OpenVINO holds on to as batch sizes vary, and what bounding it costs.

MTCNN's R- and O-Net run in OpenVINO (services/faces/runtime.py) and see a new batch size whenever a photo gives a
number of candidates not seen before. Per variant of openvino_forward (its cache of kernels per input shape,
CPU_RUNTIME_CACHE_CAPACITY, OpenVINO's default 5,000; and the most faces per pass), in a fresh process: resident
memory after passes at every batch size from 1 to --batches, then the time per face of batches of 1-59 (a
running service's usual sizes), per network.

Run: FACEGATE_WEIGHTS_DIR=../shared/models .venv/bin/python -m bench.openvino_shape_cache [--batches 400]
"""

import argparse
import json
import statistics
import subprocess
import sys
import time

import numpy as np

from bench.results_file import write_report

# name: (shape cache, most per pass); None is OpenVINO's default / one pass per batch.
VARIANTS = {"default": (None, None), "cache 0": (0, None), "cache 64": (64, None), "cache 64, passes of 64": (64, 64)}


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024


def measure(variant: str, batches: int) -> dict:
    """In this process: one variant, each of MTCNN's R- and O-Net."""
    from core.memory import release_free_memory
    from core.settings import get_settings
    from services.faces.detection import O_NET_SIZE, R_NET_SIZE, FaceDetector
    from services.faces.runtime import export_missing, openvino_forward

    settings = get_settings()
    specs = FaceDetector(settings).networks()
    export_missing(settings, specs)
    shape_cache, most_per_pass = VARIANTS[variant]
    result = {}
    for spec, side in zip(specs[1:], (R_NET_SIZE, O_NET_SIZE), strict=True):
        forward = openvino_forward(spec.onnx_path(settings), 1, 1, "float32", shape_cache, most_per_pass)
        rng = np.random.default_rng(0)
        forward(rng.random((1, 3, side, side), dtype=np.float32))
        release_free_memory()
        before = rss_mb()
        for size in range(1, batches + 1):
            forward(rng.random((size, 3, side, side), dtype=np.float32))
        release_free_memory()
        seen = [int(size) for size in rng.integers(1, 60, 300)]
        times = []
        for size in seen:
            batch = rng.random((size, 3, side, side), dtype=np.float32)
            started = time.perf_counter()
            forward(batch)
            times.append((time.perf_counter() - started) * 1000 / size)
        result[spec.name.split("-")[1]] = {
            "memory_after_all_batch_sizes_mb": round(rss_mb() - before, 1),
            "ms_per_face_at_seen_sizes_median": round(statistics.median(times), 4),
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=400)
    parser.add_argument("--variant", help=argparse.SUPPRESS)  # the child's one variant
    args = parser.parse_args()
    if args.variant:
        print(json.dumps(measure(args.variant, args.batches)))
        return
    report = {}
    for variant in VARIANTS:  # each in a fresh process, so one variant's memory is not the next one's
        command = [sys.executable, "-m", "bench.openvino_shape_cache", "--variant", variant]
        child = subprocess.run([*command, "--batches", str(args.batches)], capture_output=True, text=True, check=True)
        report[variant] = json.loads(child.stdout.strip().splitlines()[-1])
    write_report("openvino_shape_cache", report)


if __name__ == "__main__":
    main()
