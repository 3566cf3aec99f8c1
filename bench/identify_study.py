"""FaceGate 1:N identify study: which score, and how to set its threshold from a target FPIR (docs/identification.md).

On LFW: open-set FNIR at FPIR 1% / 5% for several scores on member templates (plain and mirrored embeddings,
3 or 1 photos enrolled); thresholds estimated from gallery data alone against their target; the review band
between the 1% and 5% thresholds; 1:1 thresholds for a per-pair FAR target.

Run: FACEGATE_WEIGHTS_DIR=../shared/models .venv/bin/python -m bench.identify_study [--cache PATH] [--results PATH]
Step 1 (bench/lfw_embeddings.py) embeds every LFW image once through the service's pipeline (and its mirrored
crop) into bench/results/lfw_embeddings.npz, the slow step; an existing cache is reused. The rest is numpy only (a few
minutes) and writes every table to --results (default bench/results/identify_study.md).

Conventions: embeddings are unit vectors; d = Euclidean distance (0..2), s = 1 - d^2/2 = cosine similarity.
Lower score = more similar. A probe is "named" as the gallery member with the best score; it is accepted when
score < threshold. FPIR = stranger probes accepted (named as anyone); FNIR = genuine probes not accepted as
their own member (rejected, or named as someone else); DIR = 1 - FNIR.
"""

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np

from bench.lfw_embeddings import CACHE, LFW, REPO, build_cache
from core.settings import get_settings
from services.evaluation.verification import read_lfw_pairs, verification_report

RESULTS = REPO / "bench" / "results" / "identify_study.md"
SIZES = [50, 100, 150, "all"]
DRAWS = 10  # random member subsets per gallery size below "all"
SEED = 0
OUT_LINES: list[str] = []


def out(line: str = "") -> None:
    print(line, flush=True)
    OUT_LINES.append(line)


def table(header: list[str], rows: list[list]) -> None:
    out("| " + " | ".join(header) + " |")
    out("|" + "---|" * len(header))
    for r in rows:
        out("| " + " | ".join(str(c) for c in r) + " |")
    out()


def pct(x: float, nd: int = 1) -> str:
    return f"{100 * x:.{nd}f}"


# ---------------------------------------------------------------------------------------------------------------
# Geometry helpers
# ---------------------------------------------------------------------------------------------------------------
def l2n(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True).clip(min=1e-12)


def dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances between rows of two sets of unit vectors."""
    return np.sqrt(np.clip(2.0 - 2.0 * (a @ b.T), 0.0, None))


def d2s(d):
    return 1.0 - np.asarray(d) ** 2 / 2.0


def s2d(s):
    return np.sqrt(np.clip(2.0 - 2.0 * np.asarray(s), 0.0, None))


# ---------------------------------------------------------------------------------------------------------------
# Data: cache, identities, protocol
# ---------------------------------------------------------------------------------------------------------------
class Data:
    """Embeddings of all LFW images and the open-set protocol built on them.

    Identity columns: the 188 members (>= 4 photos) first, then the 32 people with exactly 3 photos (gallery
    padding). Enrollment = the first k photos (file-name order) of an identity; genuine probes = member photos
    from the 4th on (the same probes for k = 1 and k = 3); strangers = every photo of people with <= 2 photos."""

    def __init__(self, cache: Path):
        z = np.load(cache)
        self.files, self.person, self.found = z["files"], z["person"], z["found"]
        self.emb = {
            "plain": z["embedding"].astype(np.float64),
            "mirror": l2n(z["embedding"].astype(np.float64) + z["embedding_mirror"]),
        }
        self.det_score, self.face_size = z["detection_score"], z["face_size"]
        self.index = {f: i for i, f in enumerate(self.files)}
        photos = defaultdict(list)
        for i, p in enumerate(self.person):  # files are sorted, so each list is in file-name order
            photos[p].append(i)
        self.photos = dict(photos)
        self.members = sorted(p for p, v in photos.items() if len(v) >= 4)
        self.padding = sorted(p for p, v in photos.items() if len(v) == 3)
        self.stranger_people = sorted(p for p, v in photos.items() if len(v) <= 2)
        self.ids = self.members + self.padding
        self.n_members = len(self.members)
        self.col = {p: c for c, p in enumerate(self.ids)}
        # Images without a detected face are left out of every role (counted in the report).
        self.gen_rows = np.array([i for p in self.members for i in photos[p][3:] if self.found[i]])
        self.gen_col = np.array([self.col[self.person[i]] for i in self.gen_rows])
        self.str_rows = np.array([i for p in self.stranger_people for i in photos[p] if self.found[i]])
        self.mats = {}

    def enrolled(self, k: int) -> list[list[int]]:
        """Per identity column, the image rows enrolled: its first k photos that have a face."""
        return [[i for i in self.photos[p][:k] if self.found[i]] for p in self.ids]

    def matrices(self, emb: str, k: int) -> dict:
        """Distance matrices of every image to every identity, for one embedding type and enrollment size."""
        key = (emb, k)
        if key not in self.mats:
            e = self.emb[emb]
            enr = self.enrolled(k)
            templates = l2n(np.stack([e[r].mean(axis=0) for r in enr]))
            enr_rows = np.array([i for r in enr for i in r])
            enr_col = np.array([c for c, r in enumerate(enr) for _ in r])
            face_d = dist(e, e[enr_rows])
            starts = np.r_[0, np.cumsum([len(r) for r in enr])[:-1]]
            self.mats[key] = {
                "template": dist(e, templates),  # image -> identity template (normalised mean)
                "nn": np.minimum.reduceat(face_d, starts, axis=1),  # image -> nearest enrolled face of identity
                "tt": dist(templates, templates),
                "enr_rows": enr_rows,
                "enr_col": enr_col,
            }
        return self.mats[key]


def galleries(data: Data, size, draws: int = DRAWS, seed: int = SEED, pad: bool = False) -> list[np.ndarray]:
    """Gallery column subsets: random member subsets for a number, all members (+ padding) for "all"."""
    if size == "all":
        return [np.arange(len(data.ids) if pad else data.n_members)]
    rng = np.random.default_rng([seed, size])
    return [np.sort(rng.choice(data.n_members, size, replace=False)) for _ in range(draws)]


# ---------------------------------------------------------------------------------------------------------------
# Scores: each maps probe x gallery distances to (named position in the gallery, score; lower = more similar)
# ---------------------------------------------------------------------------------------------------------------
def top2(d: np.ndarray):
    part = np.argpartition(d, 1, axis=1)[:, :2]
    v = np.take_along_axis(d, part, axis=1)
    order = np.argsort(v, axis=1)
    part, v = np.take_along_axis(part, order, axis=1), np.take_along_axis(v, order, axis=1)
    return part[:, 0], v[:, 0], v[:, 1]


def score_d1(d, _ctx):
    pos, d1, _ = top2(d)
    return pos, d1


def score_ratio(d, _ctx):
    pos, d1, d2 = top2(d)
    return pos, d1 / d2


def score_combo(w):
    def f(d, _ctx):
        pos, d1, d2 = top2(d)
        return pos, d1 - w * (d2 - d1)

    return f


def score_gate(r):
    def f(d, _ctx):
        pos, d1, d2 = top2(d)
        return pos, np.where(d1 / d2 <= r, d1, np.inf)

    return f


def score_znorm(kind):
    """Per-member z-normalisation of the distance, cohort = the member's distances to the other templates
    ("tt") or to the enrolled faces of the other members ("faces")."""

    def f(d, ctx):
        mu, sd = ctx[f"z_{kind}"]
        z = (d - mu) / sd
        pos = np.argmin(z, axis=1)
        return pos, z[np.arange(len(z)), pos]

    f.needs_context = True
    return f


def score_tnorm(d, _ctx):
    """Probe-side normalisation: the nearest distance in units of the probe's own distances to the gallery."""
    pos, d1, _ = top2(d)
    return pos, (d1 - d.mean(axis=1)) / d.std(axis=1)


