"""Which crop gives FaceNet the best LFW fold-1 accuracy? Compares box margins and a 5-landmark similarity warp.

Run: FACEGATE_WEIGHTS_DIR=../shared/models .venv/bin/python -m bench.alignment_study
The result is written up in docs/alignment.md.
"""

import argparse
from pathlib import Path

import cv2
import numpy as np

from core.settings import get_settings
from services.evaluation.verification import central_face, read_lfw_pairs, verification_report
from services.faces.alignment import FACENET_SIZE, facenet_crop
from services.faces.pipeline import FacePipeline


def similarity_crop(image: np.ndarray, landmarks: np.ndarray, template: np.ndarray) -> np.ndarray:
    matrix, _ = cv2.estimateAffinePartial2D(landmarks.astype(np.float32), template.astype(np.float32))
    return cv2.warpAffine(
        image, matrix, (FACENET_SIZE, FACENET_SIZE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lfw", type=Path, default=Path("../shared/data/lfw"))
    parser.add_argument("--margins", type=float, nargs="+", default=[0.0, 0.1, 0.15, 0.2, 0.25, 0.3])
    args = parser.parse_args()

    pipeline = FacePipeline(get_settings())
    pipeline.load()
    pairs = read_lfw_pairs(args.lfw / "pairs.txt", [1])
    names = sorted({p.left for p in pairs} | {p.right for p in pairs})
    images, faces = {}, {}
    for name in names:
        image = pipeline.decode((args.lfw / "images" / name).read_bytes())
        detected = pipeline.detect(image)
        index = central_face(detected, image.shape)
        if index is not None:
            images[name], faces[name] = image, detected[index]
    print(f"{len(names)} images, no face found in {len(names) - len(faces)}")

    def report(label: str, crop_of) -> None:
        embeddings = {n: pipeline.embedder.predict(crop_of(n)[None])[0] for n in faces}
        r = verification_report(pairs, embeddings, [n for n in names if n not in faces], threshold=1.0)
        print(
            f"{label:28s} 10-fold acc {r.cv_accuracy:.4f} ± {r.cv_accuracy_std:.4f}  best threshold "
            f"{r.best_threshold:.3f}  mean dist same {r.mean_distance_same:.3f} / diff {r.mean_distance_different:.3f}"
        )

    for margin in args.margins:
        report(f"box, margin {margin:.2f}", lambda n, m=margin: facenet_crop(images[n], faces[n], margin=m))

    # Landmark template: where the 5 points fall, on average, in the best box crops; the warp then only
    # removes each face's roll and scale differences from that framing.
    for margin in (0.15, 0.2):
        points = []
        for f in faces.values():
            x1, y1, x2, y2 = f.box.corners
            dx, dy = (x2 - x1) * margin, (y2 - y1) * margin
            scale = np.array([FACENET_SIZE / (x2 - x1 + 2 * dx), FACENET_SIZE / (y2 - y1 + 2 * dy)])
            points.append((f.landmarks - [x1 - dx, y1 - dy]) * scale)
        template = np.mean(points, axis=0)
        report(
            f"similarity, template@{margin:.2f}",
            lambda n, t=template: similarity_crop(images[n], faces[n].landmarks, t),
        )


if __name__ == "__main__":
    main()
