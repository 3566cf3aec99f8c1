"""Enrollment quality gate: one usable face, large, confidently detected and sharp enough to identify later."""

from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

from core.errors import FaceRejectedError
from core.settings import Settings
from services.faces.alignment import facenet_region
from services.faces.detection import Box

if TYPE_CHECKING:
    from services.faces.pipeline import AnalyzedFace  # which imports this module


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


# `largest`: a face counts as in the photo when this share of its box is inside it; a second face this close in
# size to the largest leaves the choice to the centre, where a face this much nearer than the other is the subject.
MOSTLY_INSIDE = 0.8
CLOSE_IN_SIZE = 0.8
CLEARLY_CENTRAL = 0.5


def _visible(box: Box, frame: tuple[int, int]) -> Box:
    height, width = frame
    x1, y1, x2, y2 = box.corners
    return Box.from_corners(max(x1, 0), max(y1, 0), min(x2, width), min(y2, height))


def visible_share(box: Box, frame: tuple[int, int]) -> float:
    visible = _visible(box, frame)
    return max(visible.width, 0) * max(visible.height, 0) / max(box.width * box.height, 1e-9)


# A face cut off by the photo's edge embeds far from the person's other photos: the gate refuses one whose FaceNet
# crop region lies less than this share inside the photo (docs/identification.md, "Faces cut off by the photo's edge").
MIN_CROP_INSIDE = 0.8


def crop_inside_share(box: Box, frame: tuple[int, int]) -> float:
    """The share of the region FaceNet reads for this face (alignment.facenet_region) that lies inside the photo."""
    return visible_share(Box.from_corners(*facenet_region(box)), frame)


def _off_centre(box: Box, frame: tuple[int, int]) -> float:
    height, width = frame
    return float(np.hypot(box.x + box.width / 2 - width / 2, box.y + box.height / 2 - height / 2))


# The desk signup asks for a straight photo and two turned a little each way: a template of several poses sits
# nearer a visitor's varied photos than three alike. The turn is read from the 5 landmarks (turn_of): about
# 0.6 x tan(yaw) for a nose as deep as 0.6 eye distances, so 0.08 is ~8 degrees and 0.4 ~34 degrees.
STRAIGHT_TURN = 0.08
LITTLE_TURN = (0.12, 0.4)


def turn_of(landmarks: np.ndarray) -> float:
    """How far the head is turned: the nose's offset from the middle of the eyes, in eye distances, positive when
    the nose points to the image's right (the person turned to their own left)."""
    left_eye, right_eye, nose = (np.asarray(landmarks[i], dtype=np.float64) for i in range(3))
    eyes = right_eye - left_eye
    spread = float(np.linalg.norm(eyes))
    if spread < 1e-6:
        return 0.0
    return float(np.dot(nose - (left_eye + right_eye) / 2, eyes) / spread**2)


def pose_of(turn: float) -> str | None:
    """straight, left or right (the person's own), or None between them or past a little turn."""
    if abs(turn) <= STRAIGHT_TURN:
        return "straight"
    if LITTLE_TURN[0] <= abs(turn) <= LITTLE_TURN[1]:
        return "left" if turn > 0 else "right"
    return None


@dataclass(frozen=True)
class QualityGate:
    min_face_size: int
    min_detection_score: float
    min_sharpness: float

    @classmethod
    def from_settings(cls, settings: Settings) -> "QualityGate":
        return cls(settings.min_face_size, settings.min_detection_score, settings.min_sharpness)

    def choose(self, boxes: list[Box], frame: tuple[int, int], *, largest: bool) -> int:
        """Index of the face to enroll among the detected ones (boxes in a frame of (height, width) pixels).

        Faces too small to enroll (people in the background) do not count as "several faces". With `largest`,
        the subject is the largest face that lies mostly inside the photo (a bystander cut off at its edge is
        not), measured by its visible part; when the next one is about as large, the one clearly nearer the
        centre, and when neither is, the photo is refused: which one was meant cannot be told."""
        if not boxes:
            raise FaceRejectedError("No face was found in the photo.", code="no_face")
        enrollable = [i for i, box in enumerate(boxes) if box.size >= self.min_face_size]
        if len(enrollable) > 1 and not largest:
            raise FaceRejectedError(
                f"{len(enrollable)} faces were found; send a photo of one person or ask for the largest face.",
                code="multiple_faces",
                faces=len(enrollable),
            )
        if len(enrollable) <= 1:
            return enrollable[0] if enrollable else int(np.argmax([box.size for box in boxes]))
        inside = [i for i in enrollable if visible_share(boxes[i], frame) >= MOSTLY_INSIDE] or enrollable
        by_size = sorted(inside, key=lambda i: _visible(boxes[i], frame).size, reverse=True)
        first, second = by_size[0], by_size[1] if len(by_size) > 1 else None
        if second is None or _visible(boxes[second], frame).size < CLOSE_IN_SIZE * _visible(boxes[first], frame).size:
            return first
        near_first, near_second = (_off_centre(boxes[i], frame) for i in (first, second))
        if near_first <= CLEARLY_CENTRAL * near_second:
            return first
        if near_second <= CLEARLY_CENTRAL * near_first:
            return second
        raise FaceRejectedError(
            "Two faces of about the same size were found and neither is clearly the subject; crop the photo to "
            "the one person.",
            code="multiple_faces",
            faces=len(enrollable),
        )

    def check_face(self, face: "AnalyzedFace") -> None:
        """check() on a face found in a photo."""
        self.check(
            face_size=face.detection.size,
            detection_score=face.detection.score,
            crop_sharpness=face.sharpness,
            crop_inside=crop_inside_share(face.detection.box, face.frame),
        )

    def check(
        self, *, face_size: float, detection_score: float, crop_sharpness: float, crop_inside: float = 1.0
    ) -> None:
        """FaceRejectedError naming the first rule the face fails; `crop_inside`: crop_inside_share (a reviewed
        probe, whose photo is gone, leaves it out)."""
        if face_size < self.min_face_size:
            raise FaceRejectedError(
                f"The face is {face_size:.0f} px across; at least {self.min_face_size} px are needed.",
                code="face_too_small",
                face_size=round(face_size, 1),
                min_face_size=self.min_face_size,
            )
        if crop_inside < MIN_CROP_INSIDE:
            raise FaceRejectedError(
                f"The face is cut off by the photo's edge ({crop_inside:.0%} of it and its surroundings are in the"
                " photo); send a photo with the whole face and some room around it.",
                code="face_cut_off",
                inside=round(crop_inside, 3),
                min_inside=MIN_CROP_INSIDE,
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