def gallery_context(m: dict, cols: np.ndarray) -> dict:
    """Per-member cohort statistics for z-norm, computed from gallery data only."""
    tt = m["tt"][np.ix_(cols, cols)].copy()
    np.fill_diagonal(tt, np.nan)
    in_gallery = np.isin(m["enr_col"], cols)
    rows, owner = m["enr_rows"][in_gallery], m["enr_col"][in_gallery]
    fd = m["template"][np.ix_(rows, cols)].copy()
    fd[owner[:, None] == cols[None, :]] = np.nan  # own template is not an impostor
    nearest = np.sort(np.where(np.isnan(fd), np.inf, fd), axis=0)[:OFFSET_K]
    return {
        "z_tt": (np.nanmean(tt, axis=0), np.nanstd(tt, axis=0)),
        "z_faces": (np.nanmean(fd, axis=0), np.nanstd(fd, axis=0)),
        "offset": nearest.mean(axis=0),
    }


OFFSET_K = 20


def score_offset(d, ctx):
    """Member-adaptive offset: d minus the mean distance of the member's template to its OFFSET_K nearest
    enrolled faces of other members (a template in a dense neighbourhood, a "hub", gets a stricter bar)."""
    z = d - ctx["offset"]
    pos = np.argmin(z, axis=1)
    return pos, z[np.arange(len(z)), pos]


score_offset.needs_context = True


def scored(m: dict, matrix: str, cols: np.ndarray, rows: np.ndarray, fn):
    d = m[matrix][np.ix_(rows, cols)]
    pos, s = fn(d, gallery_context(m, cols) if getattr(fn, "needs_context", False) else None)
    return cols[pos], s


def probe_sets(data: Data, cols: np.ndarray, extended: bool = False):
    """Genuine rows/true columns for members in the gallery; stranger rows (optionally + all photos of members
    not in the gallery, the "extended strangers")."""
    keep = np.isin(data.gen_col, cols)
    strangers = data.str_rows
    if extended:
        absent = [p for c, p in enumerate(data.members) if c not in set(cols.tolist())]
        strangers = np.array([i for p in absent for i in data.photos[p] if data.found[i]], dtype=int)
    return data.gen_rows[keep], data.gen_col[keep], strangers


# ---------------------------------------------------------------------------------------------------------------
# Step 2: oracle open-set comparison
# ---------------------------------------------------------------------------------------------------------------
def oracle(s_str, s_gen, correct, alpha):
    """Threshold chosen on the strangers (at most floor(alpha * n) accepted): returns FNIR."""
    s = np.sort(s_str)
    k = int(np.floor(alpha * len(s)))
    t = s[k] if k < len(s) else np.inf
    return 1.0 - np.mean(correct & (s_gen < t))


SCORES = {
    "a) nearest face d": ("nn", score_d1),
    "b) template d1": ("template", score_d1),
    "c) template d1/d2": ("template", score_ratio),
    "c) d1-0.25(d2-d1)": ("template", score_combo(0.25)),
    "c) d1-0.5(d2-d1)": ("template", score_combo(0.5)),
    "c) d1-1.0(d2-d1)": ("template", score_combo(1.0)),
    "c) d1, gate d1/d2<=0.95": ("template", score_gate(0.95)),
    "c) d1, gate d1/d2<=0.90": ("template", score_gate(0.90)),
    "c) d1, gate d1/d2<=0.85": ("template", score_gate(0.85)),
    "e) z-norm d1 (cohort=templates)": ("template", score_znorm("tt")),
    "e) z-norm d1 (cohort=faces)": ("template", score_znorm("faces")),
    "e) t-norm d1 (probe cohort)": ("template", score_tnorm),
    f"e) d1 - member offset ({OFFSET_K} nearest impostor faces)": ("template", score_offset),
}


