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
import random
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np

from core.errors import FaceGateError
from core.settings import get_settings
from services.evaluation.verification import subject_face
from services.faces.images import IMAGE_SUFFIXES
from services.faces.pipeline import FacePipeline
from services.faces.quality import QualityGate
from services.identity import agreement, enrollment
from services.identity.calibration import Calibration, GapModel, KnownStrangers, consistent, distance_of, prior
from services.identity.templates import template_of

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


class Cache:
    def __init__(self, path: Path):
        data = np.load(path)
        self.person, self.index, self.gated = data["person"], data["index"], data["gated"]
        self.embedding = data["embedding"].astype(np.float64)
        self.names = sorted(set(self.person))
        self.photos = {p: list(np.where(self.person == p)[0]) for p in self.names}

    def gated_photos(self, person: str) -> list[int]:
        return [i for i in self.photos[person] if self.gated[i]]


def signup_study(cache: Cache) -> None:
    """The agreement check at verify's 1:1 lines (the prior's), on genuine and mixed signups and added faces."""
    settings = get_settings()
    rule = Calibration(1, prior(settings)).verify_rule(settings)
    rng = random.Random(0)
    people = {p: cache.gated_photos(p) for p in cache.names if cache.gated_photos(p)}
    multi = [p for p, v in people.items() if len(v) >= 3]
    e = cache.embedding

    def outcome(faces: list[int]) -> str:
        judged = agreement.among([e[i] for i in faces], rule)
        if any(f.agreement == agreement.Agreement.DISAGREES for f in judged):
            return "refused"
        return "held" if any(f.agreement == agreement.Agreement.BORDERLINE for f in judged) else "accepted"

    def added(face: int, template: np.ndarray) -> str:
        return {"disagrees": "refused", "borderline": "held", "agrees": "accepted"}[
            agreement.with_template(e[face], template, rule).agreement
        ]

    print(f"verify's lines: accept {rule.accept:.3f}, review {rule.review:.3f}")
    print("case | signups | accepted | held (a face stored disabled) | refused")
    cases = {
        "genuine, first 3 photos": [people[p][:3] for p in multi],
        "genuine, 3 random photos": [rng.sample(people[p], 3) for p in multi for _ in range(3)],
        "3 photos of 3 people": [[rng.choice(people[p]) for p in rng.sample(list(people), 3)] for _ in range(2000)],
        "2 of one person + 1 of another": [
            [*rng.sample(people[a], 2), rng.choice(people[rng.choice([p for p in people if p != a])])]
            for a in (rng.choice(multi) for _ in range(2000))
        ],
    }
    for name, signups in cases.items():
        counts = Counter(outcome(faces) for faces in signups)
        print(f"{name} | {len(signups)} | {counts['accepted']} | {counts['held']} | {counts['refused']}")
    planted = Counter(
        added(rng.choice(people[b]), template_of(e[people[a][:3]]))
        for a in multi
        for b in rng.sample([p for p in people if p != a], 10)
    )
    print(f"a stranger's photo added to a 3-photo member | {sum(planted.values())} | {planted['accepted']} | "
          f"{planted['held']} | {planted['refused']}")  # fmt: skip
    for k in (1, 3):
        genuine = Counter(
            added(i, template_of(e[people[a][:k]])) for a in people if len(people[a]) > k for i in people[a][k:]
        )
        print(f"a genuine photo added to a {k}-photo member | {sum(genuine.values())} | {genuine['accepted']} | "
              f"{genuine['held']} | {genuine['refused']}")  # fmt: skip


