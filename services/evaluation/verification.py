"""LFW verification pairs through the service's own pipeline (`facegate eval-lfw`)."""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from services.faces.detection import DetectedFace
from services.faces.pipeline import AnalyzedFace, FacePipeline


@dataclass(frozen=True)
class Pair:
    left: str  # path relative to the images folder
    right: str
    same: bool


def read_lfw_pairs(pairs_file: Path, folds: Iterable[int]) -> list[Pair]:
    """Pairs of the given 1-based folds of the standard LFW pairs.txt (each fold: n same, then n different)."""
    lines = pairs_file.read_text().split("\n")
    n_folds, per_fold = map(int, lines[0].split())
    rows = [line.split() for line in lines[1:] if line.strip()]

    def image(name: str, number: str) -> str:
        return f"{name}/{name}_{int(number):04d}.jpg"

    pairs = []
    for fold in folds:
        for row in rows[(fold - 1) * 2 * per_fold : fold * 2 * per_fold]:
            if len(row) == 3:
                pairs.append(Pair(image(row[0], row[1]), image(row[0], row[2]), True))
            else:
                pairs.append(Pair(image(row[0], row[1]), image(row[2], row[3]), False))
    return pairs


def central_face(faces: list[DetectedFace], shape: tuple[int, ...]) -> int | None:
    """LFW photos are centred on their subject: the index of the face nearest the centre."""
    if not faces:
        return None
    cy, cx = shape[0] / 2, shape[1] / 2
    return min(
        range(len(faces)),
        key=lambda i: (
            (faces[i].box.x + faces[i].box.width / 2 - cx) ** 2 + (faces[i].box.y + faces[i].box.height / 2 - cy) ** 2
        ),
    )


def lfw_embeddings(
    pipeline: FacePipeline, images_dir: Path, names: Iterable[str], progress: Callable = iter
) -> tuple[dict[str, np.ndarray], list[str]]:
    """Embedding of the central face of each image, through the service's own decode/detect/align/embed.

    Returns the embeddings and the images where no face was found (those count as wrong answers)."""
    embeddings, missed = {}, []
    for name in progress(sorted(set(names))):
        _, subject = subject_face(pipeline, images_dir / name)
        if subject is None:
            missed.append(name)
        else:
            embeddings[name] = subject.embedding
    return embeddings, missed


def subject_face(pipeline: FacePipeline, path: Path) -> tuple[list[AnalyzedFace], AnalyzedFace | None]:
    """Every face of an LFW photo, and its subject (the central one; None when no face was found)."""
    image = pipeline.decode(path.read_bytes())
    faces = pipeline.analyze(image)
    index = central_face([f.detection for f in faces], image.shape)
    return faces, None if index is None else faces[index]


def accuracy_at(distances: np.ndarray, same: np.ndarray, threshold: float) -> float:
    return float(np.mean((distances <= threshold) == same))


def best_threshold(distances: np.ndarray, same: np.ndarray) -> float:
    """The middle of the thresholds that give the best accuracy: the widest safety margin on both sides."""
    candidates = np.arange(0.0, 2.0, 0.005)
    scores = np.array([accuracy_at(distances, same, t) for t in candidates])
    return round(float(np.mean(candidates[scores == scores.max()])), 3)


@dataclass
class VerificationReport:
    pairs: int
    missed_images: list[str]
    cv_accuracy: float  # 10-fold: threshold chosen on 9 parts, accuracy measured on the 10th
    cv_accuracy_std: float
    best_threshold: float  # the most accurate on these pairs
    strict_threshold: float  # 0.01 below the nearest different-person pair: no false accept here (the default)
    threshold: float
    accuracy: float  # at `threshold`
    false_accept_rate: float  # different-person pairs accepted at `threshold`
    false_reject_rate: float
    mean_distance_same: float
    mean_distance_different: float


def verification_report(
    pairs: list[Pair], embeddings: dict[str, np.ndarray], missed: list[str], threshold: float
) -> VerificationReport:
    # A pair with an undetected face gets distance inf: rejected, so right only for different people.
    distances = np.array(
        [
            float(np.linalg.norm(embeddings[p.left] - embeddings[p.right]))
            if p.left in embeddings and p.right in embeddings
            else np.inf
            for p in pairs
        ]
    )
    same = np.array([p.same for p in pairs])
    # Ten interleaved parts keep same/different balanced in each (pairs come as n same, then n different).
    parts = np.arange(len(pairs)) % 10
    fold_acc = []
    for k in range(10):
        train, test = parts != k, parts == k
        fold_acc.append(accuracy_at(distances[test], same[test], best_threshold(distances[train], same[train])))
    accepted = distances <= threshold
    finite = np.isfinite(distances)
    return VerificationReport(
        pairs=len(pairs),
        missed_images=missed,
        cv_accuracy=float(np.mean(fold_acc)),
        cv_accuracy_std=float(np.std(fold_acc)),
        best_threshold=best_threshold(distances, same),
        strict_threshold=float(np.floor((distances[~same].min() - 0.01) * 100) / 100),
        threshold=threshold,
        accuracy=accuracy_at(distances, same, threshold),
        false_accept_rate=float(np.mean(accepted[~same])),
        false_reject_rate=float(np.mean(~accepted[same])),
        mean_distance_same=float(np.mean(distances[same & finite])),
        mean_distance_different=float(np.mean(distances[~same & finite])),
    )