def step2(data: Data) -> None:
    out("## Step 2: open-set identification, oracle thresholds (chosen on the strangers)")
    out()
    out(
        f"Gallery members: {data.n_members} people with >= 4 photos; genuine probes {len(data.gen_rows)} "
        f"(their 4th photo on); strangers {len(data.str_rows)} photos of {len(data.stranger_people)} people with "
        f"<= 2 photos. Sizes 50/100/150: mean over {DRAWS} random member subsets; 'all' = all "
        f"{data.n_members} members; 'all+pad' adds the {len(data.padding)} people with exactly 3 photos "
        f"(enrolled, no genuine probes). At FPIR 1% the oracle allows floor(0.01*{len(data.str_rows)}) = "
        f"{int(0.01 * len(data.str_rows))} stranger accepts, so one stranger = "
        f"{100 / len(data.str_rows):.2f} points of FPIR."
    )
    out()
    sizes = SIZES + ["all+pad"]
    for k in (3, 1):
        for emb in ("plain", "mirror"):
            m = data.matrices(emb, k)
            rows_out = []
            for name, (matrix, fn) in SCORES.items():
                cells = []
                for size in sizes:
                    res = []
                    for cols in galleries(data, "all" if size == "all+pad" else size, pad=size == "all+pad"):
                        g_rows, g_col, s_rows = probe_sets(data, cols)
                        named_g, s_g = scored(m, matrix, cols, g_rows, fn)
                        _, s_s = scored(m, matrix, cols, s_rows, fn)
                        correct = named_g == g_col
                        res.append([oracle(s_s, s_g, correct, a) for a in (0.01, 0.05)] + [1 - correct.mean()])
                    res = np.mean(res, axis=0)
                    cells.append(f"{pct(res[0])} / {pct(res[1])}")
                    if size == "all":
                        rank1 = res[2]
                rows_out.append([name] + cells + [pct(rank1)])
            out(f"### {k} photo(s) enrolled, {emb} embeddings: FNIR % at FPIR 1% / 5%")
            out()
            table(["score"] + [str(s) for s in sizes] + ["closed-set rank-1 error % (all)"], rows_out)
    step2_extended(data)


def step2_extended(data: Data) -> None:
    """The same oracle with a bigger stranger pool: the strangers plus every photo of the members left out of
    the drawn gallery (1,300 / 800 / 370 extra probes at 50 / 100 / 150; they come in clusters of ~10 photos
    of one person, so they are not independent)."""
    out(
        "### Bigger stranger pool (strangers + all photos of members not in the drawn gallery), 3 photos "
        "enrolled: FNIR % at FPIR 1% / 5%"
    )
    out()
    rows_out = []
    for emb in ("plain", "mirror"):
        m = data.matrices(emb, 3)
        for name, (matrix, fn) in SCORES.items():
            cells = []
            for size in (50, 100, 150):
                res = []
                for cols in galleries(data, size):
                    g_rows, g_col, s_rows = probe_sets(data, cols)
                    _, _, x_rows = probe_sets(data, cols, extended=True)
                    named_g, s_g = scored(m, matrix, cols, g_rows, fn)
                    _, s_s = scored(m, matrix, cols, np.concatenate([s_rows, x_rows]), fn)
                    res.append([oracle(s_s, s_g, named_g == g_col, a) for a in (0.01, 0.05)])
                res = np.mean(res, axis=0)
                cells.append(f"{pct(res[0])} / {pct(res[1])}")
            rows_out.append([f"{emb}: {name}"] + cells)
    table(["score", "50", "100", "150"], rows_out)


def step2_verification(data: Data, pairs_file: Path) -> None:
    out("## Verification: LFW pairs.txt fold 1 (600 pairs), plain vs mirrored embeddings")
    out()
    pairs = read_lfw_pairs(pairs_file, [1])
    rows = []
    for emb in ("plain", "mirror"):
        e = data.emb[emb]
        embs = {str(f): e[i] for i, f in enumerate(data.files) if data.found[i]}
        missed = sorted(({p.left for p in pairs} | {p.right for p in pairs}) - set(embs))
        r = verification_report(pairs, embs, missed, threshold=1.05)
        rows.append(
            [
                emb,
                f"{pct(r.cv_accuracy, 2)} ± {pct(r.cv_accuracy_std, 2)}",
                f"{r.best_threshold:.3f}",
                f"{pct(r.accuracy, 2)}",
                f"{r.false_accept_rate * 300:.0f}/300",
                f"{r.false_reject_rate * 300:.0f}/300",
                f"{r.strict_threshold:.2f}",
                f"{r.mean_distance_same:.3f} / {r.mean_distance_different:.3f}",
                len(missed),
            ]
        )
    table(
        [
            "embedding",
            "10-fold acc %",
            "best thr",
            "acc % @1.05",
            "FA @1.05",
            "FR @1.05",
            "strict thr",
            "mean d same / diff",
            "no face",
        ],
        rows,
    )


