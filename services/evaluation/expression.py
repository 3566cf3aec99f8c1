"""Expression accuracy on a folder per label (`facegate eval-expression`), e.g. the FER2013 test split."""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from services.faces.alignment import EXPRESSION_SIZE
from services.faces.expression import EMOTION_LABELS
from services.faces.images import IMAGE_SUFFIXES
from services.faces.pipeline import FacePipeline


@dataclass
class ExpressionReport:
    images: int
    accuracy: float
    labels: list[str]
    confusion: list[list[int]]  # rows: true label, columns: predicted label
    per_label_accuracy: dict[str, float]


def _read_grey(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise ValueError(f"{path} is not a readable image")
    return image


def evaluate_expressions(
    pipeline: FacePipeline, folder: Path, batch_size: int = 256, progress: Callable = iter
) -> ExpressionReport:
    """Classify every image of folder/<label>/ as a face crop (FER2013 images are already aligned faces)."""
    items = [
        (path, EMOTION_LABELS.index(label_dir.name))
        for label_dir in sorted(folder.iterdir())
        if label_dir.name in EMOTION_LABELS
        for path in sorted(label_dir.iterdir())
        if path.suffix.lower() in IMAGE_SUFFIXES
    ]
    if not items:
        raise ValueError(f"No images in sub-folders named after the labels {EMOTION_LABELS} under {folder}")
    predicted: list[int] = []
    for start in progress(range(0, len(items), batch_size)):
        faces = np.stack(
            [
                cv2.resize(_read_grey(path), (EXPRESSION_SIZE, EXPRESSION_SIZE), interpolation=cv2.INTER_LINEAR)
                for path, _ in items[start : start + batch_size]
            ]
        )
        predicted.extend(np.argmax(pipeline.expression.predict(faces), axis=1))
    truth = np.array([label for _, label in items])
    predictions = np.array(predicted)
    confusion = np.zeros((len(EMOTION_LABELS), len(EMOTION_LABELS)), dtype=int)
    np.add.at(confusion, (truth, predictions), 1)
    return ExpressionReport(
        images=len(items),
        accuracy=float(np.mean(truth == predictions)),
        labels=list(EMOTION_LABELS),
        confusion=confusion.tolist(),
        per_label_accuracy={
            label: float(confusion[i, i] / max(confusion[i].sum(), 1)) for i, label in enumerate(EMOTION_LABELS)
        },
    )
