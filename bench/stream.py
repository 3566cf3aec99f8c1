"""Live identify: frames/s and frame-to-box delay of /v1/identify/stream at 640x480, 1280x720 and 1920x1080, and the
transports compared.

Sizes: synthetic door-camera frames (services/evaluation/camera_clips.py) of enrolled people, sent over one
WebSocket two ways: each frame when the previous one is answered (frames/s the service sustains, and the round
trip), and as a camera does, at --camera-fps whatever the answers (frames answered per second, frames dropped for a
newer one, and the frame-to-box delay: from a frame's sending to the answer with its boxes).

Transports (640x480, what the desk page sends): the same frames through the WebSocket and through a loop of
POST /v1/identify requests (keep-alive), each frame sent when the previous one is answered, rounds alternating so a
busy machine slows both alike; POST records every face, the stream each track once. Then both send a small blank
frame (160x120, no face, ~20 ms of inference): mostly the transport's own cost.

Run: FACEGATE_WEIGHTS_DIR=../shared/models .venv/bin/python -m bench.stream [--frames 40] [--rounds 3]
     [--camera-fps 15] [--camera-seconds 10] [--min-face-size 80] (sent with every frame, as a near camera may)
"""

import argparse
import json
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import httpx
import numpy as np
from websockets.sync.client import connect

from bench.results_file import write_report
from bench.run import REPO, free_port, running_service, summary
from services.evaluation.camera_clips import FRAME_SIZES, door_frame, encode_jpeg
from services.identity.auth import ADMIN_KEY_FILE

LFW_IMAGES = REPO.parent / "shared" / "data" / "lfw" / "images"
TRANSPORT_SIZE = "640x480"  # what the desk page sends
MEMBERS = 20
WARMUP = 5
TRANSPORT_ONLY_FRAMES = 100


def camera_frames(chosen: list[Path], size: tuple[int, int], count: int) -> list[bytes]:
    """`count` JPEG frames (quality 85, like the page's) of the people's 4th photos, on a room background."""
    frames = [encode_jpeg(door_frame(sorted(p.glob("*.jpg"))[3], size, seed=i)) for i, p in enumerate(chosen)]
    return (frames * (count // len(frames) + 1))[:count]


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
def post_loop(base: str, key: str, params: dict) -> Iterator[Callable[[bytes], None]]:
    with httpx.Client(base_url=base, headers={"X-API-Key": key}, timeout=60) as client:

        def send(frame: bytes) -> None:
            response = client.post("/v1/identify", files={"file": ("frame.jpg", frame, "image/jpeg")}, params=params)
            response.raise_for_status()

        yield send


def stream_url(base: str, camera: str, params: dict) -> str:
    return (
        base.replace("http://", "ws://") + "/v1/identify/stream?" + urllib.parse.urlencode({"camera": camera, **params})
    )


def camera_rate(base: str, key: str, frames: list[bytes], fps: float, seconds: float, params: dict) -> dict:
    """Frames sent at `fps` for `seconds` whatever the answers, as a camera does: the service answers the newest
    waiting frame. Frame-to-box delay: from a frame's sending to its answer."""
    url = stream_url(base, "camera-rate", params)
    sent_at: dict[int, float] = {}
    delays: list[float] = []
    answered = 0
    with connect(url, additional_headers={"X-API-Key": key}, max_size=None) as socket:

        def send() -> None:
            start = time.perf_counter()
            for number in range(1, int(fps * seconds) + 1):
                time.sleep(max(0.0, start + (number - 1) / fps - time.perf_counter()))
                sent_at[number] = time.perf_counter()
                socket.send(frames[number % len(frames)])

        sender = threading.Thread(target=send)
        sender.start()
        last = int(fps * seconds)
        started = time.perf_counter()
        while True:
            answer = json.loads(socket.recv())
            delays.append((time.perf_counter() - sent_at[answer["frame"]]) * 1000)
            answered += 1
            if answer["frame"] == last:
                break
        elapsed = time.perf_counter() - started
        sender.join()
    return {
        "sent_fps": fps,
        "answered_fps": round(answered / elapsed, 2),
        "dropped_share": round(1 - answered / last, 3),
        "frame_to_box_ms": summary(delays),
    }


@contextmanager
def websocket(base: str, key: str, camera: str, params: dict) -> Iterator[Callable[[bytes], None]]:
    with connect(stream_url(base, camera, params), additional_headers={"X-API-Key": key}, max_size=None) as socket:

        def send(frame: bytes) -> None:
            socket.send(frame)
            answer = json.loads(socket.recv())
            if answer.get("error"):
                raise RuntimeError(answer["error"])

        yield send


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=40, help="frames per transport or size per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--camera-fps", type=float, default=15, help="the camera's frame rate")
    parser.add_argument("--camera-seconds", type=float, default=10)
    parser.add_argument("--min-face-size", type=int, help="the requests' min_face_size (default: the service's)")
    args = parser.parse_args()
    params = {"min_face_size": args.min_face_size} if args.min_face_size else {}

    chosen = people(MEMBERS)
    frames = {name: camera_frames(chosen, size, args.frames) for name, size in FRAME_SIZES.items()}
    blank = cv2.imencode(".jpg", np.full((120, 160, 3), 128, np.uint8))[1].tobytes()  # MTCNN: about 20 ms
    results: dict[str, list] = {"post": [], "websocket": [], "post_blank": [], "websocket_blank": []}
    sizes: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="facegate-stream-bench-") as tmp:
        with running_service(Path(tmp), free_port()) as (base, _):
            key = (Path(tmp) / ADMIN_KEY_FILE).read_text().strip()
            with httpx.Client(base_url=base, headers={"X-API-Key": key}, timeout=120) as client:
                for person in chosen:
                    photos = sorted(person.glob("*.jpg"))[:3]
                    files = [("file", (p.name, p.read_bytes(), "image/jpeg")) for p in photos]
                    data = {"external_id": person.name, "display_name": person.name}
                    client.post("/v1/members", data=data, files=files, params={"allow_duplicate": True})
            for name in FRAME_SIZES:
                runs = []
                for round_number in range(args.rounds):
                    with websocket(base, key, f"{name}-{round_number}", params) as send:
                        runs.append(timed(send, frames[name]))
                sizes[name] = {
                    "answered_in_turn": {
                        "round_trip": summary([ms for trips, _ in runs for ms in trips]),
                        "frames_per_second": [round(fps, 2) for _, fps in runs],
                    },
                    "camera": camera_rate(base, key, frames[name], args.camera_fps, args.camera_seconds, params),
                }
            for round_number in range(args.rounds):
                with post_loop(base, key, params) as send:
                    results["post"].append(timed(send, frames[TRANSPORT_SIZE]))
                with websocket(base, key, f"round-{round_number}", params) as send:
                    results["websocket"].append(timed(send, frames[TRANSPORT_SIZE]))
            for _ in range(args.rounds):
                with post_loop(base, key, params) as send:
                    results["post_blank"].append(timed(send, [blank] * TRANSPORT_ONLY_FRAMES))
                with websocket(base, key, "blank", params) as send:
                    results["websocket_blank"].append(timed(send, [blank] * TRANSPORT_ONLY_FRAMES))

    report = {
        "min_face_size": args.min_face_size,
        "sizes": sizes,
        "transports": {
            name: {
                "round_trip": summary([ms for trips, _ in runs for ms in trips]),
                "frames_per_second": [round(fps, 2) for _, fps in runs],
            }
            for name, runs in results.items()
        },
    }
    write_report("stream", report)


if __name__ == "__main__":
    main()
