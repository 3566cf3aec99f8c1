"""Memory after large bodies: does the service give back what large uploads took?

Starts the service on a fresh embedded database, measures its resident memory when ready and after a few ordinary
identifies, then sends signups of 10 large photos each (LFW photos upscaled to --side pixels, JPEG; each decodes to
side*side*3 bytes) from --clients concurrent clients, and measures resident memory again once idle (after
--idle-seconds, so the periodic malloc trim has run). With --loads N it sends N such loads, each of other people's
photos, and measures after each: a plateau stays where the first load left it, a leak grows with each. Run it once
per setting to compare, e.g. FACEGATE_MALLOC_MMAP_THRESHOLD_BYTES=0 (glibc's sliding threshold) against the default.

Run: FACEGATE_WEIGHTS_DIR=../shared/models .venv/bin/python -m bench.large_bodies [--requests 24] [--clients 4]
[--loads 3]
"""

import argparse
import io
import json
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from PIL import Image

from bench.run import REPO, free_port, rss_mb, running_service
from services.identity.auth import ADMIN_KEY_FILE

LFW = REPO.parent / "shared" / "data" / "lfw" / "images"


def large_photo(path: Path, side: int) -> bytes:
    out = io.BytesIO()
    Image.open(path).convert("RGB").resize((side, side), Image.Resampling.BICUBIC).save(out, "JPEG", quality=95)
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=24)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--side", type=int, default=2500)
    parser.add_argument("--idle-seconds", type=float, default=10)
    parser.add_argument("--loads", type=int, default=1)
    args = parser.parse_args()
    people = sorted(d for d in LFW.iterdir() if len(list(d.glob("*.jpg"))) >= 10)[: args.requests * args.loads]
    if len(people) < args.requests * args.loads:
        parser.error(f"LFW has {len(people)} people with 10 photos, not --requests x --loads")
    photos = {d.name: [large_photo(p, args.side) for p in sorted(d.glob("*.jpg"))[:10]] for d in people}
    with tempfile.TemporaryDirectory(prefix="facegate-bodies-") as data, running_service(Path(data), free_port()) as (base, pid):  # fmt: skip
        key = (Path(data) / ADMIN_KEY_FILE).read_text().strip()
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=base, headers=headers, timeout=600) as http:
            ready = rss_mb(pid)
            for path in sorted(people[0].glob("*.jpg"))[:5]:
                http.post("/v1/identify", files={"file": ("p.jpg", path.read_bytes(), "image/jpeg")})
            time.sleep(args.idle_seconds)
            warm = rss_mb(pid)

            def signup(name: str) -> int:
                files = [("file", (f"{i}.jpg", data, "image/jpeg")) for i, data in enumerate(photos[name])]
                form = {"external_id": name, "display_name": name}
                return http.post("/v1/members", data=form, files=files, params={"allow_duplicate": "true"}).status_code  # fmt: skip

            statuses: list[int] = []
            took: list[float] = []
            idle: list[int] = []
            for load in range(args.loads):  # each load other people's photos: other batch sizes, other shapes
                started = time.monotonic()
                with ThreadPoolExecutor(args.clients) as pool:
                    statuses += pool.map(signup, list(photos)[load * args.requests : (load + 1) * args.requests])
                took.append(round(time.monotonic() - started, 1))
                peak = rss_mb(pid, "VmHWM")
                time.sleep(args.idle_seconds)
                idle.append(round(rss_mb(pid)))
    body_mb = sum(len(p) for p in next(iter(photos.values()))) / 2**20
    result = {
        "mmap_threshold": os.environ.get("FACEGATE_MALLOC_MMAP_THRESHOLD_BYTES", "default"),
        "requests": args.requests,
        "clients": args.clients,
        "side": args.side,
        "loads": args.loads,
        "body_mb": round(body_mb, 1),
        "statuses": {str(s): statuses.count(s) for s in set(statuses)},
        "seconds": took[0] if args.loads == 1 else took,
        "rss_ready_mb": round(ready),
        "rss_warm_mb": round(warm),
        "rss_peak_mb": round(peak),
        "rss_idle_after_mb": idle[0] if args.loads == 1 else idle,  # seconds and idle: each load's
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
