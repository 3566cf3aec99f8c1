"""`eval-identify` replayed in numpy, to try calibrations in seconds (docs/identification.md, "Looser gap models").

Step 1 analyses every LFW photo once through the evaluator's own code (subject face, quality gate for the first 3
photos of each member, embedding) into bench/results/eval_identify_cache.npz; the slow step, reused when present.
Step 2 replays each gallery the way `services/evaluation/identification.py` runs it through the service: templates
(`templates.template_of`), known strangers, the service's `Calibration`, 2*d1 - d2 over the templates. With seed 0
it reproduces the service run's accept scores and DIR. It also measures FPIR on the photos of the members left out
of each gallery ("absent members"), strangers who look like the members.

Run: FACEGATE_WEIGHTS_DIR=../shared/models .venv/bin/python -m bench.identify_replay [--seeds 5]
"""

import argparse
import random
from pathlib import Path

import numpy as np

from core.errors import FaceGateError
from core.settings import get_settings
from services.evaluation.identification import _people
from services.evaluation.verification import subject_face
from services.faces.pipeline import FacePipeline
from services.faces.quality import QualityGate
from services.identity import enrollment
from services.identity.calibration import KnownStrangers, distance_of
from services.identity.templates import template_of

REPO = Path(__file__).resolve().parent.parent
LFW = REPO.parent / "shared" / "data" / "lfw" / "images"
CACHE = REPO / "bench" / "results" / "eval_identify_cache.npz"
ENROLL = 3
MEMBER_MIN_PHOTOS = ENROLL + 1  # the evaluator's protocol: probes are the photos after the enrolled ones


def analyse(out: Path) -> None:
    settings = get_settings()
    pipeline = FacePipeline(settings)
    pipeline.load()
    gate = QualityGate.from_settings(settings)
    members, strangers = _people(LFW, MEMBER_MIN_PHOTOS)
    rows: dict[str, list] = {"person": [], "role": [], "embedding": []}  # role: enrolled, probe
    work = [(n, i, p) for n, ps in members.items() for i, p in enumerate(ps)]
    work += [("", 0, p) for ps in strangers.values() for p in ps]
    for done, (name, i, path) in enumerate(work):
        faces, subject = subject_face(pipeline, path)
        if name and i < ENROLL:
            try:
                face = enrollment.gate_faces(gate, faces, largest=True)
            except FaceGateError:
                continue  # refused by the quality gate, as the service would
            role = "enrolled"
        elif subject is None:
            continue
        else:
            face, role = subject, "probe"
        rows["person"].append(name)
        rows["role"].append(role)
        rows["embedding"].append(face.embedding)
        if done % 200 == 0:
            print(f"{done}/{len(work)} photos", flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, person=np.array(rows["person"]), role=np.array(rows["role"]), embedding=np.array(rows["embedding"]))


def replay(cache: np.lib.npyio.NpzFile, chosen: list[str]) -> dict[str, float]:
    settings = get_settings()
    person, role, embedding = cache["person"], cache["role"], cache["embedding"].astype(np.float32)
    enrolled = (role == "enrolled") & np.isin(person, chosen)
    templates = np.array([template_of(embedding[enrolled & (person == name)]) for name in chosen])
    owners = np.searchsorted(chosen, person[enrolled])
    calibration = KnownStrangers.of(templates, embedding[enrolled], owners).calibration(len(chosen), settings)
    accept = calibration.score_for_fpir(settings.identify_fpir)

    probes = role == "probe"
    distances = distance_of(embedding[probes] @ templates.T)
    order = np.argsort(distances, axis=1)[:, :2]
    rows = np.arange(len(order))
    score = 2 * distances[rows, order[:, 0]] - distances[rows, order[:, 1]]
    who = person[probes]
    stranger, member = who == "", np.isin(who, chosen)
    absent = ~stranger & ~member
    right = member & (np.array(chosen)[order[:, 0]] == who)
    return {
        "accept": accept,
        "dir": float(np.mean((score <= accept)[member] & right[member])),
        "fpir": float(np.mean(score[stranger] <= accept)),
        "fpir_absent": float(np.mean(score[absent] <= accept)) if absent.any() else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", type=Path, default=CACHE)
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    if not args.cache.exists():
        analyse(args.cache)
    cache = np.load(args.cache)
    eligible = sorted(set(cache["person"][cache["role"] == "enrolled"]))
    print("members | seed | accept | DIR % | FPIR strangers % | FPIR absent members %")
    for size in (50, 100, 150, len(eligible)):
        for seed in range(args.seeds if size < len(eligible) else 1):
            chosen = sorted(random.Random(seed).sample(eligible, size))
            r = replay(cache, chosen)
            print(f"{size} | {seed} | {r['accept']:.4f} | {100 * r['dir']:.1f} | {100 * r['fpir']:.2f} | "
                  f"{100 * r['fpir_absent']:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
