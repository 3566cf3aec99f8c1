"""How small may a face be and still be recognised? The smallest face that matters sets how much of an HD frame the
detector must search (docs/performance.md, "HD frames").

Each photo of the chosen LFW folds is downscaled (area resampling, as a camera further away would see it) so that
its subject's face box is a given size, then detected (down to 20 px faces), aligned and embedded by the service's
own pipeline. Per face size: how many subjects were found, how far their embeddings moved from the full-size
photo's, and LFW verification on those folds (10-fold accuracy; pairs with a face not found count as wrong), on the pairs whose photos are both in ../shared.

Run: FACEGATE_WEIGHTS_DIR=../shared/models .venv/bin/python -m bench.face_size_study [--folds 1 2] [--sizes 30 40 60 80]
"""

import argparse
import statistics

import cv2
import numpy as np

from bench.lfw_pairs import pair_photos, subject
from bench.results_file import write_report
from core.settings import get_settings
from services.evaluation.verification import verification_report
from services.faces.pipeline import FacePipeline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--sizes", type=int, nargs="+", default=[24, 32, 40, 50, 60, 80])
    args = parser.parse_args()

    settings = get_settings().model_copy(update={"detector_min_face_size": 20})
    pipeline = FacePipeline(settings)
    pipeline.load()
    found = pair_photos(pipeline, args.folds)
    pairs, names, images, native = found.pairs, found.names, found.images, found.subjects

    report = {"pairs": len(pairs), "images": len(names)}
    for size in ["native", *args.sizes]:
        embeddings, moved = {}, []
        for name, image in images.items():
            if size == "native":
                embeddings[name] = native[name].embedding
                continue
            factor = size / native[name].detection.size
            if factor >= 1:  # the face is no larger in the photo itself
                embeddings[name] = native[name].embedding
                continue
            small = cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
            face = subject(pipeline, small)
            if face is not None:
                embeddings[name] = face.embedding
                moved.append(float(np.linalg.norm(face.embedding - native[name].embedding)))
        missed = [n for n in names if n not in embeddings]
        result = verification_report(pairs, embeddings, missed, settings.match_threshold)
        report[str(size)] = {
            "subjects_found": f"{len(embeddings)} / {len(names)}",
            "moved_from_native_median": round(statistics.median(moved), 3) if moved else None,
            "cv_accuracy": round(result.cv_accuracy, 4),
            "accuracy_at_configured_threshold": round(result.accuracy, 4),
            "false_reject_rate": round(result.false_reject_rate, 4),
            "false_accept_rate": round(result.false_accept_rate, 4),
        }
        print(size, report[str(size)], flush=True)
    write_report("face_size_study", report)


if __name__ == "__main__":
    main()
