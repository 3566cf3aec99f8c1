"""Gallery levers of issue 21 replayed in numpy (docs/identification.md, "One person per member", "Learning from
visits", "One-photo calibration").

Step 1 analyses every LFW photo of ../shared once through the service's pipeline (the subject face as the
evaluator picks it, whether the enrollment gate takes it, its embedding) into bench/results/gallery_cache.npz.
Step 2 replays the studies on those embeddings:
- `signup`: the face-agreement check on genuine and mixed-person 3-photo signups, and on strangers' photos added to
  a member one at a time, at verify's calibrated 1:1 lines (how many are accepted, queued or refused);
- `gap`: the one-photo calibration with and without a gap prior, DIR and FPIR against hindsight;
- `visits`: members enrolled with one photo, three rounds of visits that may learn, then a final probe.

Run: FACEGATE_WEIGHTS_DIR=../shared/models .venv/bin/python -m bench.gallery_study [signup|gap|visits]
"""

import argparse
from pathlib import Path

import numpy as np

from core.errors import FaceGateError
from core.settings import get_settings
from services.evaluation.verification import subject_face
from services.faces.images import IMAGE_SUFFIXES
from services.faces.pipeline import FacePipeline
from services.faces.quality import QualityGate
from services.identity import enrollment

REPO = Path(__file__).resolve().parent.parent
LFW = REPO.parent / "shared" / "data" / "lfw" / "images"
CACHE = REPO / "bench" / "results" / "gallery_cache.npz"


def analyse(out: Path) -> None:
    settings = get_settings()
    pipeline = FacePipeline(settings)
    pipeline.load()
    gate = QualityGate.from_settings(settings)
    rows: dict[str, list] = {"person": [], "index": [], "embedding": [], "gated": []}
    work = [
        (d.name, i, p)
        for d in sorted(LFW.iterdir())
        if d.is_dir()
        for i, p in enumerate(sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES))
    ]
    for done, (name, i, path) in enumerate(work):
        faces, subject = subject_face(pipeline, path)
        if subject is None:
            continue
        try:
            enrollment.gate_faces(gate, [subject], largest=True)
            gated = True
        except FaceGateError:
            gated = False
        rows["person"].append(name)
        rows["index"].append(i)
        rows["embedding"].append(subject.embedding)
        rows["gated"].append(gated)
        if done % 200 == 0:
            print(f"{done}/{len(work)} photos", flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, **{name: np.array(values) for name, values in rows.items()})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("study", nargs="?", default="analyse")
    parser.add_argument("--cache", type=Path, default=CACHE)
    args = parser.parse_args()
    if not args.cache.exists():
        analyse(args.cache)


if __name__ == "__main__":
    main()
