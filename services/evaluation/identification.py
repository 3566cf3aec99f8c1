"""Open-set 1:N evaluation (`facegate eval-identify`) through the service's own enroll and identify path.

Protocol, on an identity-labelled folder (LFW layout, FOLDER/<person>/<photos>, sorted by name):
- members: people with at least `enroll + 1` ... `member_min_photos` photos; the first `enroll` photos are
  enrolled (through the quality gate, largest face), the photos after the first `member_min_photos - 1` are
  their genuine probes (so 1 and 3 photos per member are probed with the same photos);
- strangers: people with fewer photos, never enrolled; every photo of theirs is a stranger probe.
For each gallery size (a seeded random subset of the members) the gallery is enrolled into a fresh database and
every probe goes through `recognition.identify` with the service's settings. Each photo is analysed once.

Measures: DIR (genuine probes named as their own member), FPIR (stranger probes named as anyone) and the review
band's share at the service's decision; and, over the service's score of the nearest member (2*d1 - d2), the DET
curve and FNIR at FPIR 1% and 5% with the threshold set on the strangers themselves (an oracle: the best any
fixed threshold on that score could do, which shows how much the calibration leaves on the table)."""

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sqlalchemy import text

from core.enums import Decision
from core.errors import FaceGateError
from core.settings import Settings
from db.session import session_scope
from services.evaluation.verification import subject_face
from services.faces.images import IMAGE_SUFFIXES
from services.faces.pipeline import AnalyzedFace, FacePipeline
from services.faces.quality import QualityGate
from services.identity import enrollment, recognition
from services.identity.calibration import GalleryCalibration


@dataclass
class GalleryResult:
    members: int
    genuine_probes: int
    stranger_probes: int
    dir: float  # genuine probes named as their own member, at the service's decision
    fpir: float  # stranger probes named as some member
    genuine_review: float  # genuine probes in the review band
    stranger_review: float
    accept_score: float  # the calibrated accept score for this gallery
    fnir_at_fpir_1: float  # best fixed score threshold, chosen on the strangers
    fnir_at_fpir_5: float
    det: list[tuple[float, float]] = field(default_factory=list)  # (FPIR, FNIR) over score thresholds


@dataclass
class IdentifyReport:
    enroll_per_member: int
    members_available: int
    strangers: int
    enroll_refused: int
    galleries: list[GalleryResult]


def _people(folder: Path, min_photos: int) -> tuple[dict[str, list[Path]], dict[str, list[Path]]]:
    photos = {
        d.name: sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        for d in sorted(folder.iterdir())
        if d.is_dir()
    }
    members = {name: paths for name, paths in photos.items() if len(paths) >= min_photos}
    strangers = {name: paths for name, paths in photos.items() if len(paths) < min_photos}
    if not members or not strangers:
        raise ValueError(f"{folder} needs <person>/<photos> folders, some with {min_photos}+ photos and some fewer")
    return members, strangers


def _fnir_at(fpir_target: float, genuine: np.ndarray, genuine_right: np.ndarray, strangers: np.ndarray) -> float:
    """FNIR at the largest distance that keeps FPIR at or below the target."""
    ordered = np.sort(strangers)
    allowed = int(np.floor(fpir_target * len(ordered)))
    threshold = ordered[allowed] - 1e-9 if allowed < len(ordered) else np.inf
    return float(1.0 - np.mean((genuine <= threshold) & genuine_right))


def evaluate_identification(
    pipeline: FacePipeline,
    settings: Settings,
    folder: Path,
    *,
    enroll: list[int],
    member_min_photos: int,
    gallery_sizes: list[int | None],
    seed: int = 0,
    progress: Callable[[Iterable], Iterable] = iter,
) -> list[IdentifyReport]:
    """One report per number of enrolled photos (each at most member_min_photos - 1)."""
    members, strangers = _people(folder, member_min_photos)
    gate = QualityGate.from_settings(settings)
    gated: dict[str, list[AnalyzedFace | None]] = {}  # a member's first photos, None where the gate refused
    probes: list[tuple[str | None, AnalyzedFace]] = []  # (member name or None for a stranger, face)
    work: list[tuple[str | None, int, Path]] = [
        (name, i, path) for name, paths in members.items() for i, path in enumerate(paths)
    ]
    work += [(None, 0, path) for paths in strangers.values() for path in paths]
    for name, i, path in progress(work):
        faces, subject = subject_face(pipeline, path)
        if name is not None and i < member_min_photos - 1:
            try:
                gated.setdefault(name, []).append(enrollment.gate_faces(gate, faces, largest=True))
            except FaceGateError:
                gated.setdefault(name, []).append(None)
        elif subject is not None:
            probes.append((name, subject))
    reports = []
    for k in enroll:
        enrolled = {name: [f for f in faces[:k] if f is not None] for name, faces in gated.items()}
        refused = sum(f is None for faces in gated.values() for f in faces[:k])
        eligible = sorted(name for name, faces in enrolled.items() if faces)
        galleries = [
            _run_gallery(settings, set(random.Random(seed).sample(eligible, min(size or len(eligible), len(eligible)))),
                         enrolled, probes)
            for size in gallery_sizes
        ]  # fmt: skip
        reports.append(IdentifyReport(k, len(eligible), len(strangers), refused, galleries))
    return reports


