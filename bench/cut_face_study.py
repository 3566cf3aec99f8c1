"""How much of a face may the photo's edge cut off and still enroll? The enrollment gate refuses a face with less
than 80% of FaceNet's region (the box and its margin) inside the photo (docs/identification.md, "Faces cut off by
the photo's edge").

Each photo of the chosen LFW folds is cropped so that a given share of its subject's face box stays inside, the cut
made from the left, right, top or bottom in turn (photo by photo), then detected, aligned and embedded by the
service's own pipeline. Per share: how many subjects were found, how far the embeddings moved from the uncut
photo's, and LFW verification on those folds (10-fold accuracy; pairs with a face not found count as wrong), on the
pairs whose photos are both in ../shared. Then, over all cuts, by what the gate measures (the share of FaceNet's
region inside the photo): how many faces, and how far their embeddings moved; and how many uncut photos it refuses.

Run: FACEGATE_WEIGHTS_DIR=../shared/models .venv/bin/python -m bench.cut_face_study [--folds 1 2] [--shares 0.9 0.7]
"""

import argparse
import statistics

import numpy as np

from bench.lfw_pairs import pair_photos, subject
from bench.results_file import write_report
from core.settings import get_settings
from services.evaluation.verification import verification_report
from services.faces.detection import Box
from services.faces.pipeline import FacePipeline
from services.faces.quality import MIN_CROP_INSIDE, crop_inside_share

SIDES = ("left", "right", "top", "bottom")


def cut(image: np.ndarray, box: Box, share: float, side: str) -> np.ndarray:
    """The photo cropped at one side so that `share` of the box stays inside."""
    x1, y1, x2, y2 = box.corners
    if side == "left":
        return image[:, max(int(round(x2 - share * box.width)), 0) :]
    if side == "right":
        return image[:, : int(round(x1 + share * box.width))]
    if side == "top":
        return image[max(int(round(y2 - share * box.height)), 0) :]
    return image[: int(round(y1 + share * box.height))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--shares", type=float, nargs="+", default=[1.0, 0.98, 0.95, 0.9, 0.8, 0.7, 0.6, 0.5])
    args = parser.parse_args()

    settings = get_settings()
    pipeline = FacePipeline(settings)
    pipeline.load()
    found = pair_photos(pipeline, args.folds)
    pairs, names, images, native = found.pairs, found.names, found.images, found.subjects

    report: dict[str, object] = {"pairs": len(pairs), "images": len(names)}
    measured: list[tuple[float, float]] = []  # (share of FaceNet's region inside, embedding moved), every cut
    for share in ["uncut", *args.shares]:
        embeddings, moved = {}, []
        for number, (name, image) in enumerate(images.items()):
            if share == "uncut":
                embeddings[name] = native[name].embedding
                continue
            cropped = cut(image, native[name].detection.box, float(share), SIDES[number % len(SIDES)])
            face = subject(pipeline, cropped) if min(cropped.shape[:2]) >= 20 else None
            if face is not None:
                embeddings[name] = face.embedding
                moved.append(float(np.linalg.norm(face.embedding - native[name].embedding)))
                measured.append((crop_inside_share(face.detection.box, face.frame), moved[-1]))
        missed = [n for n in names if n not in embeddings]
        result = verification_report(pairs, embeddings, missed, settings.match_threshold)
        report[str(share)] = {
            "subjects_found": f"{len(embeddings)} / {len(names)}",
            "moved_from_uncut_median": round(statistics.median(moved), 3) if moved else None,
            "cv_accuracy": round(result.cv_accuracy, 4),
            "accuracy_at_configured_threshold": round(result.accuracy, 4),
            "false_reject_rate": round(result.false_reject_rate, 4),
            "false_accept_rate": round(result.false_accept_rate, 4),
        }
        print(share, report[str(share)], flush=True)
    uncut = [crop_inside_share(face.detection.box, face.frame) for face in native.values()]
    report["uncut_refused"] = sum(share < MIN_CROP_INSIDE for share in uncut)
    report["uncut_not_wholly_inside"] = sum(share < 1 for share in uncut)
    bounds = [1.0, 0.97, 0.94, 0.9, 0.85, 0.8, 0.0]
    report["moved_by_region_inside"] = {
        f">= {low}" + (f", < {high}" if high is not None else ""): {
            "faces": len(moved),
            "moved_median": round(statistics.median(moved), 3) if moved else None,
        }
        for low, high in zip(bounds, [None, *bounds[:-1]], strict=True)
        for moved in [[m for share, m in measured if share >= low and (high is None or share < high)]]
    }
    print({key: report[key] for key in ("uncut_refused", "uncut_not_wholly_inside", "moved_by_region_inside")})
    write_report("cut_face_study", report)


if __name__ == "__main__":
    main()
