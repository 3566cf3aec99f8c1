"""`eval-identify` replayed in numpy, to try calibrations in seconds (docs/identification.md, "Looser gap models").

Step 1 analyses every LFW photo once through the evaluator's own code (subject face, quality gate for the first 3
photos of each member, embedding) into bench/results/eval_identify_cache.npz; the slow step, reused when present.
Step 2 replays each gallery the way `services/evaluation/identification.py` runs it through the service: templates
(`templates.template_of`), known strangers, the service's `Calibration`, 2*d1 - d2 over the templates. With seed 0
it reproduces the service run's accept scores and DIR. It also measures FPIR on the photos of the members left out
of each gallery ("absent members"), strangers who look like the members.

--gap-weight W replays the score d1 - W (d2 - d1) with the calibration's simulated strangers scored the same way;
--mirror templates|both averages each enrolled face's (and with both, each probe's) embedding with that of its
mirrored crop, as the study's "mirrored" embeddings. --agreement-weight K builds the templates with another weight
than the service's (0: the plain mean; docs/identification.md, "Templates").

With --oracle it instead places each score's threshold with hindsight (the most lenient one that names at most
1% of the strangers, or of the absent members' photos) and reports the DIR it allows, for the service's score and
the other scores compared in docs/identification.md ("What a better score could give").

Run: FACEGATE_WEIGHTS_DIR=../shared/models .venv/bin/python -m bench.identify_replay [--seeds 5] [--oracle]
     [--gap-weight 1.5] [--mirror templates] [--agreement-weight 0]
"""

import argparse
import random
from pathlib import Path

import numpy as np

from core.errors import FaceGateError
from core.settings import get_settings
from services.evaluation.identification import _people
from services.evaluation.verification import subject_face
from services.faces.embedding import l2_normalise
from services.faces.pipeline import FacePipeline
from services.faces.quality import QualityGate
from services.identity import enrollment
from services.identity.calibration import KnownStrangers, distance_of
from services.identity.templates import AGREEMENT_WEIGHT, template_of

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
    rows: dict[str, list] = {"person": [], "role": [], "embedding": [], "mirror": []}  # role: enrolled, probe
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
        rows["mirror"].append(pipeline.embedder.predict(np.ascontiguousarray(face.crop[:, ::-1])[None])[0])
        if done % 200 == 0:
            print(f"{done}/{len(work)} photos", flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, **{name: np.array(values) for name, values in rows.items()})


def embeddings(cache: np.lib.npyio.NpzFile, mirror: str) -> tuple[np.ndarray, np.ndarray]:
    """(enrolled faces', probes') embeddings, each row the photo's own or averaged with its mirror's."""
    plain = cache["embedding"].astype(np.float32)
    mirrored = l2_normalise(plain + cache["mirror"]).astype(np.float32)
    return (plain if mirror == "none" else mirrored), (mirrored if mirror == "both" else plain)


def replay(
    cache: np.lib.npyio.NpzFile,
    chosen: list[str],
    gap_weight: float = 1.0,
    mirror: str = "none",
    agreement_weight: float = AGREEMENT_WEIGHT,
) -> dict[str, float]:
    settings = get_settings()
    person, role = cache["person"], cache["role"]
    enrolled_embedding, probe_embedding = embeddings(cache, mirror)
    enrolled = (role == "enrolled") & np.isin(person, chosen)
    templates = np.array(
        [template_of(enrolled_embedding[enrolled & (person == name)], agreement_weight) for name in chosen]
    )
    owners = np.searchsorted(chosen, person[enrolled])
    calibration = KnownStrangers.of(templates, enrolled_embedding[enrolled], owners).calibration(len(chosen), settings)
    if gap_weight == 1.0:
        accept = calibration.score_for_fpir(settings.identify_fpir)
    else:
        d1, gap = calibration.simulated_strangers()
        accept = float(np.quantile(d1 - gap_weight * gap, settings.identify_fpir))

    probes = role == "probe"
    distances = distance_of(probe_embedding[probes] @ templates.T)
    order = np.argsort(distances, axis=1)[:, :2]
    rows = np.arange(len(order))
    d1 = distances[rows, order[:, 0]]
    score = d1 - gap_weight * (distances[rows, order[:, 1]] - d1)
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


def _gap_score(weight: float, cohort: int = 1):
    """d1 - weight * (mean distance of the next `cohort` templates - d1); weight 1, cohort 1 is 2*d1 - d2."""
    return lambda d: d[:, 0] - weight * (d[:, 1 : 1 + cohort].mean(axis=1) - d[:, 0])


