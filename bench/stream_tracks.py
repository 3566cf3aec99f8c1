"""Per-frame decisions against track decisions on clips of people passing a camera.

Clips (services/evaluation/camera_clips.passing_clip) of enrolled people and of strangers, two kinds each:
"one photo" (shifted, rescaled and re-lit copies of one LFW photo: what a camera's consecutive frames vary by) and
"several photos" (the person's other LFW photos mixed in: pose, expression and light changing as well). Each
frame goes both to POST /v1/identify (decided alone, as the stream did before tracks) and, in order, to a
/v1/identify/stream connection per clip (decided on its track). Reported per kind: the share of frames that name
the right member (DIR) decided alone and by their track, the share of frames where the two disagree, decision
changes within a clip, false matches of strangers, and tracks and attempts per clip.

Run: FACEGATE_WEIGHTS_DIR=../shared/models .venv/bin/python -m bench.stream_tracks [--people 12] [--frames 10]
"""

import argparse
import json
import tempfile
from pathlib import Path

import httpx
from websockets.sync.client import connect

from bench.results_file import write_report
from bench.run import REPO, free_port, running_service
from services.evaluation.camera_clips import encode_jpeg, passing_clip
from services.identity.auth import ADMIN_KEY_FILE

LFW_IMAGES = REPO.parent / "shared" / "data" / "lfw" / "images"
FRAME_SIZE = (640, 480)


def label(face: dict | None) -> str:
    """What a viewer sees: the member named, review, unknown, or no face."""
    if face is None:
        return "no face"
    return f"match:{face['match']['external_id']}" if face["match"] else face["decision"]


def changes(labels: list[str]) -> int:
    return sum(a != b for a, b in zip(labels, labels[1:], strict=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=12, help="enrolled people (and as many strangers)")
    parser.add_argument("--frames", type=int, default=10, help="frames per clip")
    args = parser.parse_args()

    folders = sorted(p for p in LFW_IMAGES.iterdir() if len(list(p.glob("*.jpg"))) >= 8)
    enrolled, strangers = folders[: args.people], folders[args.people : 2 * args.people]
    clips = []  # (kind, person, enrolled, frames)
    for person in enrolled + strangers:
        photos = sorted(person.glob("*.jpg"))
        for kind, chosen in (("one photo", photos[3:4]), ("several photos", photos[3:8])):
            frames = passing_clip(chosen, FRAME_SIZE, args.frames, seed=len(clips))
            clips.append((kind, person.name, person in enrolled, [encode_jpeg(f) for f in frames]))

    rows = []
    with tempfile.TemporaryDirectory(prefix="facegate-track-bench-") as tmp:
        with running_service(Path(tmp), free_port()) as (base, _):
            key = (Path(tmp) / ADMIN_KEY_FILE).read_text().strip()
            with httpx.Client(base_url=base, headers={"X-API-Key": key}, timeout=120) as client:
                refused = set()  # a photo the enrollment gate refuses: that person sits out
                for person in enrolled:
                    files = [("file", (p.name, p.read_bytes(), "image/jpeg")) for p in sorted(person.glob("*.jpg"))[:3]]
                    data = {"external_id": person.name, "display_name": person.name}
                    if client.post("/v1/members", data=data, files=files, params={"allow_duplicate": True}).is_error:
                        refused.add(person.name)
                clips = [c for c in clips if c[1] not in refused]
                url = base.replace("http://", "ws://") + "/v1/identify/stream?camera=bench"
                for kind, name, is_enrolled, frames in clips:
                    alone = []
                    for frame in frames:
                        response = client.post("/v1/identify", files={"file": ("f.jpg", frame, "image/jpeg")})
                        faces = response.json()["faces"]
                        alone.append(faces[0] if faces else None)
                    tracked = []
                    with connect(url, additional_headers={"X-API-Key": key}, max_size=None) as socket:
                        for frame in frames:
                            socket.send(frame)
                            faces = json.loads(socket.recv())["faces"]
                            tracked.append(faces[0] if faces else None)
                    rows.append((kind, name, is_enrolled, alone, tracked))

    attempts = {t["attempt_id"] for *_, tracked in rows for t in tracked if t and t["attempt_id"]}
    report: dict = {
        "clips": len(rows),
        "frames_per_clip": args.frames,
        "stream_attempts_per_clip": len(attempts) / len(rows),
    }
    for kind in ("one photo", "several photos"):
        for who, enrolled_flag in (("enrolled", True), ("strangers", False)):
            chosen = [r for r in rows if r[0] == kind and r[2] == enrolled_flag]
            frames = [
                (name, a, t) for _, name, _, alone, tracked in chosen for a, t in zip(alone, tracked, strict=True)
            ]
            right = "match:{}"
            entry = {
                "frames": len(frames),
                "frames_disagreeing": round(sum(label(a) != label(t) for _, a, t in frames) / len(frames), 3),
                "decision_changes_per_clip_alone": round(sum(changes([label(a) for a in r[3]]) for r in chosen) / len(chosen), 2),
                "decision_changes_per_clip_tracked": round(sum(changes([label(t) for t in r[4]]) for r in chosen) / len(chosen), 2),
                "tracks_per_clip": round(sum(len({t["track_id"] for t in r[4] if t}) for r in chosen) / len(chosen), 2),
            }  # fmt: skip
            if enrolled_flag:
                entry["dir_alone"] = round(sum(label(a) == right.format(n) for n, a, _ in frames) / len(frames), 3)
                entry["dir_tracked"] = round(sum(label(t) == right.format(n) for n, _, t in frames) / len(frames), 3)
                entry["clips_ending_right"] = sum(label(r[4][-1]) == right.format(r[1]) for r in chosen)
            else:
                entry["false_matches_alone"] = sum(label(a).startswith("match:") for _, a, _ in frames)
                entry["false_matches_tracked"] = sum(label(t).startswith("match:") for _, _, t in frames)
            entry["clips"] = len(chosen)
            report[f"{kind}, {who}"] = entry
    write_report("stream_tracks", report)


if __name__ == "__main__":
    main()