# ---------------------------------------------------------------------------------------------------------------
# Step 3: calibration of the threshold from gallery data only
# ---------------------------------------------------------------------------------------------------------------
_A = [
    -3.969683028665376e01,
    2.209460984245205e02,
    -2.759285104469687e02,
    1.383577518672690e02,
    -3.066479806614716e01,
    2.506628277459239e00,
]
_B = [-5.447609879822406e01, 1.615858368580409e02, -1.556989798598866e02, 6.680131188771972e01, -1.328068155288572e01]
_C = [
    -7.784894002430293e-03,
    -3.223964580411365e-01,
    -2.400758277161838e00,
    -2.549732539343734e00,
    4.374664141464968e00,
    2.938163982698783e00,
]
_D = [7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00, 3.754408661907416e00]


def z_upper(q) -> np.ndarray:
    """z with P(Z > z) = q for a standard normal Z, vectorised (Acklam's approximation, rel. error < 1.2e-9)."""
    q = np.clip(np.asarray(q, dtype=np.float64), 1e-300, 1 - 1e-16)
    p = np.minimum(q, 1 - q)  # work in the lower half, then mirror
    z = np.empty_like(p)
    low = p < 0.02425
    r = np.sqrt(-2 * np.log(p[low]))
    z[low] = (((((_C[0] * r + _C[1]) * r + _C[2]) * r + _C[3]) * r + _C[4]) * r + _C[5]) / (
        (((_D[0] * r + _D[1]) * r + _D[2]) * r + _D[3]) * r + 1
    )
    x = p[~low] - 0.5
    r = x * x
    z[~low] = (
        (((((_A[0] * r + _A[1]) * r + _A[2]) * r + _A[3]) * r + _A[4]) * r + _A[5])
        * x
        / (((((_B[0] * r + _B[1]) * r + _B[2]) * r + _B[3]) * r + _B[4]) * r + 1)
    )
    # z is now the lower-tail quantile of p; the upper-tail quantile of q is -z where q <= 0.5
    return np.where(q <= 0.5, -z, z)


def per_pair_rate(target: float, n: int) -> float:
    """Per-(probe, member) false-match rate p that gives FPIR = target over n independent members."""
    return 1.0 - (1.0 - target) ** (1.0 / n)


def impostor_distances(m: dict, cols: np.ndarray) -> np.ndarray:
    """F: distances of every enrolled face of member A to the templates of every other gallery member B."""
    in_gallery = np.isin(m["enr_col"], cols)
    rows, owner = m["enr_rows"][in_gallery], m["enr_col"][in_gallery]
    d = m["template"][np.ix_(rows, cols)]
    return d[owner[:, None] != cols[None, :]]


def fit_normal(sims: np.ndarray):
    return float(np.mean(sims)), float(np.std(sims))


def fit_tail_normal(sims: np.ndarray, tail: float = 0.05):
    """Normal fitted to the upper tail only: least squares on the normal Q-Q plot of the top `tail` share of the
    similarities. Returns (a, b): the tail follows s = a + b * z, z the standard normal quantile."""
    s = np.sort(sims)[::-1]
    n = max(int(len(s) * tail), 10)
    z = z_upper((np.arange(n) + 0.5) / len(s))
    b, a = np.polyfit(z, s[:n], 1)
    return float(a), float(b)


def fit_exp_tail(sims: np.ndarray, tail: float = 0.01):
    """Exponential (GPD shape 0) tail above the (1 - tail) quantile u: P(S > s) = tail * exp(-(s - u) / beta)."""
    u = float(np.quantile(sims, 1 - tail))
    return u, float(np.mean(sims[sims >= u] - u))  # >=: with 1-photo templates every pair appears twice


class ImpostorModel:
    """Per-pair impostor cosine similarity S, as a quantile function of the upper-tail probability q = P(S > s):
    the empirical distribution of `bulk`, with the part above its (1 - tail) quantile replaced by a fitted tail
    ("normal": s = a + b z(q); "exp": s = u + beta ln(tail / q)); kind "normal" with no bulk is a plain normal."""

    def __init__(self, bulk=None, kind: str = "empirical", params=(), tail: float = 1.0):
        self.bulk = None if bulk is None else np.sort(bulk)
        self.kind, self.params, self.tail = kind, params, tail

    def sim(self, q: np.ndarray) -> np.ndarray:
        q = np.asarray(q, dtype=np.float64)
        if self.bulk is not None:
            n = len(self.bulk)
            s = np.interp(1 - q, (np.arange(n) + 0.5) / n, self.bulk)
        else:
            s = np.empty_like(q)
        in_tail = q < self.tail if self.bulk is not None else np.ones(q.shape, bool)
        if self.kind == "normal":
            a, b = self.params
            s = np.where(in_tail, a + b * z_upper(q), s)
        elif self.kind == "exp":
            u, beta = self.params
            s = np.where(in_tail, u + beta * np.log(self.tail / np.maximum(q, 1e-300)), s)
        return np.clip(s, -1.0, 1.0)  # an extrapolated tail may run past a cosine similarity of 1


# Top-two order statistics of n iid uniforms, as upper-tail probabilities (q1 < q2), for the Monte-Carlo
# thresholds of scores that use the second-nearest template too. Common random numbers for every estimator.
MC_SAMPLES = 200_000
_MC = {}


def top2_uniforms(n: int):
    if n not in _MC:
        rng = np.random.default_rng([SEED, n])
        w1, w2 = rng.random(MC_SAMPLES), rng.random(MC_SAMPLES)
        q1 = -np.expm1(np.log(w1) / n)  # 1 - max of n uniforms
        r = -np.expm1(np.log(w2) / (n - 1))  # the next one below it, relative to the max
        _MC[n] = (q1, q1 + r - q1 * r)
    return _MC[n]


# Scores calibrated in step 3: function of (nearest, second-nearest template distance).
CAL_SCORES = {
    "b) template d1": (score_d1, lambda d1, d2: d1),
    "c) template 2*d1 - d2": (score_combo(1.0), lambda d1, d2: 2 * d1 - d2),
    "c) template d1/d2": (score_ratio, lambda d1, d2: d1 / np.maximum(d2, 1e-9)),
}


