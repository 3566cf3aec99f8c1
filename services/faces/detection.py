"""Detect stage: MTCNN (facenet-pytorch, weights ship with the package) finds faces, boxes and 5 landmarks."""

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from services.faces.model import InferenceModel

# Large photos are detected on a downscaled copy: MTCNN's cost grows with the pixel count, and faces in such
# photos are big enough to be found at this size. Boxes and landmarks are mapped back to the original.
DETECT_MAX_SIDE = 1280


@dataclass(frozen=True)
class Box:
    """A face box in image pixels: the one box shape of the service (responses, attempts, face quality)."""

    x: float
    y: float
    width: float
    height: float

    @classmethod
    def from_corners(cls, x1: float, y1: float, x2: float, y2: float) -> "Box":
        return cls(float(x1), float(y1), float(x2 - x1), float(y2 - y1))

    @property
    def corners(self) -> tuple[float, float, float, float]:
        return self.x, self.y, self.x + self.width, self.y + self.height

    @property
    def size(self) -> float:
        """The shorter side, the figure size limits apply to."""
        return min(self.width, self.height)

    def rounded(self) -> dict[str, float]:
        return {
            "x": round(self.x, 1),
            "y": round(self.y, 1),
            "width": round(self.width, 1),
            "height": round(self.height, 1),
        }


@dataclass(frozen=True)
class DetectedFace:
    box: Box
    score: float
    landmarks: np.ndarray  # 5x2: left eye, right eye, nose, mouth left, mouth right (as seen in the image)

    @property
    def size(self) -> float:
        return self.box.size


class FaceDetector(InferenceModel[np.ndarray, list[DetectedFace]]):
    name = "MTCNN"

    def build(self) -> torch.nn.Module:
        from facenet_pytorch import MTCNN

        return MTCNN(
            min_face_size=self.settings.detector_min_face_size, keep_all=True, select_largest=False, device="cpu"
        )

    def warm_up_input(self) -> np.ndarray:
        return np.full((160, 160, 3), 128, dtype=np.uint8)

    @torch.inference_mode()
    def predict(self, batch: np.ndarray) -> list[DetectedFace]:
        """All faces in one RGB image, best score first."""
        height, width = batch.shape[:2]
        scale = min(1.0, DETECT_MAX_SIDE / max(height, width))
        small = (
            batch
            if scale == 1.0
            else cv2.resize(batch, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
        )
        boxes, scores, points = self.network.detect(small, landmarks=True)  # type: ignore[operator]
        if boxes is None:
            return []
        faces = [
            DetectedFace(
                box=Box.from_corners(*(float(v) / scale for v in box)), score=float(score), landmarks=landmarks / scale
            )
            for box, score, landmarks in zip(boxes, scores, points, strict=True)
        ]
        return sorted(faces, key=lambda face: face.score, reverse=True)