def gap_study(cache: Cache) -> None:
    """One-photo galleries: the calibration as it is (independent draws below GAP_MIN_FACES near faces) against a
    gap prior fitted on half of the people (1 photo each), evaluated on the other half: DIR, FPIR on strangers and
    on absent members (look-alikes), and DIR at a hindsight threshold (1% of strangers)."""
    settings = get_settings()
    e, person, index, names = cache.embedding, cache.person, cache.index, cache.names

    def first(p: str) -> list[int]:
        return [i for i in cache.photos[p] if index[i] < 3 and cache.gated[i]][:1]

    usable = [p for p in names if first(p)]
    train = set(random.Random(2).sample(usable, len(usable) // 2))
    members = [p for p in names if len(cache.photos[p]) >= 4 and first(p) and p not in train]
    strangers = [p for p in names if len(cache.photos[p]) < 4 and p not in train]

    def known(people: list[str]) -> tuple[np.ndarray, KnownStrangers]:
        faces = [first(p)[0] for p in people]
        templates = e[faces].astype(np.float32)
        return templates, KnownStrangers.of(templates, templates, np.arange(len(people)))

    _, trained = known(sorted(train))
    gap_prior = GapModel.fit(trained.nearest, trained.gap)
    print(f"gap prior from {len(train)} people: {gap_prior}")

    def run(chosen: list[str], use_prior: bool) -> tuple[float, ...]:
        templates, strangers_known = known(chosen)
        calibration = strangers_known.calibration(len(chosen), settings)
        if use_prior and calibration.gaps is None:
            calibration = replace(calibration, gaps=gap_prior)
        accept = calibration.score_for_fpir(settings.identify_fpir)
        probes = np.array(
            [i for i in range(len(person)) if (person[i] in chosen and index[i] >= 3) or person[i] not in chosen]
        )
        probes = probes[np.isin(person[probes], chosen + strangers + members)]
        d = distance_of(e[probes] @ templates.T)
        order = np.argsort(d, axis=1)[:, :2]
        rows = np.arange(len(order))
        score = 2 * d[rows, order[:, 0]] - d[rows, order[:, 1]]
        who = person[probes]
        stranger, member = np.isin(who, strangers), np.isin(who, chosen)
        absent = ~stranger & ~member
        right = member & (np.array(chosen)[order[:, 0]] == who)
        hindsight = np.sort(score[stranger])[int(0.01 * stranger.sum())]
        return (
            np.mean((score <= accept)[member] & right[member]),
            np.mean(score[stranger] <= accept),
            np.mean(score[absent] <= accept) if absent.any() else np.nan,
            np.mean((score < hindsight)[member] & right[member]),
        )

    print("members | calibration | DIR % | FPIR strangers % | FPIR absent members % | DIR at hindsight %")
    for size in (25, 50, len(members)):
        for use_prior in (False, True):
            runs = [run(sorted(random.Random(s).sample(members, size)), use_prior)
                    for s in range(5 if size < len(members) else 1)]  # fmt: skip
            m = 100 * np.nanmean(np.array(runs), axis=0)
            print(
                f"{size} | {'gap prior' if use_prior else 'as is'} | {m[0]:.1f} | {m[1]:.2f} | {m[2]:.2f} | {m[3]:.1f}"
            )


def visits_study(cache: Cache) -> None:
    """Everybody with 2+ photos signed up with one, regulars (5+ photos) visiting 3 times among the one-photo
    strangers, then a final visit: the learning thresholds (identify FPIR, signup-anchor FAR) compared, the
    calibration refitted after each round."""
    settings = get_settings()
    e, names = cache.embedding, cache.names
    members = [p for p in names if len(cache.photos[p]) >= 2 and cache.gated_photos(p)]
    regulars = [p for p in members if len(cache.photos[p]) >= 5]
    strangers = [p for p in names if len(cache.photos[p]) == 1]
    position = {p: j for j, p in enumerate(members)}

    def simulate(learn_fpir: float, learn_far: float, novelty: float, learn: bool, rounds: int = 3) -> dict:
        rng = random.Random(0)
        faces = {p: [cache.gated_photos(p)[0]] for p in members}
        signup = {p: faces[p][0] for p in members}
        templates = np.array([template_of(e[faces[p]]) for p in members])

        def calibrate() -> Calibration:
            every = np.concatenate([faces[p] for p in members])
            owners = np.concatenate([[position[p]] * len(faces[p]) for p in members])
            strangers_known = KnownStrangers.of(templates.astype(np.float32), e[every].astype(np.float32), owners)
            return strangers_known.calibration(len(members), settings)

        def nearest(i: int) -> tuple[int, float]:
            d = distance_of(e[i] @ templates.T)
            o = np.argsort(d)[:2]
            return int(o[0]), float(2 * d[o[0]] - d[o[1]])

        visiting = {p: [i for i in cache.photos[p] if i != signup[p]] for p in regulars}
        passing = rng.sample(strangers, len(strangers))
        calibration, learned, wrong = calibrate(), 0, 0
        for r in range(rounds):
            door = [(p, visiting[p][r]) for p in regulars] + [(None, cache.photos[q][0]) for q in passing[r::rounds]]
            accept, strict = (calibration.score_for_fpir(f) for f in (settings.identify_fpir, learn_fpir))
            anchor = float(calibration.impostors.distance_at(learn_far))
            for who, i in rng.sample(door, len(door)):
                j, score = nearest(i)
                p = members[j]
                if not learn or score > min(accept, strict) or not cache.gated[i]:
                    continue
                if distance_of(e[i] @ e[signup[p]]) > anchor or distance_of(np.max(e[faces[p]] @ e[i])) < novelty:
                    continue
                faces[p].append(i)
                templates[j] = template_of(e[faces[p]])
                learned, wrong = learned + 1, wrong + (who != p)
            calibration = calibrate()
        accept = calibration.score_for_fpir(settings.identify_fpir)
        final = [(p, *nearest(visiting[p][rounds])) for p in regulars]
        named = np.mean([s <= accept and members[j] == p for p, j, s in final])
        wrongly = np.mean([s <= accept and members[j] != p for p, j, s in final])
        fpir = np.mean([nearest(cache.photos[q][0])[1] <= accept for q in strangers])
        return {"named": named, "wrongly": wrongly, "fpir": fpir, "learned": learned, "wrongly_learned": wrong}

    print(f"{len(members)} one-photo members, {len(regulars)} regulars, {len(strangers)} strangers, 3 visits")
    print("learning | identify FPIR | anchor FAR | novelty | named % | wrongly named % | FPIR % | learned | wrongly")
    options = [(False, 0.001, 0.001, 0.3)] + [
        (True, f, a, n) for f in (0.001, 0.003, 0.01) for a in (0.001, 0.003) for n in (0.2, 0.3, 0.5)
    ]
    for learn, f, a, n in options:
        r = simulate(f, a, n, learn)
        print(f"{'on' if learn else 'off'} | {f} | {a} | {n} | {100 * r['named']:.1f} | {100 * r['wrongly']:.1f} | "
              f"{100 * r['fpir']:.2f} | {r['learned']} | {r['wrongly_learned']}")  # fmt: skip


def mixed_study(cache: Cache) -> None:
    """One member of three people's photos in a one-photo gallery, with and without leaving such members out of
    the calibration (calibration.consistent): the regulars named and the strangers named."""
    settings = get_settings()
    e = cache.embedding
    members = [p for p in cache.names if len(cache.photos[p]) >= 2 and cache.gated_photos(p)]
    regulars = [p for p in members if len(cache.photos[p]) >= 5]
    strangers = [p for p in cache.names if len(cache.photos[p]) == 1]

    def run(mixed: list[int] | None, protect: bool) -> tuple[float, float, float]:
        faces = [[cache.gated_photos(p)[0]] for p in members] + ([mixed] if mixed else [])
        templates = np.array([template_of(e[f]) for f in faces]).astype(np.float32)
        every = np.concatenate(faces)
        owners = np.concatenate([[j] * len(f) for j, f in enumerate(faces)])
        keep = np.ones(len(faces), dtype=bool)
        if protect:
            keep = consistent(templates, e[every].astype(np.float32), owners,
                              Calibration(1, prior(settings)).verify_rule(settings))  # fmt: skip
        kept = keep[owners]
        strangers_known = KnownStrangers.of(
            templates[keep], e[every][kept].astype(np.float32), (np.cumsum(keep) - 1)[owners[kept]]
        )
        accept = strangers_known.calibration(len(faces), settings).score_for_fpir(settings.identify_fpir)

        def nearest(i: int) -> tuple[int, float]:
            d = distance_of(e[i] @ templates.T)
            o = np.argsort(d)[:2]
            return int(o[0]), float(2 * d[o[0]] - d[o[1]])

        final = [(p, *nearest(cache.photos[p][4])) for p in regulars]
        named = np.mean([s <= accept and j < len(members) and members[j] == p for p, j, s in final])
        return named, np.mean([nearest(cache.photos[q][0])[1] <= accept for q in strangers]), accept

    rng = random.Random(5)
    print("mixed member | left out of the calibration | named % | FPIR % | accept score")
    named, fpir, accept = run(None, True)
    print(f"none | | {100 * named:.1f} | {100 * fpir:.2f} | {accept:.4f}")
    for _ in range(3):
        trio = rng.sample([p for p in cache.names if p not in regulars], 3)
        mixed = [(cache.gated_photos(p) or cache.photos[p])[0] for p in trio]
        for protect in (False, True):
            named, fpir, accept = run(mixed, protect)
            print(
                f"{', '.join(trio)} | {'yes' if protect else 'no'} | {100 * named:.1f} | {100 * fpir:.2f} | {accept:.4f}"
            )


STUDIES = {"signup": signup_study, "gap": gap_study, "visits": visits_study, "mixed": mixed_study}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("study", nargs="?", choices=["analyse", *STUDIES], default="analyse")
    parser.add_argument("--cache", type=Path, default=CACHE)
    args = parser.parse_args()
    if not args.cache.exists():
        analyse(args.cache)
    if args.study in STUDIES:
        STUDIES[args.study](Cache(args.cache))


if __name__ == "__main__":
    main()