def model_threshold(model: ImpostorModel, n: int, target: float, f2) -> float:
    """Threshold (accept if score < t) giving FPIR = target for a stranger whose n per-member similarities are
    independent draws from `model`: exact for d1, Monte Carlo on the top-two order statistics otherwise."""
    p = per_pair_rate(target, n)
    if f2 is CAL_SCORES["b) template d1"][1]:
        return float(s2d(model.sim(np.array([p]))[0]))
    q1, q2 = top2_uniforms(n)
    return float(np.quantile(f2(s2d(model.sim(q1)), s2d(model.sim(q2))), target))


def loo_scores(m: dict, cols: np.ndarray, fn) -> np.ndarray:
    """Each enrolled face of a gallery member, scored against the gallery without that member."""
    res = []
    for j, c in enumerate(cols):
        rows = m["enr_rows"][m["enr_col"] == c]
        res.append(scored(m, "template", np.delete(cols, j), rows, fn)[1])
    return np.concatenate(res)


def lower_tail_quantile(x: np.ndarray, target: float, tail: float = 0.2) -> float:
    """The target quantile of x from a normal fitted (Q-Q least squares) to its lowest `tail` share."""
    s = np.sort(x)
    n = max(int(len(s) * tail), 5)
    z = -z_upper((np.arange(n) + 0.5) / len(s))
    b, a = np.polyfit(z, s[:n], 1)
    return float(a - b * z_upper(np.array([target]))[0])


class Prior:
    """Per-pair impostor similarities face -> k-photo template, fitted once on LFW: the template (first k photos)
    of every person with >= k photos against every photo of every other person. clean=True keeps only people
    with >= 3 photos on both sides, so the strangers (<= 2 photos) stay unseen and can test it."""

    def __init__(self, data: Data, emb: str, k: int, clean: bool):
        e = data.emb[emb]
        people = [p for p, v in data.photos.items() if len(v) >= (3 if clean else k)]
        templates = l2n(np.stack([e[[i for i in data.photos[p][:k] if data.found[i]]].mean(axis=0) for p in people]))
        face_people = people if clean else list(data.photos)
        rows = np.array([i for p in face_people for i in data.photos[p] if data.found[i]])
        owner = np.array([data.person[i] for i in rows])
        s = (e[rows] @ templates.T)[owner[:, None] != np.array(people)[None, :]]
        self.sims, self.n_pairs = s, len(s)
        self.normal, self.tailnormal, self.exp = fit_normal(s), fit_tail_normal(s), fit_exp_tail(s)


def blend(prior_params, gallery_params, n: int, n0: float):
    """Parameters shrunk towards the prior: weight n / (n + n0) on the gallery's own fit (n = members)."""
    w = n / (n + n0)
    return tuple(w * g + (1 - w) * p for g, p in zip(gallery_params, prior_params, strict=True))


N0 = 50.0  # prior weight, in members


def estimators(m: dict, cols: np.ndarray, prior: Prior, score: str, targets):
    """Every estimator's threshold for one gallery, score and list of FPIR targets: {name: [t per target]}."""
    fn, f2 = CAL_SCORES[score]
    n = len(cols)
    sims = d2s(impostor_distances(m, cols))
    gt = fit_tail_normal(sims)
    models = {
        "i) per-pair empirical": ImpostorModel(sims),
        "ii) per-pair normal fit": ImpostorModel(None, "normal", fit_normal(sims)),
        "ii) per-pair tail-normal fit (top 5%)": ImpostorModel(sims, "normal", gt, 0.05),
        "ii) per-pair exponential tail (top 1%)": ImpostorModel(sims, "exp", fit_exp_tail(sims), 0.01),
        "iv) prior only, normal fit": ImpostorModel(None, "normal", prior.normal),
        "iv) prior only, tail-normal": ImpostorModel(prior.sims, "normal", prior.tailnormal, 0.05),
        f"iv) prior+gallery tail-normal (n0={N0:g})": ImpostorModel(
            sims, "normal", blend(prior.tailnormal, gt, n, N0), 0.05
        ),
    }
    res = {name: [model_threshold(mod, n, t, f2) for t in targets] for name, mod in models.items()}
    loo = loo_scores(m, cols, fn)
    res["iii) leave-one-member-out, empirical"] = [float(np.quantile(loo, t)) for t in targets]
    res["iii) leave-one-member-out, lower-tail normal fit"] = [lower_tail_quantile(loo, t) for t in targets]
    order = [
        "i)",
        "ii) per-pair normal",
        "ii) per-pair tail",
        "ii) per-pair exp",
        "iii) leave-one-member-out, e",
        "iii) leave-one-member-out, l",
        "iv) prior only, n",
        "iv) prior only, t",
        "iv) prior+",
    ]
    return {k: res[k] for o in order for k in res if k.startswith(o)}


CAL_SIZES = (10, 20, 50, 100, 150, "all")
TARGETS = (0.01, 0.05)


def calibration_runs(data: Data, emb: str, k: int, prior: Prior, score: str, sizes=CAL_SIZES):
    """For each size and draw: every estimator's thresholds, and the scores of genuine / stranger / extended
    stranger probes, kept so that the review band can reuse them."""
    m = data.matrices(emb, k)
    fn = CAL_SCORES[score][0]
    runs = defaultdict(list)
    for size in sizes:
        for cols in galleries(data, size):
            g_rows, g_col, s_rows = probe_sets(data, cols)
            _, _, x_rows = probe_sets(data, cols, extended=True)
            named_g, s_g = scored(m, "template", cols, g_rows, fn)
            s_s = scored(m, "template", cols, s_rows, fn)[1]
            s_x = scored(m, "template", cols, x_rows, fn)[1] if len(x_rows) else None
            runs[size].append(
                {
                    "t": estimators(m, cols, prior, score, TARGETS),
                    "gen": s_g,
                    "correct": named_g == g_col,
                    "str": s_s,
                    "ext": s_x,
                }
            )
    return runs


