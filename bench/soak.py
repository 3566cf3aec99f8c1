"""Soak: many mixed requests at 8 concurrent clients against a running service on a fresh embedded database.

Mix (per request, drawn with a fixed seed): identify 45%, verify 20%, signup 10% (1-3 photos), add a face 5%,
member reads 10%, admin (review queue, audit, blacklist) 10%. Reports requests by kind and status, server errors
(must be 0), latency, the service's resident memory sampled through the run (flat within 10% after warm-up is the
goal: the median of the last 1,000 requests' samples against the first 1,000 after warm-up, with the lowest and
highest sample beside it), and whether the database agrees with what the clients were told (every acknowledged
member and face stored, every identify/verify attempt answered is recorded, no more). Status 200 stands for any success.

Run: FACEGATE_WEIGHTS_DIR=../shared/models .venv/bin/python -m bench.soak [--requests 10000] [--clients 8]
Results: bench/results/soak-<date>.json.
"""

import argparse
import json
import random
import statistics
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

from bench.run import REPO, free_port, running_service
from facegate_client import FaceGate, FaceGateAPIError
from services.identity.auth import ADMIN_KEY_FILE

LFW = REPO.parent / "shared" / "data" / "lfw" / "images"
MIX = [("identify", 45), ("verify", 20), ("signup", 10), ("add_face", 5), ("read", 10), ("admin", 10)]
WARMUP_SHARE = 0.1  # memory samples of the first 10% of requests are the warm-up
TREND_SAMPLES = 10  # memory is sampled every 100 requests


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Soak:
    def __init__(self, facegate: FaceGate, seed: int):
        self.facegate = facegate
        self.people = {d.name: sorted(d.glob("*.jpg")) for d in sorted(LFW.iterdir()) if d.is_dir()}
        self.names = sorted(self.people)
        self.lock = threading.Lock()
        self.members: dict[str, str] = {}  # member id -> person
        self.faces_acknowledged: Counter[str] = Counter()  # member id -> faces the service said it stored
        self.attempts_acknowledged = 0
        self.statuses: Counter[tuple[str, int]] = Counter()
        self.latency_ms: dict[str, list[float]] = {kind: [] for kind, _ in MIX}
        self.seed = seed

    def photo(self, rng: random.Random, person: str | None = None) -> bytes:
        person = person or rng.choice(self.names)
        return rng.choice(self.people[person]).read_bytes()

    def one(self, n: int) -> None:
        rng = random.Random(self.seed * 1_000_003 + n)
        kind = rng.choices([k for k, _ in MIX], [w for _, w in MIX])[0]
        with self.lock:
            known = list(self.members.items())
        if kind in ("verify", "add_face", "read") and not known:
            kind = "signup"
        start = time.perf_counter()
        try:
            status = self.call(kind, rng, known)
        except FaceGateAPIError as error:
            status = error.status_code
        elapsed = (time.perf_counter() - start) * 1000
        with self.lock:
            self.statuses[(kind, status)] += 1
            self.latency_ms[kind].append(elapsed)

    def call(self, kind: str, rng: random.Random, known: list[tuple[str, str]]) -> int:
        fg = self.facegate
        if kind == "identify":
            result = fg.identify(self.photo(rng))
            with self.lock:
                self.attempts_acknowledged += len(result["faces"])
        elif kind == "verify":
            member_id, person = rng.choice(known)
            fg.verify(member_id, self.photo(rng, person if rng.random() < 0.7 else None))
            with self.lock:
                self.attempts_acknowledged += 1
        elif kind == "signup":
            person = rng.choice(self.names)
            photos = [p.read_bytes() for p in rng.sample(self.people[person], min(3, len(self.people[person])))]
            member = fg.signup(f"{person}-{rng.getrandbits(48):x}", person, photos=photos[: rng.randint(1, 3)])
            with self.lock:
                self.members[member["id"]] = person
                self.faces_acknowledged[member["id"]] += len(member["faces"])
        elif kind == "add_face":
            member_id, person = rng.choice(known)
            fg.add_face(member_id, self.photo(rng, person), allow_duplicate=True)
            with self.lock:
                self.faces_acknowledged[member_id] += 1
        elif kind == "read":
            member_id, _ = rng.choice(known)
            fg.get_member(member_id)
            fg.list_members(limit=20)
        else:
            fg.review_queue(limit=20)
            fg.blacklist()
        return 200

    def check_database(self) -> dict:
        """What the clients were told against what is stored."""
        stored_faces = {}
        offset = 0
        while True:
            page = self.facegate.list_members(offset=offset, limit=500)
            stored_faces.update({m["id"]: len(m["faces"]) for m in page["items"]})
            offset += len(page["items"])
            if not page["items"] or offset >= page["total"]:
                break
        missing = [m for m in self.members if m not in stored_faces]
        short = [m for m, n in self.faces_acknowledged.items() if stored_faces.get(m, 0) < n]
        attempts = sum(self.facegate.review_queue(kind=kind, limit=1)["total"] for kind in ("identify", "verify"))
        return {
            "members_acknowledged": len(self.members),
            "members_stored": len(stored_faces),
            "members_missing": len(missing),
            "members_with_fewer_faces_than_acknowledged": len(short),
            "attempts_acknowledged": self.attempts_acknowledged,
            "attempts_stored": attempts,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / f"soak-{date.today()}.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="facegate-soak-") as tmp:
        data_dir = Path(tmp)
        with running_service(data_dir, free_port()) as (base, pid):
            key = (data_dir / ADMIN_KEY_FILE).read_text().strip()
            memory: list[tuple[int, float]] = []
            done = 0
            with FaceGate(base, key, timeout=120) as facegate:
                soak = Soak(facegate, args.seed)
                started = time.perf_counter()

                def run(n: int) -> None:
                    nonlocal done
                    soak.one(n)
                    with soak.lock:
                        done += 1
                        if done % 100 == 0:
                            memory.append((done, rss_mb(pid)))
                            print(f"{done}/{args.requests} requests, RSS {memory[-1][1]:.0f} MB", flush=True)

                with ThreadPoolExecutor(args.clients) as pool:
                    list(pool.map(run, range(args.requests)))
                wall = time.perf_counter() - started
                consistency = soak.check_database()
    after_warmup = [mb for n, mb in memory if n > WARMUP_SHARE * args.requests] or [mb for _, mb in memory]
    server_errors = sum(c for (_, status), c in soak.statuses.items() if status >= 500)
    report = {
        "date": str(date.today()),
        "requests": args.requests,
        "clients": args.clients,
        "wall_s": round(wall, 1),
        "requests_per_s": round(args.requests / wall, 2),
        "server_errors": server_errors,
        "statuses": {f"{kind} {status}": c for (kind, status), c in sorted(soak.statuses.items())},
        "latency_ms": {
            kind: {
                "n": len(t),
                "median": round(statistics.median(t), 1),
                "p99": round(sorted(t)[int(0.99 * (len(t) - 1))], 1),
            }  # fmt: skip
            for kind, t in soak.latency_ms.items()
            if t
        },
        "rss_mb": {
            "after_warmup_min": round(min(after_warmup), 1),
            "after_warmup_max": round(max(after_warmup), 1),
            # The level, not the sawtooth between allocator trims: median of the last 1,000 requests' samples
            # against the first 1,000 after warm-up.
            "growth_after_warmup_pct": round(
                100
                * (
                    statistics.median(after_warmup[-TREND_SAMPLES:]) / statistics.median(after_warmup[:TREND_SAMPLES])
                    - 1
                ),
                1,
            ),
            "samples": memory,
        },
        "database": consistency,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(json.dumps({k: v for k, v in report.items() if k != "rss_mb"} | {"rss_mb": {k: v for k, v in report["rss_mb"].items() if k != "samples"}}, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
