"""Enrollment quality gate: one usable face, large, confidently detected and sharp enough to identify later."""

from dataclasses import dataclass

import cv2
import numpy as np

from core.errors import FaceRejectedError
from core.settings import Settings


def sharpness(crop: np.ndarray) -> float:
    """Variance of the Laplacian of the grey 160x160 crop: low when the face is blurred or out of focus."""
    return _laplacian_variance(cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY))


def sharpness_of_jpeg(data: bytes) -> float:
    """sharpness() of a stored 160x160 crop."""
    grey = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_GRAYSCALE)
    if grey is None:
        raise ValueError("not a JPEG crop")
    return _laplacian_variance(grey)


def _laplacian_variance(grey: np.ndarray) -> float:
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


@dataclass(frozen=True)
class QualityGate:
    min_face_size: int
    min_detection_score: float
    min_sharpness: float

    @classmethod
    def from_settings(cls, settings: Settings) -> "QualityGate":
        return cls(settings.min_face_size, settings.min_detection_score, settings.min_sharpness)

    def choose(self, face_sizes: list[float], *, largest: bool) -> int:
        """Index of the face to enroll among the detected ones (their shorter box sides).

        Faces too small to enroll (people in the background) do not count as "several faces"."""
        if not face_sizes:
            raise FaceRejectedError("No face was found in the photo.", code="no_face")
        enrollable = sum(size >= self.min_face_size for size in face_sizes)
        if enrollable > 1 and not largest:
            raise FaceRejectedError(
                f"{enrollable} faces were found; send a photo of one person or ask for the largest face.",
                code="multiple_faces",
                faces=enrollable,
            )
        return int(np.argmax(face_sizes))

    def check(self, *, face_size: float, detection_score: float, crop_sharpness: float) -> None:
        if face_size < self.min_face_size:
            raise FaceRejectedError(
                f"The face is {face_size:.0f} px across; at least {self.min_face_size} px are needed.",
                code="face_too_small",
                face_size=round(face_size, 1),
                min_face_size=self.min_face_size,
            )
        if detection_score < self.min_detection_score:
            raise FaceRejectedError(
                f"The face was detected with too little confidence ({detection_score:.3f}).",
                code="low_detection_score",
                detection_score=round(detection_score, 4),
                min_detection_score=self.min_detection_score,
            )
        if crop_sharpness < self.min_sharpness:
            raise FaceRejectedError(
                f"The face is too blurry (sharpness {crop_sharpness:.1f}, at least {self.min_sharpness} needed).",
                code="blurry",
                sharpness=round(crop_sharpness, 1),
                min_sharpness=self.min_sharpness,
            )
