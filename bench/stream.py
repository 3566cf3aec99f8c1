"""Live identify transports compared: the same camera frames through a WebSocket (/v1/identify/stream) and through
a loop of POST /v1/identify requests (keep-alive), each frame sent when the previous one is answered, as the desk
page does. Rounds alternate between the two so a busy machine slows both alike. The service runs on a fresh
embedded database with FACEGATE_STREAM_RECORD_SECONDS=0, so both record every face and differ only in transport;
then both send a small blank frame (160x120, no face, ~20 ms of inference): mostly the transport's own cost. A last round
measures the stream with its default throttle (a face recorded once per 30 s).

Run: FACEGATE_WEIGHTS_DIR=../shared/models .venv/bin/python -m bench.stream [--frames 40] [--rounds 3]
"""

import argparse
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import httpx
import numpy as np
from websockets.sync.client import connect

from bench.run import REPO, free_port, running_service, summary
from services.identity.auth import ADMIN_KEY_FILE

LFW_IMAGES = REPO.parent / "shared" / "data" / "lfw" / "images"
FRAME_SIZE = (640, 480)  # what the desk page sends
MEMBERS = 20
WARMUP = 5
TRANSPORT_ONLY_FRAMES = 100


def camera_frame(photo: Path) -> bytes:
    """A 640x480 JPEG (quality 85, like the page's) with the LFW photo scaled to 300 px in the middle."""
    width, height = FRAME_SIZE
    frame = np.full((height, width, 3), 128, np.uint8)
    x, y = (width - 300) // 2, (height - 300) // 2
    frame[y : y + 300, x : x + 300] = cv2.resize(cv2.imread(str(photo)), (300, 300), interpolation=cv2.INTER_AREA)
    return cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes()


def people(count: int) -> list[Path]:
    """People with at least 4 photos: 3 to enroll, the 4th a probe."""
    found = [p for p in sorted(LFW_IMAGES.iterdir()) if len(list(p.glob("*.jpg"))) >= 4]
    return found[:count]


def timed(send: Callable[[bytes], None], frames: list[bytes]) -> tuple[list[float], float]:
    """Round trips (ms) of each frame sent after the previous answer, and the frames answered per second."""
    for frame in frames[:WARMUP]:
        send(frame)
    round_trips = []
    started = time.perf_counter()
    for frame in frames:
        sent = time.perf_counter()
        send(frame)
        round_trips.append((time.perf_counter() - sent) * 1000)
    return round_trips, len(frames) / (time.perf_counter() - started)


@contextmanager
def post_loop(base: str, key: str) -> Iterator[Callable[[bytes], None]]:
    with httpx.Client(base_url=base, headers={"X-API-Key": key}, timeout=60) as client:

        def send(frame: bytes) -> None:
            response = client.post("/v1/identify", files={"file": ("frame.jpg", frame, "image/jpeg")})
            response.raise_for_status()

        yield send


@contextmanager
def websocket(base: str, key: str, camera: str) -> Iterator[Callable[[bytes], None]]:
    url = base.replace("http://", "ws://") + f"/v1/identify/stream?camera={camera}"
    with connect(url, additional_headers={"X-API-Key": key}, max_size=None) as socket:

        def send(frame: bytes) -> None:
            socket.send(frame)
            answer = json.loads(socket.recv())
            if answer.get("error"):
                raise RuntimeError(answer["error"])

        yield send


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=40, help="frames per transport per round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    chosen = people(MEMBERS)
    frames = [camera_frame(sorted(p.glob("*.jpg"))[3]) for p in chosen]
    frames = (frames * (args.frames // len(frames) + 1))[: args.frames]
    blank = cv2.imencode(".jpg", np.full((120, 160, 3), 128, np.uint8))[1].tobytes()  # MTCNN: about 20 ms
    results: dict[str, list] = {"post": [], "websocket": [], "post_blank": [], "websocket_blank": []}
    with tempfile.TemporaryDirectory(prefix="facegate-stream-bench-") as tmp:
        os.environ["FACEGATE_STREAM_RECORD_SECONDS"] = "0"
        with running_service(Path(tmp), free_port()) as (base, _):
            key = (Path(tmp) / ADMIN_KEY_FILE).read_text().strip()
            with httpx.Client(base_url=base, headers={"X-API-Key": key}, timeout=120) as client:
                for person in chosen:
                    photos = sorted(person.glob("*.jpg"))[:3]
                    files = [("file", (p.name, p.read_bytes(), "image/jpeg")) for p in photos]
                    data = {"external_id": person.name, "display_name": person.name}
                    client.post("/v1/members", data=data, files=files, params={"allow_duplicate": True})
            for round_number in range(args.rounds):
                with post_loop(base, key) as send:
                    results["post"].append(timed(send, frames))
                with websocket(base, key, f"round-{round_number}") as send:
                    results["websocket"].append(timed(send, frames))
            for _ in range(args.rounds):
                with post_loop(base, key) as send:
                    results["post_blank"].append(timed(send, [blank] * TRANSPORT_ONLY_FRAMES))
                with websocket(base, key, "blank") as send:
                    results["websocket_blank"].append(timed(send, [blank] * TRANSPORT_ONLY_FRAMES))
        os.environ["FACEGATE_STREAM_RECORD_SECONDS"] = "30"
        with running_service(Path(tmp), free_port()) as (base, _), websocket(base, key, "throttled") as send:
            results["websocket_throttled"] = [timed(send, frames)]

    report = {
        name: {
            "round_trip": summary([ms for trips, _ in runs for ms in trips]),
            "frames_per_second": [round(fps, 2) for _, fps in runs],
        }
        for name, runs in results.items()
    }
    out = REPO / "bench" / "results" / f"stream-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