def _run_gallery(
    settings: Settings,
    chosen: set[str],
    enrolled: dict[str, list[AnalyzedFace]],
    probes: list[tuple[str | None, AnalyzedFace]],
) -> GalleryResult:
    gallery = GalleryCalibration(settings)
    with session_scope() as session:
        session.execute(text("TRUNCATE members, faces, attempts, false_match_blacklist CASCADE"))
        ids = {}
        for name in sorted(chosen):
            member = enrollment.signup(
                session,
                settings,
                gallery,
                external_id=name,
                display_name=name,
                metadata={},
                faces=[enrollment.GatedFace(enrollment.Photo(name, b""), f) for f in enrolled[name]],
                allow_duplicate=True,
                threshold=None,
                caller=None,
            )
            ids[name] = member.id
    genuine: list[float] = []  # the score of the nearest member
    right: list[bool] = []  # the nearest template is the probe's own member
    named_right: list[bool] = []
    genuine_review: list[bool] = []
    stranger: list[float] = []
    stranger_named: list[bool] = []
    stranger_review: list[bool] = []
    accept = 0.0
    for person, face in probes:
        if person is not None and person not in chosen:
            continue  # a member left out of this gallery: neither genuine nor a stranger
        with session_scope() as session:
            found = recognition.identify(session, settings, gallery, [face], threshold=None, k=2, caller=None)
        accept = found.rule.accept
        (result,) = found.faces
        nearest = result.candidates[0] if result.candidates else None
        score = nearest.score if nearest else np.inf
        if person is None:
            stranger.append(score)
            stranger_named.append(result.outcome.decision == Decision.MATCH)
            stranger_review.append(result.outcome.needs_review)
        else:
            genuine.append(score)
            right.append(nearest is not None and nearest.member_id == ids[person])
            named_right.append(result.match is not None and result.match.member_id == ids[person])
            genuine_review.append(result.outcome.needs_review)
    g, r, s = np.array(genuine), np.array(right), np.array(stranger)
    det = [((i + 1) / len(s), float(1.0 - np.mean((g <= t) & r))) for i, t in enumerate(np.sort(s)[: len(s) // 2])]
    return GalleryResult(
        members=len(chosen),
        genuine_probes=len(g),
        stranger_probes=len(s),
        dir=float(np.mean(named_right)),
        fpir=float(np.mean(stranger_named)),
        genuine_review=float(np.mean(genuine_review)),
        stranger_review=float(np.mean(stranger_review)),
        accept_score=round(accept, 4),
        fnir_at_fpir_1=_fnir_at(0.01, g, r, s),
        fnir_at_fpir_5=_fnir_at(0.05, g, r, s),
        det=det,
    )


def det_plot(report: IdentifyReport, path: Path) -> None:
    """The DET curves (FNIR against FPIR, log axes) of every gallery size, as a PNG."""
    from PIL import Image, ImageDraw

    width, height, margin = 640, 480, 60
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    lo = -3.0  # 10^-3 .. 1 on both axes

    def point(fpir: float, fnir: float) -> tuple[float, float]:
        x = (np.log10(max(fpir, 1e-3)) - lo) / -lo
        y = (np.log10(max(fnir, 1e-3)) - lo) / -lo
        return margin + x * (width - 2 * margin), height - margin - y * (height - 2 * margin)

    for decade in (1e-3, 1e-2, 1e-1, 1.0):
        x0, y0 = point(decade, 1e-3)
        draw.line([(x0, margin), (x0, height - margin)], fill="#ddd")
        draw.text((x0 - 12, height - margin + 6), f"{decade:g}", fill="black")
        _, y = point(1e-3, decade)
        draw.line([(margin, y), (width - margin, y)], fill="#ddd")
        draw.text((8, y - 6), f"{decade:g}", fill="black")
    draw.text((width / 2 - 60, height - 24), "FPIR (strangers named)", fill="black")
    draw.text((8, 16), "FNIR (members not named)", fill="black")
    colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"]
    for i, gallery in enumerate(report.galleries):
        colour = colours[i % len(colours)]
        draw.line([point(*p) for p in sorted(gallery.det)], fill=colour, width=2)
        draw.ellipse(
            [(c - 4) for c in point(gallery.fpir, 1 - gallery.dir)]
            + [(c + 4) for c in point(gallery.fpir, 1 - gallery.dir)],
            outline=colour,
            width=2,
        )
        draw.text((width - margin - 170, margin + 16 * i), f"{gallery.members} members (o: default)", fill=colour)
    image.save(path)