def calibration_table(runs, target_index: int, sizes=CAL_SIZES) -> None:
    rows_out = []
    for est in runs[sizes[0]][0]["t"]:
        cells = []
        for size in sizes:
            t = np.array([r["t"][est][target_index] for r in runs[size]])
            fpir = np.array([np.mean(r["str"] < ti) for r, ti in zip(runs[size], t, strict=True)])
            ext = [np.mean(r["ext"] < ti) for r, ti in zip(runs[size], t, strict=True) if r["ext"] is not None]
            dir_ = np.mean([np.mean(r["correct"] & (r["gen"] < ti)) for r, ti in zip(runs[size], t, strict=True)])
            cells.append(
                f"{t.mean():.3f}: {pct(fpir.mean(), 2)} ({pct(fpir.max())}) / "
                f"{pct(np.mean(ext), 2) if ext else '-'} / {pct(dir_)}"
            )
        rows_out.append([est] + cells)
    table(["estimator"] + [str(s) for s in sizes], rows_out)


def step3(data: Data) -> tuple[dict, dict]:
    out("## Step 3: calibration: threshold from gallery data only (mirrored embeddings, 3 photos enrolled)")
    out()
    priors = {}
    for k in (3, 1):
        for clean in (False, True):
            pr = priors[(k, clean)] = Prior(data, "mirror", k, clean)
            (mu, sd), (a, b), (u, beta) = pr.normal, pr.tailnormal, pr.exp
            out(
                f"- Prior, {k}-photo templates, {'clean (people with >= 3 photos only)' if clean else 'all LFW'}: "
                f"{pr.n_pairs} impostor face->template pairs; cosine similarity: normal fit mean {mu:.4f} "
                f"sd {sd:.4f}; upper-tail normal (top 5%, s = a + b z) a {a:.4f} b {b:.4f}; exponential tail "
                f"above u = {u:.4f} (99th pct) beta {beta:.4f}"
            )
    out()
    out(
        "The tables use the clean prior, so the strangers have not been seen by it. Cell = mean threshold: "
        "FPIR on strangers % (worst draw %) / FPIR on extended strangers % (strangers are the brief's; extended = "
        "photos of members left out of the drawn gallery, clustered by person) / DIR %. 10 draws per size "
        "except 'all'. Thresholds of ratio-type scores from the per-pair models (i, ii, iv) are Monte Carlo: "
        "the two best of N independent draws from the per-pair model. Prior blend weight N/(N+50)."
    )
    out()
    all_runs = {}
    for score in CAL_SCORES:
        runs = all_runs[score] = calibration_runs(data, "mirror", 3, priors[(3, True)], score)
        for ti, target in enumerate(TARGETS):
            out(f"### {score}: target FPIR {pct(target, 0)}%")
            out()
            calibration_table(runs, ti)
    return all_runs, priors


def review_band(runs, est: str, title: str, sizes=CAL_SIZES) -> None:
    """Share of probes between the 1% and the 5% thresholds of one estimator."""
    out(f"### Review band: {title}, estimator '{est}'")
    out()
    rows_out = []
    for size in sizes:
        acc_g, band_g, acc_s, band_s, band_wrong, t1s, t5s = [], [], [], [], [], [], []
        for r in runs[size]:
            t1, t5 = r["t"][est]
            t1s.append(t1), t5s.append(t5)
            g, c, s = r["gen"], r["correct"], r["str"]
            acc_g.append(np.mean(c & (g < t1)))
            band_g.append(np.mean(c & (g >= t1) & (g < t5)))
            band_wrong.append(np.mean(~c & (g < t5)))
            acc_s.append(np.mean(s < t1))
            band_s.append(np.mean((s >= t1) & (s < t5)))
        rows_out.append(
            [
                size,
                f"{np.mean(t1s):.3f} / {np.mean(t5s):.3f}",
                pct(np.mean(acc_g)),
                pct(np.mean(band_g)),
                pct(np.mean(band_wrong), 2),
                pct(np.mean(acc_s), 2),
                pct(np.mean(band_s), 2),
            ]
        )
    table(
        [
            "gallery",
            "t(1%) / t(5%)",
            "genuine accepted (DIR) %",
            "genuine in band (right name) %",
            "genuine wrong name below t(5%) %",
            "strangers accepted %",
            "strangers in band %",
        ],
        rows_out,
    )


def one_photo_check(data: Data, est: str, score: str) -> None:
    """The recommended score and estimator with 1-photo templates (prior refitted on 1-photo templates)."""
    out(f"### 1 photo enrolled: {score}, estimator '{est}' (clean 1-photo prior)")
    out()
    runs = calibration_runs(data, "mirror", 1, Prior(data, "mirror", 1, clean=True), score)
    for ti, target in enumerate(TARGETS):
        rows_out = []
        for size in CAL_SIZES:
            t = np.array([r["t"][est][ti] for r in runs[size]])
            fpir = [np.mean(r["str"] < x) for r, x in zip(runs[size], t, strict=True)]
            ext = [np.mean(r["ext"] < x) for r, x in zip(runs[size], t, strict=True) if r["ext"] is not None]
            dir_ = [np.mean(r["correct"] & (r["gen"] < x)) for r, x in zip(runs[size], t, strict=True)]
            rows_out.append(
                [
                    size,
                    f"{t.mean():.3f}",
                    f"{pct(np.mean(fpir), 2)} ({pct(np.max(fpir))})",
                    pct(np.mean(ext), 2) if ext else "-",
                    pct(np.mean(dir_)),
                ]
            )
        out(f"Target FPIR {pct(target, 0)}%:")
        out()
        table(["gallery", "threshold", "FPIR strangers % (worst)", "FPIR extended %", "DIR %"], rows_out)


