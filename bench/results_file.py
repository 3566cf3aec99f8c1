"""Where a benchmark's report goes: a timestamped JSON file under bench/results/ (git-ignored), also printed."""

import json
import time
from pathlib import Path

from bench.run import REPO


def write_report(name: str, report: dict) -> Path:
    out = REPO / "bench" / "results" / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    print(f"written to {out}")
    return out
