"""Align stage: cut each detected face to the fixed-size input a network expects.

FaceNet (davidsandberg 20170512-110547, which facenet_keras.h5 converts) was trained on MTCNN boxes widened by a
margin and resized to 160x160, without rotating the face upright. `facenet_crop` reproduces that framing; see
docs/alignment.md for the LFW comparison that chose it over a landmark-based similarity transform.
"""

import cv2
import numpy as np

from services.faces.detection import Box, DetectedFace

FACENET_SIZE = 160
# Margin added on each side of the MTCNN box, as a fraction of the box side (davidsandberg: 32 px around
# ~110-px LFW boxes, at 160 px output).
FACENET_MARGIN = 0.15
EXPRESSION_SIZE = 64


def _crop_box(image: np.ndarray, box: tuple[float, float, float, float], size: int) -> np.ndarray:
    """Resample the region `box` (x1, y1, x2, y2, may run past the image) to size x size pixels."""
    x1, y1, x2, y2 = box
    scale_x, scale_y = size / (x2 - x1), size / (y2 - y1)
    # Shrinking by more than 2x in one bilinear step aliases: area-average the region down first. Only the region
    # (and a border for the bilinear step) is resized, not the whole of an HD frame (docs/performance.md).
    shrink = min(scale_x, scale_y)
    if shrink < 0.5:
        factor = shrink * 2
        border = int(np.ceil(2 / factor)) + 1
        height, width = image.shape[:2]
        left, top = max(int(np.floor(min(x1, x2))) - border, 0), max(int(np.floor(min(y1, y2))) - border, 0)
        right, bottom = min(int(np.ceil(max(x1, x2))) + border, width), min(int(np.ceil(max(y1, y2))) + border, height)
        if right - left >= 1 and bottom - top >= 1:  # a box wholly outside the image keeps the whole image
            image, x1, y1 = image[top:bottom, left:right], x1 - left, y1 - top
        image = cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
        x1, y1, scale_x, scale_y = x1 * factor, y1 * factor, scale_x / factor, scale_y / factor
    matrix = np.array([[scale_x, 0, -x1 * scale_x], [0, scale_y, -y1 * scale_y]], dtype=np.float64)
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def facenet_region(box: Box, margin: float = FACENET_MARGIN) -> tuple[float, float, float, float]:
    """The corners of the part of the photo FaceNet reads: the detection box widened by `margin` of its size on
    each side."""
    x1, y1, x2, y2 = box.corners
    dx, dy = (x2 - x1) * margin, (y2 - y1) * margin
    return x1 - dx, y1 - dy, x2 + dx, y2 + dy


def facenet_crop(image: np.ndarray, face: DetectedFace, margin: float = FACENET_MARGIN) -> np.ndarray:
    """The 160x160 RGB crop FaceNet embeds: facenet_region resampled."""
    return _crop_box(image, facenet_region(face.box, margin), FACENET_SIZE)


def expression_crop(image: np.ndarray, face: DetectedFace) -> np.ndarray:
    """The 64x64 grey crop the expression model reads: the square around the box, as tight as FER2013's faces."""
    x1, y1, x2, y2 = face.box.corners
    cx, cy, half = (x1 + x2) / 2, (y1 + y2) / 2, max(x2 - x1, y2 - y1) / 2
    crop = _crop_box(image, (cx - half, cy - half, cx + half, cy + half), EXPRESSION_SIZE)
    return cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
