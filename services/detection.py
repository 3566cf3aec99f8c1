"""Detect stage: MTCNN (facenet-pytorch, weights ship with the package) finds faces, boxes and 5 landmarks."""

from dataclasses import dataclass

import cv2
import numpy as np
import torch

# Large photos are detected on a downscaled copy: MTCNN's cost grows with the pixel count, and faces in such
# photos are big enough to be found at this size. Boxes and landmarks are mapped back to the original.
DETECT_MAX_SIDE = 1280


@dataclass(frozen=True)
class DetectedFace:
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in image pixels
    score: float
    landmarks: np.ndarray  # 5x2: left eye, right eye, nose, mouth left, mouth right (as seen in the image)

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    @property
    def size(self) -> float:
        """The shorter side of the box, the figure size limits apply to."""
        return min(self.width, self.height)


class FaceDetector:
    def __init__(self, min_face_size: int = 20):
        self.min_face_size = min_face_size
        self.mtcnn = None

    def load(self) -> None:
        from facenet_pytorch import MTCNN

        self.mtcnn = MTCNN(min_face_size=self.min_face_size, keep_all=True, select_largest=False, device="cpu")
        self.mtcnn.eval()

    @torch.inference_mode()
    def predict(self, image: np.ndarray) -> list[DetectedFace]:
        """All faces in an RGB image, best score first."""
        height, width = image.shape[:2]
        scale = min(1.0, DETECT_MAX_SIDE / max(height, width))
        small = image if scale == 1.0 else cv2.resize(
            image, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA
        )
        boxes, scores, points = self.mtcnn.detect(small, landmarks=True)
        if boxes is None:
            return []
        faces = [
            DetectedFace(box=tuple(float(v) / scale for v in box), score=float(score), landmarks=landmarks / scale)
            for box, score, landmarks in zip(boxes, scores, points)
        ]
        return sorted(faces, key=lambda face: face.score, reverse=True)