ORACLE_SCORES = {
    "2*d1 - d2 (the service)": _gap_score(1.0),
    "d1 - 0.75 gap": _gap_score(0.75),
    "d1 - 1.5 gap": _gap_score(1.5),
    "d1 - 2 gap": _gap_score(2.0),
    "d1 - (mean of next 2 - d1)": _gap_score(1.0, 2),
    "d1 - (mean of next 4 - d1)": _gap_score(1.0, 4),
    "d1 - 2 (mean of next 4 - d1)": _gap_score(2.0, 4),
    "d1 - (mean of next 9 - d1)": _gap_score(1.0, 9),
}
# 2*d1 - d2 after moving each template's distances by its hubness: how near its K closest known strangers (other
# members' enrolled faces) come, against the gallery's mean of that, times a weight.
HUBNESS = {"2*d1 - d2, hubness-normalised (K 10, weight 0.5)": (10, 0.5), "(K 20, weight 1.0)": (20, 1.0)}


def oracle(
    cache: np.lib.npyio.NpzFile, chosen: list[str], agreement_weight: float = AGREEMENT_WEIGHT
) -> dict[str, tuple[float, float]]:
    """Per score: DIR at the hindsight threshold naming <= 1% of the strangers, and of the absent members."""
    person, role, embedding = cache["person"], cache["role"], cache["embedding"].astype(np.float64)
    enrolled = (role == "enrolled") & np.isin(person, chosen)
    templates = np.array([template_of(embedding[enrolled & (person == name)], agreement_weight) for name in chosen])
    probes = role == "probe"
    distances = distance_of(embedding[probes] @ templates.T)
    who = person[probes]
    stranger, member = who == "", np.isin(who, chosen)
    absent = ~stranger & ~member
    own = person[enrolled][:, None] == np.array(chosen)[None, :]
    known = np.sort(np.where(own, np.inf, distance_of(embedding[enrolled] @ templates.T)), axis=0)

    def dir_at_one_percent(score: np.ndarray, right: np.ndarray, impostors: np.ndarray) -> float:
        if not impostors.any():  # the whole gallery: nobody absent
            return float("nan")
        lowest = np.sort(score[impostors])
        threshold = lowest[int(0.01 * len(lowest))]  # accept below it: at most 1% of these impostors
        return float(np.mean((score < threshold)[member] & right[member]))

    result = {}
    variants = [(name, f, None) for name, f in ORACLE_SCORES.items()]
    variants += [(name, _gap_score(1.0), hub) for name, hub in HUBNESS.items()]
    for name, score_of, hub in variants:
        d = distances
        if hub is not None:
            hubness = known[: hub[0]].mean(axis=0)
            d = distances - hub[1] * (hubness - hubness.mean())[None, :]
        order = np.argsort(d, axis=1)
        right = np.array(chosen)[order[:, 0]] == who
        score = score_of(np.take_along_axis(d, order, axis=1))
        result[name] = (dir_at_one_percent(score, right, stranger), dir_at_one_percent(score, right, absent))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", type=Path, default=CACHE)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--oracle", action="store_true", help="hindsight thresholds per score instead")
    parser.add_argument("--gap-weight", type=float, default=1.0, help="W in d1 - W (d2 - d1); the service's is 1")
    parser.add_argument("--mirror", choices=("none", "templates", "both"), default="none")
    parser.add_argument("--agreement-weight", type=float, default=AGREEMENT_WEIGHT, help="templates' k; 0: plain")
    args = parser.parse_args()
    if not args.cache.exists() or "mirror" not in np.load(args.cache):  # none yet, or made before the mirror
        analyse(args.cache)
    cache = np.load(args.cache)
    eligible = sorted(set(cache["person"][cache["role"] == "enrolled"]))
    if args.oracle:
        print("score | members | DIR % at <= 1% of strangers named | at <= 1% of absent members' photos named")
        for size in (100, 150, len(eligible)):
            runs = [oracle(cache, sorted(random.Random(seed).sample(eligible, size)), args.agreement_weight)
                    for seed in range(args.seeds if size < len(eligible) else 1)]  # fmt: skip
            for name in runs[0]:
                strangers, absent = (100 * np.mean([r[name][i] for r in runs]) for i in (0, 1))
                print(f"{name} | {size} | {strangers:.1f} | {absent:.1f}")
        return
    print("members | seed | accept | DIR % | FPIR strangers % | FPIR absent members %")
    for size in (50, 100, 150, len(eligible)):
        for seed in range(args.seeds if size < len(eligible) else 1):
            chosen = sorted(random.Random(seed).sample(eligible, size))
            r = replay(cache, chosen, args.gap_weight, args.mirror, args.agreement_weight)
            print(f"{size} | {seed} | {r['accept']:.4f} | {100 * r['dir']:.1f} | {100 * r['fpir']:.2f} | "
                  f"{100 * r['fpir_absent']:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