def shipping_table(prior: Prior) -> None:
    """Thresholds the all-LFW prior alone gives, by gallery size: what a service would start from."""
    out("### Thresholds from the all-LFW prior alone (3-photo mirrored templates), by gallery size N")
    out()
    model = ImpostorModel(prior.sims, "normal", prior.tailnormal, 0.05)
    rows_out = []
    for n in (2, 5, 10, 20, 50, 100, 188, 500, 1000, 5000):
        rows_out.append(
            [n]
            + [
                f"{model_threshold(model, n, t, CAL_SCORES[sc][1]):.3f}"
                for sc in ("b) template d1", "c) template 2*d1 - d2")
                for t in TARGETS
            ]
        )
    table(["N", "d1 @1%", "d1 @5%", "2*d1-d2 @1%", "2*d1-d2 @5%"], rows_out)


def verification_thresholds(data: Data, prior: Prior, pairs_file: Path) -> None:
    """1:1: per-pair impostor quantiles for a target false-accept rate, against the current fixed 1.05."""
    out("## 1:1 verification thresholds from the per-pair impostor distribution (all 188 members, 3 photos)")
    out()
    out(
        "Measured FAR = share of (stranger photo, member) pairs accepted (437 x 188 = 82,156 pairs); TAR = share "
        "of genuine probes accepted against their own member (1,213). 'nearest face' = what verify does today "
        "(the member's nearest enrolled face, plain embeddings); 'template' = mirrored template. LFW fold-1 "
        "pairs are single photo vs single photo (plain), FA / FR of the 300 + 300."
    )
    out()
    pairs = read_lfw_pairs(pairs_file, [1])
    same = np.array([p.same for p in pairs])
    rows_out = []
    cols = np.arange(data.n_members)
    for label, emb, matrix in (("nearest face, plain", "plain", "nn"), ("template, mirror", "mirror", "template")):
        m = data.matrices(emb, 3)
        in_g = np.isin(m["enr_col"], cols)
        rows, owner = m["enr_rows"][in_g], m["enr_col"][in_g]
        F = m[matrix][np.ix_(rows, cols)][owner[:, None] != cols[None, :]]
        sims = d2s(F)
        models = {
            "i) empirical": ImpostorModel(sims),
            "ii) tail-normal": ImpostorModel(sims, "normal", fit_tail_normal(sims), 0.05),
            "ii) normal": ImpostorModel(None, "normal", fit_normal(sims)),
        }
        if matrix == "template":
            models["iv) all-LFW prior, tail-normal"] = ImpostorModel(prior.sims, "normal", prior.tailnormal, 0.05)
        S = m[matrix][np.ix_(data.str_rows, cols)]
        G = m[matrix][data.gen_rows, data.gen_col]
        e = data.emb[emb]
        pd = np.array([np.linalg.norm(e[data.index[p.left]] - e[data.index[p.right]]) for p in pairs])
        cands = [
            (f"{name} @ FAR {far:g}", float(s2d(mod.sim(np.array([far]))[0])))
            for far in (0.001, 0.003)
            for name, mod in models.items()
        ]
        for name, t in cands + [("current fixed", 1.05)]:
            rows_out.append(
                [
                    label,
                    name,
                    f"{t:.3f}",
                    pct(np.mean(S < t), 3),
                    pct(np.mean(G < t)),
                    f"{int(np.sum((pd < t) & ~same))} / {int(np.sum((pd >= t) & same))}" if emb == "plain" else "-",
                ]
            )
    table(["matching", "threshold from", "threshold", "measured FAR %", "TAR %", "LFW pairs FA / FR"], rows_out)


def diagnostics(data: Data) -> None:
    """Who the closest strangers are, and whether the gallery's impostor pairs look like the strangers'."""
    m = data.matrices("mirror", 3)
    cols = np.arange(data.n_members)
    out("## Diagnostics (mirrored templates, 3 photos)")
    out()
    out("### The 10 strangers closest to a member template (all 188 members)")
    out()
    pos, d1, d2 = top2(m["template"][np.ix_(data.str_rows, cols)])
    rows_out = [
        [data.files[data.str_rows[j]], data.ids[pos[j]], f"{d1[j]:.3f}", f"{d2[j]:.3f}", f"{2 * d1[j] - d2[j]:.3f}"]
        for j in np.argsort(d1)[:10]
    ]
    table(["stranger photo", "nearest member", "d1", "d2", "2*d1-d2"], rows_out)
    out("### Per-pair impostor rate P(d < t) x 1e4: gallery pairs F vs the probes' pairs (mean of draws)")
    out()
    rows_out = []
    for size in (50, 150, "all"):
        acc = []
        for c in galleries(data, size):
            _, _, s_rows = probe_sets(data, c)
            _, _, x_rows = probe_sets(data, c, extended=True)
            F = impostor_distances(m, c)
            S = m["template"][np.ix_(s_rows, c)].ravel()
            X = m["template"][np.ix_(x_rows, c)].ravel() if len(x_rows) else None
            acc.append(
                [[np.mean(F < t), np.mean(S < t), np.mean(X < t) if X is not None else np.nan] for t in (0.7, 0.8, 0.9)]
            )
        a = np.mean(acc, axis=0) * 1e4
        for t, r in zip((0.7, 0.8, 0.9), a, strict=True):
            rows_out.append([size, t, f"{r[0]:.2f}", f"{r[1]:.2f}", "-" if np.isnan(r[2]) else f"{r[2]:.2f}"])
    table(["gallery", "t", "F (enrolled faces vs other templates)", "strangers", "extended strangers"], rows_out)


