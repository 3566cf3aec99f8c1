"""Step 1 of the identify study, and the gallery of bench/scale.py: every LFW image embedded once through the
service's own pipeline, into a cache the studies read (numpy only from there on).

Run: FACEGATE_WEIGHTS_DIR=../shared/models .venv/bin/python -m bench.lfw_embeddings [--lfw DIR] [--cache PATH]
An interrupted run resumes from its partial checkpoint."""

import argparse
import time
from pathlib import Path

import numpy as np

from core.settings import get_settings
from services.evaluation.verification import central_face
from services.faces.pipeline import FacePipeline

REPO = Path(__file__).resolve().parent.parent
LFW = REPO.parent / "shared" / "data" / "lfw"
CACHE = REPO / "bench" / "results" / "lfw_embeddings.npz"


def build_cache(lfw_images: Path, out: Path) -> None:
    """Per image: the central face (services.evaluation.verification.central_face) of what FacePipeline.analyze
    finds, the FaceNet embedding of its 160x160 crop and of the horizontally mirrored crop, detection score,
    face size, sharpness and the number of faces. Resumes from a partial checkpoint if interrupted."""
    pipeline = FacePipeline(get_settings())
    pipeline.load()
    files = sorted(p.relative_to(lfw_images).as_posix() for p in lfw_images.glob("*/*.jpg"))
    n = len(files)
    emb = np.zeros((n, 128), np.float32)
    emb_mirror = np.zeros((n, 128), np.float32)
    score = np.full(n, np.nan, np.float32)
    size = np.full(n, np.nan, np.float32)
    sharp = np.full(n, np.nan, np.float32)
    n_faces = np.zeros(n, np.int16)
    found = np.zeros(n, bool)
    # What the cache holds per image, under the names it is saved with (filled in place below).
    arrays = {
        "embedding": emb,
        "embedding_mirror": emb_mirror,
        "detection_score": score,
        "face_size": size,
        "sharpness": sharp,
        "n_faces": n_faces,
        "found": found,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.stem + ".partial.npz")
    done = 0
    if partial.exists():
        z = np.load(partial)
        done = int(z["done"])
        for name, array in arrays.items():
            array[:done] = z[name][:done]
        print(f"resuming at {done}")
    start = time.time()
    for i, name in enumerate(files):
        if i < done:
            continue
        image = pipeline.decode((lfw_images / name).read_bytes())
        faces = pipeline.analyze(image)
        n_faces[i] = len(faces)
        index = central_face([f.detection for f in faces], image.shape)
        if index is not None:
            face = faces[index]
            emb[i] = face.embedding
            emb_mirror[i] = pipeline.run(pipeline.embedder.predict, face.crop[:, ::-1].copy()[None])[0]
            score[i], size[i], sharp[i] = face.detection.score, face.detection.size, face.sharpness
            found[i] = True
        if i % 100 == 99:
            print(f"{i + 1}/{n} {time.time() - start:.0f}s", flush=True)
            np.savez(partial, done=i + 1, **arrays)
    np.savez_compressed(out, files=np.array(files), person=np.array([f.split("/")[0] for f in files]), **arrays)
    partial.unlink(missing_ok=True)
    print(f"saved {out}: {n} images, no face in {int((~found).sum())}, {time.time() - start:.0f}s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lfw", type=Path, default=LFW, help="LFW folder with images/")
    parser.add_argument("--cache", type=Path, default=CACHE)
    args = parser.parse_args()
    build_cache(args.lfw / "images", args.cache)


if __name__ == "__main__":
    main()
