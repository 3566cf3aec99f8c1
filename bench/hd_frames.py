"""HD camera frames: FaceGate's identify over HTTP against DeepFace's represent on the same frames, in the same run.

Synthetic door-camera frames (services/evaluation/camera_clips.py: an LFW photo scaled to 260 px, face ~100-130
px, on a room-like background with no other face) at 640x480, 1280x720 and 1920x1080, plus the LFW photos
themselves (250x250). The service runs on a fresh embedded database with the frames' people enrolled (their first
three photos; the frames hold the fourth). Per round, every size is identified frame by frame over one keep-alive
client (POST /v1/identify, sequential); DeepFace (`bench/peer_deepface.py` in bench/.venv-peer, set up by
bench/setup_peer_env.sh) times `represent` on the same JPEG files between FaceGate's rounds.

Run: FACEGATE_WEIGHTS_DIR=../shared/models .venv/bin/python -m bench.hd_frames [--frames 20] [--rounds 2]
     [--no-peer] [--peer-frames 10] [--min-face-size 80] (identify's ?min_face_size=, as a near camera sends it)
"""

import argparse
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from bench.results_file import write_report
from bench.run import REPO, free_port, running_service
from services.evaluation.camera_clips import FRAME_SIZES, door_frame, encode_jpeg
from services.identity.auth import ADMIN_KEY_FILE

LFW_IMAGES = REPO.parent / "shared" / "data" / "lfw" / "images"
PEER_PYTHON = REPO / "bench" / ".venv-peer" / "bin" / "python"
WARMUP = 3


def people(count: int) -> list[Path]:
    """People with at least 4 photos: 3 to enroll, the 4th in the frames."""
    return [p for p in sorted(LFW_IMAGES.iterdir()) if len(list(p.glob("*.jpg"))) >= 4][:count]


def write_frames(folder: Path, chosen: list[Path]) -> dict[str, list[Path]]:
    """The JPEG files of every size, one per person (the LFW photo itself as 250x250)."""
    frames: dict[str, list[Path]] = {}
    for name, size in {"250x250": None, **FRAME_SIZES}.items():
        (folder / name).mkdir()
        frames[name] = []
        for i, person in enumerate(chosen):
            photo = sorted(person.glob("*.jpg"))[3]
            path = folder / name / f"{i:03d}.jpg"
            path.write_bytes(photo.read_bytes() if size is None else encode_jpeg(door_frame(photo, size, seed=i)))
            frames[name].append(path)
    return frames


def identify_round(client: httpx.Client, frames: list[Path], params: dict) -> tuple[list[float], list[int]]:
    """Milliseconds per identify and faces found, each frame sent after the previous answer."""
    for path in frames[:WARMUP]:
        file = {"file": ("f.jpg", path.read_bytes(), "image/jpeg")}
        client.post("/v1/identify", files=file, params=params).raise_for_status()
    times, found = [], []
    for path in frames:
        data = path.read_bytes()
        started = time.perf_counter()
        response = client.post("/v1/identify", files={"file": ("f.jpg", data, "image/jpeg")}, params=params)
        times.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
        found.append(len(response.json()["faces"]))
    return times, found


def deepface(folder: Path, frames: int) -> dict:
    out = folder.parent / f"peer-{folder.name}.json"
    command = [str(PEER_PYTHON), str(REPO / "bench" / "peer_deepface.py"), "--images", str(folder)]
    subprocess.run([*command, "--limit", str(frames), "--warmup", "2", "--json", str(out)], check=True)
    result = json.loads(out.read_text())
    return {"mean_ms": result["mean_ms"], "median_ms": result["median_ms"], "images": result["n_images"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=20, help="frames per size (one person each)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--peer-frames", type=int, default=10, help="frames per size DeepFace represents")
    parser.add_argument("--no-peer", action="store_true", help="FaceGate alone")
    parser.add_argument("--min-face-size", type=int, help="identify's min_face_size (default: the service's)")
    args = parser.parse_args()
    params = {"min_face_size": args.min_face_size} if args.min_face_size else {}
    use_peer = not args.no_peer and PEER_PYTHON.exists()

    chosen = people(args.frames)
    timings: dict[str, list[float]] = {}
    faces: dict[str, list[int]] = {}
    peer: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="facegate-hd-bench-") as tmp:
        frames = write_frames(Path(tmp), chosen)
        data_dir = Path(tmp) / "service"
        data_dir.mkdir()
        with running_service(data_dir, free_port()) as (base, _):
            key = (data_dir / ADMIN_KEY_FILE).read_text().strip()
            with httpx.Client(base_url=base, headers={"X-API-Key": key}, timeout=120) as client:
                for person in chosen:
                    files = [("file", (p.name, p.read_bytes(), "image/jpeg")) for p in sorted(person.glob("*.jpg"))[:3]]
                    data = {"external_id": person.name, "display_name": person.name}
                    client.post("/v1/members", data=data, files=files, params={"allow_duplicate": True})
                for round_number in range(args.rounds):
                    for name, paths in frames.items():
                        times, found = identify_round(client, paths, params)
                        timings.setdefault(name, []).extend(times)
                        faces.setdefault(name, []).extend(found)
                    if use_peer and round_number == 0:  # between FaceGate's rounds, while the service idles
                        peer = {name: deepface(paths[0].parent, args.peer_frames) for name, paths in frames.items()}

    report: dict[str, object] = {"min_face_size": args.min_face_size}
    for name, times in timings.items():
        row = {
            "facegate_median_ms": round(statistics.median(times), 1),
            "facegate_mean_ms": round(statistics.fmean(times), 1),
            "facegate_min_ms": round(min(times), 1),
            "faces_per_frame": round(statistics.fmean(faces[name]), 2),
        }
        if name in peer:
            row["deepface_median_ms"], row["deepface_mean_ms"] = peer[name]["median_ms"], peer[name]["mean_ms"]
            row["ratio_of_means"] = round(peer[name]["mean_ms"] / row["facegate_mean_ms"], 1)
            row["ratio_of_medians"] = round(peer[name]["median_ms"] / row["facegate_median_ms"], 1)
        report[name] = row
    write_report("hd_frames", report)


if __name__ == "__main__":
    main()
