"""Detector study: what a larger smallest face (FACEGATE_DETECTOR_MIN_FACE_SIZE) changes and what it saves.

Every LFW photo under ../shared goes through the service's own pipeline once per setting (the first is the
baseline). Reported per setting: detect time (alternated photo by photo, so both see the same load), faces found
in all and faces of at least the enrollment gate's size (FACEGATE_MIN_FACE_SIZE), photos whose subject (the face
nearest the centre) was lost, how far the subject's box and embedding moved, and LFW fold-1 pairs: distances
moved, accuracy and decisions at the match threshold.

Run: FACEGATE_WEIGHTS_DIR=../shared/models .venv/bin/python -m bench.detector_study [--min-face 20 40] [--every 1]
"""

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

from core.settings import get_settings
from services.evaluation.verification import central_face, read_lfw_pairs, verification_report
from services.faces.pipeline import AnalyzedFace, FacePipeline

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lfw", type=Path, default=REPO.parent / "shared" / "data" / "lfw")
    parser.add_argument("--min-face", type=int, nargs="+", default=[20, 40])
    parser.add_argument("--every", type=int, default=1, help="every n-th photo (the pairs' photos always)")
    parser.add_argument("--json", type=Path, default=REPO / "bench" / "results" / "detector_study.json")
    args = parser.parse_args()

    settings = get_settings()
    pipelines = {}
    for size in args.min_face:
        pipelines[size] = FacePipeline(settings.model_copy(update={"detector_min_face_size": size}))
        pipelines[size].load()
    pairs = read_lfw_pairs(args.lfw / "pairs.txt", [1])
    pair_photos = {p.left for p in pairs} | {p.right for p in pairs}
    images = args.lfw / "images"
    photos = sorted(str(path.relative_to(images)) for path in images.glob("*/*.jpg"))
    photos = [name for i, name in enumerate(photos) if i % args.every == 0 or name in pair_photos]

    detect_ms: dict[int, list[float]] = {size: [] for size in args.min_face}
    faces: dict[int, dict[str, list[AnalyzedFace]]] = {size: {} for size in args.min_face}
    shapes = {}
    for name in photos:
        image = pipelines[args.min_face[0]].decode((images / name).read_bytes())
        shapes[name] = image.shape
        for size, pipeline in pipelines.items():
            start = time.perf_counter()
            pipeline.run(pipeline.detect, image)
            detect_ms[size].append((time.perf_counter() - start) * 1000)
            faces[size][name] = pipeline.analyze(image)

    def subject(size: int, name: str) -> AnalyzedFace | None:
        found = faces[size][name]
        index = central_face([f.detection for f in found], shapes[name])
        return None if index is None else found[index]

    base = args.min_face[0]
    report = {}
    for size in args.min_face:
        subjects = {name: subject(size, name) for name in photos}
        embeddings = {name: s.embedding for name, s in subjects.items() if s is not None}
        missed = [name for name in pair_photos if name not in embeddings]
        lfw = verification_report(pairs, embeddings, missed, settings.match_threshold)
        base_subjects = {name: subject(base, name) for name in photos}
        both = [n for n in photos if subjects[n] is not None and base_subjects[n] is not None]
        box_moved = [
            max(abs(a - b) for a, b in zip(subjects[n].detection.box.corners, base_subjects[n].detection.box.corners, strict=True))
            for n in both
        ]  # fmt: skip
        embedding_moved = [float(np.linalg.norm(subjects[n].embedding - base_subjects[n].embedding)) for n in both]
        base_embeddings = {n: s.embedding for n, s in base_subjects.items() if s is not None}
        pair_moved = [
            abs(np.linalg.norm(embeddings[p.left] - embeddings[p.right]) - np.linalg.norm(base_embeddings[p.left] - base_embeddings[p.right]))
            for p in pairs
            if all(n in embeddings and n in base_embeddings for n in (p.left, p.right))
        ]  # fmt: skip
        report[size] = {
            "photos": len(photos),
            "detect_ms_median": round(statistics.median(detect_ms[size]), 2),
            "detect_ms_mean": round(statistics.fmean(detect_ms[size]), 2),
            "faces": sum(len(f) for f in faces[size].values()),
            "faces_enrollable": sum(
                f.detection.size >= settings.min_face_size for fs in faces[size].values() for f in fs
            ),
            "subject_lost": sum(subjects[n] is None and base_subjects[n] is not None for n in photos),
            "subject_box_moved_px_max": round(max(box_moved), 4),
            "subject_box_moved_px_over_1": sum(m > 1 for m in box_moved),
            "subject_embedding_moved_max": round(max(embedding_moved), 5),
            "subject_embedding_moved_median": round(statistics.median(embedding_moved), 6),
            "pair_distance_moved_max": round(float(max(pair_moved)), 5),
            "lfw_fold1_cv_accuracy": round(lfw.cv_accuracy, 4),
            "lfw_fold1_accuracy_at_threshold": round(lfw.accuracy, 4),
            "lfw_fold1_false_accepts": round(lfw.false_accept_rate * sum(not p.same for p in pairs)),
            "lfw_fold1_false_rejects": round(lfw.false_reject_rate * sum(p.same for p in pairs)),
        }
        print(f"min face {size}: {json.dumps(report[size])}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