# ---------------------------------------------------------------------------------------------------------------
# Step 4: the gap to the second-nearest, with the service's own calibration classes (plain embeddings)
# ---------------------------------------------------------------------------------------------------------------
def known_strangers_of(m: dict, cols: np.ndarray):
    """What services.identity.calibration.known_strangers reads from the database: each enrolled face against
    the other gallery members' templates (per-pair similarities; nearest distance d1 and gap d2 - d1)."""
    in_gallery = np.isin(m["enr_col"], cols)
    d = m["template"][np.ix_(m["enr_rows"][in_gallery], cols)].copy()
    own = m["enr_col"][in_gallery][:, None] == cols[None, :]
    sims = d2s(d[~own])
    d[own] = np.inf
    _, d1, d2 = top2(d)
    return sims, d1, d2 - d1


def step4_gap(data: Data) -> None:
    from services.identity.calibration import Calibration, GapModel, ImpostorScores

    settings = get_settings()
    prior = ImpostorScores(settings.prior_impostor_a, settings.prior_impostor_b)
    out("## Step 4: the gap to the second-nearest (plain embeddings, the service's calibration classes)")
    out()
    out(
        "2*d1 - d2 = d1 - gap. The service draws a stranger's d1 as the best of N per-pair impostor draws (tail-"
        "normal shrunk to the prior); the gap either as the second best of the N draws taken as independent "
        "(before) or from the line gap = alpha + beta*d1 + sigma*z fitted on the gallery's enrolled faces "
        "against the other members' templates, in their nearest 30% (after; `GapModel`, used when that share "
        "holds >= 60 faces). Cell: mean FPIR on strangers % (worst draw) / DIR %, target 1%, 10 draws per size."
    )
    out()
    for k in (3, 1):
        m = data.matrices("plain", k)
        rows_out = []
        for size in (10, 20, 50, 100, 150, "all"):
            cells: dict[str, list] = defaultdict(list)
            for cols in galleries(data, size):
                sims, ld1, lgap = known_strangers_of(m, cols)
                impostors = ImpostorScores.fit(sims).shrink_towards(prior, len(cols))
                gaps = GapModel.fit(ld1, lgap)
                g_rows, g_col, s_rows = probe_sets(data, cols)
                named, s_g = scored(m, "template", cols, g_rows, score_combo(1.0))
                s_s = scored(m, "template", cols, s_rows, score_combo(1.0))[1]
                _, d1, d2 = top2(m["template"][np.ix_(s_rows, cols)])
                cells["corr"].append(np.corrcoef(d1, d2 - d1)[0, 1])
                cells["fitted"].append(gaps is not None)
                oracle_t = np.sort(s_s)[int(0.01 * len(s_s))]
                for name, cal in (
                    ("independent", Calibration(len(cols), impostors)),
                    ("gap model", Calibration(len(cols), impostors, gaps)),
                    ("oracle", None),
                ):
                    t = oracle_t if cal is None else cal.score_for_fpir(0.01)
                    cells[name].append((np.mean(s_s < t), np.mean((named == g_col) & (s_g < t))))
            row = [size, f"{np.mean(cells['corr']):.2f}", f"{np.mean(cells['fitted']):.0%}"]
            for name in ("independent", "gap model", "oracle"):
                v = np.array(cells[name])
                row.append(f"{pct(v[:, 0].mean(), 2)} ({pct(v[:, 0].max(), 2)}) / {pct(v[:, 1].mean())}")
            rows_out.append(row)
        out(f"{k} photo(s) enrolled:")
        out()
        table(["gallery", "corr(d1, gap) strangers", "gap fitted", "independent", "gap model", "oracle <= 1%"],
              rows_out)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lfw", type=Path, default=LFW, help="LFW folder with images/ and pairs.txt")
    parser.add_argument("--cache", type=Path, default=CACHE, help="embeddings cache: read if it exists, else built")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where the markdown tables are written")
    args = parser.parse_args()

    if not args.cache.exists():
        build_cache(args.lfw / "images", args.cache)
    data = Data(args.cache)
    out("# FaceGate identify study: results")
    out()
    out(
        f"Cache: {len(data.files)} images, no face found in {int((~data.found).sum())}. Scores: lower = more "
        "similar; d = Euclidean distance of unit embeddings; 'mirror' = normalised mean of the embedding of the "
        "crop and of its mirror image, for enrolled faces and probes alike."
    )
    out()
    out("What the tables show, and the protocol behind them, is read in docs/identification.md.")
    out()
    step2(data)
    step2_verification(data, args.lfw / "pairs.txt")
    runs, priors = step3(data)
    out("## Recommended set-up: review band and 1-photo check")
    out()
    rec_score, rec_est = "c) template 2*d1 - d2", f"iv) prior+gallery tail-normal (n0={N0:g})"
    review_band(runs[rec_score], rec_est, rec_score)
    review_band(runs["b) template d1"], rec_est, "b) template d1")
    one_photo_check(data, rec_est, rec_score)
    shipping_table(priors[(3, False)])
    verification_thresholds(data, priors[(3, False)], args.lfw / "pairs.txt")
    diagnostics(data)
    step4_gap(data)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text("\n".join(OUT_LINES) + "\n")
    print(f"written to {args.results}")


if __name__ == "__main__":
    main()
