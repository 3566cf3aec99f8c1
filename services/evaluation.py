"""Accuracy evaluators behind the CLI: LFW verification pairs and expression labels on a folder per label."""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from deepface.models.demography.DemographyUtils import EMOTION_LABELS

from services.alignment import EMOTION_SIZE
from services.detection import DetectedFace
from services.pipeline import FacePipeline

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


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
        for row in rows[(fold - 1) * 2 * per_fold: fold * 2 * per_fold]:
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
    return min(range(len(faces)), key=lambda i: ((faces[i].box[0] + faces[i].box[2]) / 2 - cx) ** 2
               + ((faces[i].box[1] + faces[i].box[3]) / 2 - cy) ** 2)


def lfw_embeddings(
    pipeline: FacePipeline, images_dir: Path, names: Iterable[str], progress: Callable = iter
) -> tuple[dict[str, np.ndarray], list[str]]:
    """Embedding of the central face of each image, through the service's own decode/detect/align/embed.

    Returns the embeddings and the images where no face was found (those count as wrong answers)."""
    embeddings, missed = {}, []
    for name in progress(sorted(set(names))):
        image = pipeline.decode((images_dir / name).read_bytes())
        faces = pipeline.analyze(image)
        index = central_face([f.detection for f in faces], image.shape)
        if index is None:
            missed.append(name)
        else:
            embeddings[name] = faces[index].embedding
    return embeddings, missed


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


def verification_report(pairs: list[Pair], embeddings: dict[str, np.ndarray], missed: list[str],
                        threshold: float) -> VerificationReport:
    # A pair with an undetected face gets distance inf: rejected, so right only for different people.
    distances = np.array([
        float(np.linalg.norm(embeddings[p.left] - embeddings[p.right]))
        if p.left in embeddings and p.right in embeddings else np.inf
        for p in pairs
    ])
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
        pairs=len(pairs), missed_images=missed,
        cv_accuracy=float(np.mean(fold_acc)), cv_accuracy_std=float(np.std(fold_acc)),
        best_threshold=best_threshold(distances, same),
        strict_threshold=float(np.floor((distances[~same].min() - 0.01) * 100) / 100), threshold=threshold,
        accuracy=accuracy_at(distances, same, threshold),
        false_accept_rate=float(np.mean(accepted[~same])), false_reject_rate=float(np.mean(~accepted[same])),
        mean_distance_same=float(np.mean(distances[same & finite])),
        mean_distance_different=float(np.mean(distances[~same & finite])),
    )


@dataclass
class ExpressionReport:
    images: int
    accuracy: float
    labels: list[str]
    confusion: list[list[int]]  # rows: true label, columns: predicted label
    per_label_accuracy: dict[str, float]


def evaluate_expressions(
    pipeline: FacePipeline, folder: Path, batch_size: int = 256, progress: Callable = iter
) -> ExpressionReport:
    """Classify every image of folder/<label>/ as a face crop (FER2013 images are already aligned faces)."""
    items = [(path, EMOTION_LABELS.index(label_dir.name))
             for label_dir in sorted(folder.iterdir()) if label_dir.name in EMOTION_LABELS
             for path in sorted(label_dir.iterdir()) if path.suffix.lower() in IMAGE_SUFFIXES]
    if not items:
        raise ValueError(f"No images in sub-folders named after the labels {EMOTION_LABELS} under {folder}")
    predictions = []
    for start in progress(range(0, len(items), batch_size)):
        batch = [cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) for path, _ in items[start:start + batch_size]]
        faces = np.stack([cv2.resize(img, (EMOTION_SIZE, EMOTION_SIZE), interpolation=cv2.INTER_LINEAR)
                          for img in batch])
        predictions.extend(np.argmax(pipeline.emotion.predict(faces), axis=1))
    truth = np.array([label for _, label in items])
    predictions = np.array(predictions)
    confusion = np.zeros((len(EMOTION_LABELS), len(EMOTION_LABELS)), dtype=int)
    np.add.at(confusion, (truth, predictions), 1)
    return ExpressionReport(
        images=len(items), accuracy=float(np.mean(truth == predictions)), labels=list(EMOTION_LABELS),
        confusion=confusion.tolist(),
        per_label_accuracy={label: float(confusion[i, i] / max(confusion[i].sum(), 1))
                            for i, label in enumerate(EMOTION_LABELS)},
    )
