"""A photo folder of any size for bulk-import runs (`facegate enroll-folder`, docs/scaling.md "Bulk import").

Run: .venv/bin/python -m bench.photo_folder OUT --photos 100000 [--lfw ../shared/data/lfw/images] [--seed 0]

../shared holds 2,310 LFW photos; a 100k-photo import needs more. Each LFW photo is written again as varied
copies (mirrored or not, cropped and shifted, turned by up to 8 degrees, lit and compressed differently), one
copy per person folder OUT/pNNNNNN/, so that every copy becomes a member of its own. Copies of one photo stay
near each other in FaceNet's space: import them with `--allow-duplicate`, or the duplicate-signup check refuses
them. The folder measures the import's rate, progress and resumption, not recognition.
"""

import argparse
from pathlib import Path

import cv2
import numpy as np

from bench.scale import LFW_IMAGES


def varied_copy(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """`image` mirrored at random, scaled by 0.9-1.1, shifted by up to 4% of its side, turned by up to 8 degrees,
    with its contrast and brightness moved by up to 15% and 20 levels."""
    height, width = image.shape[:2]
    if rng.random() < 0.5:
        image = image[:, ::-1]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), rng.uniform(-8, 8), rng.uniform(0.9, 1.1))
    matrix[:, 2] += rng.uniform(-0.04, 0.04, 2) * (width, height)
    image = cv2.warpAffine(image, matrix, (width, height), borderMode=cv2.BORDER_REFLECT)
    return cv2.convertScaleAbs(image, alpha=rng.uniform(0.85, 1.15), beta=rng.uniform(-20, 20))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--photos", type=int, default=100_000)
    parser.add_argument("--lfw", type=Path, default=LFW_IMAGES)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    sources = sorted(args.lfw.rglob("*.jpg"))
    rng = np.random.default_rng(args.seed)
    for index in range(args.photos):
        source = sources[index % len(sources)]
        folder = args.out / f"p{index:06d}"
        folder.mkdir(parents=True, exist_ok=True)
        copy = varied_copy(cv2.imread(str(source)), rng)
        cv2.imwrite(str(folder / source.name), copy, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(75, 96))])
        if index % 10_000 == 0:
            print(f"{index} of {args.photos}", flush=True)
    print(f"{args.photos} photos from {len(sources)} LFW photos in {args.out}")


if __name__ == "__main__":
    main()
