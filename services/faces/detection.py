"""Detect stage: MTCNN (facenet-pytorch's P-, R- and O-Nets, built as ONNX graphs from the weights its wheel ships)
finds faces, boxes and 5 landmarks.

The cascade around the networks (scale pyramid, box regression, non-maximum suppression) is facenet-pytorch's
detect_face, redone in NumPy for one image: the same arithmetic in float32, the same area resampling, the same
orders of suppression. Its results match facenet-pytorch's MTCNN.detect
(tests/services/faces/test_runtime.py), while running the networks in ONNX Runtime and skipping torch's
per-tensor overhead, most of the stage's time.
"""

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

import cv2
import numpy as np

from services.faces import weights
from services.faces.model import InferenceModel
from services.faces.runtime import Forward, NetworkSpec

if TYPE_CHECKING:
    import onnx
    import torch

# Large photos are detected as if downscaled to this longer side: MTCNN's cost grows with the pixel count, and
# faces in such photos are big enough to be found at this size (the smallest face looked for grows with the photo).
# No downscaled copy is made: the pyramid's levels are area-resampled from the running totals of the photo itself,
# which is cheaper than resizing it (docs/performance.md, "HD frames").
DETECT_MAX_SIDE = 1280
# cv2.integral's int32 running totals are exact while a channel's total fits: 255 * pixels < 2^31.
INTEGRAL_MAX_PIXELS = (2**31 - 1) // 255


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


# facenet-pytorch's MTCNN defaults: score thresholds of the three stages, the pyramid's scale step and the face
# size its first level looks for.
THRESHOLDS = (0.6, 0.7, 0.7)
PYRAMID_FACTOR = 0.709
PYRAMID_FIRST_FACE = 20
P_NET_STRIDE, P_NET_CELL = 2, 12  # each P-Net output pixel looks at a 12x12 window, 2 pixels apart
R_NET_SIZE, O_NET_SIZE = 24, 48


def _integral(pixels: np.ndarray) -> np.ndarray:
    """(H+1) x (W+1) x 3 running totals of the pixels from the top-left corner. Exact in int32 up to
    INTEGRAL_MAX_PIXELS pixels. OpenCV's, for speed (docs/performance.md)."""
    return cv2.integral(np.ascontiguousarray(pixels), sdepth=cv2.CV_32S)


def _area_bounds(offset: np.ndarray, length: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """torch's area interpolation (adaptive average pooling) of `length` pixels to `size`: output i averages input
    [floor(i*length/size), ceil((i+1)*length/size)); per region (N), shifted by its offset."""
    i = np.arange(size)
    start = i * length[:, None] // size
    end = -(-(i + 1) * length[:, None] // size)
    return offset[:, None] + start, offset[:, None] + end


def _network_inputs(integral: np.ndarray, regions: np.ndarray, height: int, width: int) -> np.ndarray:
    """Regions (N x 4: top, left, rows, columns) of the image whose running totals are `integral`, each area-resampled
    to height x width and scaled to about [-1, 1] as MTCNN's nets expect: N x 3 x height x width, all at once."""
    top, bottom = _area_bounds(regions[:, 0], regions[:, 2], height)
    left, right = _area_bounds(regions[:, 1], regions[:, 3], width)

    stride = integral.shape[1]
    flat = integral.reshape(-1, integral.shape[2])

    def total_to(rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
        return flat.take(rows[:, :, None] * stride + columns[:, None, :], axis=0)

    sums = total_to(bottom, right) - total_to(top, right) - total_to(bottom, left) + total_to(top, left)
    counts = ((bottom - top)[:, :, None] * (right - left)[:, None, :])[..., None]
    means = sums.astype(np.float32) / counts.astype(np.float32)
    return ((means - np.float32(127.5)) * np.float32(0.0078125)).transpose(0, 3, 1, 2)


def _nms(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> np.ndarray:
    """torchvision.ops.nms: best first, drop boxes overlapping a kept one by IoU > threshold."""
    x1, y1, x2, y2 = boxes.T
    areas = (x2 - x1) * (y2 - y1)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        width = np.maximum(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0)
        height = np.maximum(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0)
        inter = width * height
        order = rest[inter / (areas[i] + areas[rest] - inter) <= threshold]
    return np.array(keep, dtype=np.int64)


def _nms_min(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> np.ndarray:
    """facenet-pytorch's last suppression (nms_numpy, 'Min'): overlap over the smaller box, pixel-inclusive areas."""
    x1, y1, x2, y2 = boxes.T
    areas = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(scores)  # best last, in the same (unstable) order facenet-pytorch gets
    keep = []
    while order.size:
        i, rest = order[-1], order[:-1]
        keep.append(i)
        width = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        height = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        order = rest[width * height / np.minimum(areas[i], areas[rest]) <= threshold]
    return np.array(keep, dtype=np.int64)


def _square(boxes: np.ndarray) -> np.ndarray:
    """rerec: each box made square on its longer side, around the same centre."""
    boxes = boxes.copy()
    width, height = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = np.maximum(width, height)
    boxes[:, 0] = boxes[:, 0] + width * np.float32(0.5) - side * np.float32(0.5)
    boxes[:, 1] = boxes[:, 1] + height * np.float32(0.5) - side * np.float32(0.5)
    boxes[:, 2:4] = boxes[:, :2] + side[:, None]
    return boxes


def _regress(boxes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """bbreg: move each corner by its predicted offset, in units of the (pixel-inclusive) box size."""
    boxes = boxes.copy()
    width, height = boxes[:, 2] - boxes[:, 0] + 1, boxes[:, 3] - boxes[:, 1] + 1
    boxes[:, :4] = boxes[:, :4] + offsets[:, :4] * np.stack([width, height, width, height], axis=1)
    return boxes


def _crops(integral: np.ndarray, boxes: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Each box's pixels (cut to the image) resampled to size x size: the next net's input, and which boxes had any."""
    height, width = integral.shape[0] - 1, integral.shape[1] - 1
    corners = np.trunc(boxes[:, :4]).astype(np.int64)
    x, y = np.maximum(corners[:, 0], 1), np.maximum(corners[:, 1], 1)
    ex, ey = np.minimum(corners[:, 2], width), np.minimum(corners[:, 3], height)
    has_pixels = (ey > y - 1) & (ex > x - 1)
    regions = np.stack([y - 1, x - 1, ey - y + 1, ex - x + 1], axis=1)[has_pixels]
    return _network_inputs(integral, regions, size, size), has_pixels


def _pnet_level(pnet: Forward, integral: np.ndarray, scale: float) -> np.ndarray:
    """P-Net's candidate boxes at one scale of the image whose running totals are `integral` (N x 9: x1, y1, x2,
    y2, score, 4 offsets), after their own non-maximum suppression."""
    height, width = integral.shape[0] - 1, integral.shape[1] - 1
    whole_image = np.array([[0, 0, height, width]])
    offsets, probabilities = pnet(
        _network_inputs(integral, whole_image, int(height * scale + 1), int(width * scale + 1))
    )
    ys, xs = np.nonzero(probabilities[0, 1] >= THRESHOLDS[0])
    cells = np.stack([xs, ys], axis=1).astype(np.float32)
    found = np.concatenate(
        [
            np.floor((P_NET_STRIDE * cells + 1) / np.float32(scale)),
            np.floor((P_NET_STRIDE * cells + P_NET_CELL) / np.float32(scale)),
            probabilities[0, 1, ys, xs, None],
            offsets[0][:, ys, xs].T,
        ],
        axis=1,
    )
    return found[_nms(found[:, :4], found[:, 4], 0.5)]


def _in_parts(forward: Forward, batch: np.ndarray, cores: ThreadPoolExecutor | None, parts: int) -> list[np.ndarray]:
    """forward(batch), the batch split into `parts` run side by side on `cores` when there is a pool."""
    if cores is None or len(batch) < 2:
        return forward(batch)
    outputs = list(cores.map(forward, np.array_split(batch, parts)))
    return [np.concatenate(part) for part in zip(*outputs, strict=True)]


class FaceDetector(InferenceModel[np.ndarray, list[DetectedFace]]):
    name = "MTCNN"

    def networks(self) -> list[NetworkSpec]:
        return [
            NetworkSpec(f"mtcnn-pnet-{self.weight_digest(weights.MTCNN_PNET)}", self._pnet_graph, self._build_pnet),
            NetworkSpec(f"mtcnn-rnet-{self.weight_digest(weights.MTCNN_RNET)}", self._rnet_graph, self._build_rnet,
                        openvino=True),
            NetworkSpec(f"mtcnn-onet-{self.weight_digest(weights.MTCNN_ONET)}", self._onet_graph, self._build_onet,
                        openvino=True),
        ]  # fmt: skip

    def _pnet_graph(self) -> "onnx.ModelProto":
        from services.faces.onnx_graphs import pnet_graph

        return pnet_graph(self.weight_path(weights.MTCNN_PNET))

    def _rnet_graph(self) -> "onnx.ModelProto":
        from services.faces.onnx_graphs import rnet_graph

        return rnet_graph(self.weight_path(weights.MTCNN_RNET))

    def _onet_graph(self) -> "onnx.ModelProto":
        from services.faces.onnx_graphs import onet_graph

        return onet_graph(self.weight_path(weights.MTCNN_ONET))

    # facenet-pytorch's own networks load the same weights from its package.
    @staticmethod
    def _build_pnet() -> "torch.nn.Module":
        from facenet_pytorch.models.mtcnn import PNet

        return PNet()

    @staticmethod
    def _build_rnet() -> "torch.nn.Module":
        from facenet_pytorch.models.mtcnn import RNet

        return RNet()

    @staticmethod
    def _build_onet() -> "torch.nn.Module":
        from facenet_pytorch.models.mtcnn import ONet

        return ONet()

    def warm_up_input(self) -> np.ndarray:
        return np.full((160, 160, 3), 128, dtype=np.uint8)

    def predict(
        self, batch: np.ndarray, cores: ThreadPoolExecutor | None = None, min_face_size: float | None = None
    ) -> list[DetectedFace]:
        """All faces in one RGB image, best score first (`cores`: see detect). With `min_face_size` (pixels of the
        image) faces whose box is smaller are not returned, nor looked for: above the detector's own smallest face,
        that skips P-Net's costliest levels."""
        height, width = batch.shape[:2]
        # Photos too large for exact int32 running totals are first halved (exact 2x2 means) until they fit.
        reduced, shrink = batch, 1
        while reduced.shape[0] * reduced.shape[1] > INTEGRAL_MAX_PIXELS:
            reduced, shrink = cv2.resize(reduced, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA), shrink * 2
        scale = min(1.0, DETECT_MAX_SIDE / max(height, width))
        boxes, landmarks = self.detect(reduced, cores, scale=scale * shrink, min_face=(min_face_size or 0) * scale)
        faces = [
            DetectedFace(box=Box.from_corners(*(float(v) * shrink for v in box[:4])), score=float(box[4]),
                         landmarks=points * shrink)
            for box, points in zip(boxes, landmarks, strict=True)
        ]  # fmt: skip
        wanted = [face for face in faces if face.size >= (min_face_size or 0)]
        return sorted(wanted, key=lambda face: face.score, reverse=True)

    def _pyramid(self, height: int, width: int, image_scale: float, min_face: float) -> list[float]:
        """The scales P-Net runs at on an image of height x width seen at `image_scale` (the pyramid of the image
        downscaled by it, as scales of the image itself), for faces of at least `min_face` pixels of the downscaled
        image. The ladder starts at facenet-pytorch's (20-pixel faces) and a larger smallest face skips its first
        levels rather than shifting every level: the faces still found keep exactly the boxes, and so the
        embeddings, that the full ladder gives them (bench/detector_study.py)."""
        scale = 12.0 / min(min_face, PYRAMID_FIRST_FACE)
        side = min(height, width) * image_scale * scale  # the downscaled image's shorter side at this scale
        scales = []
        while side >= 12:
            if 12.0 / (scale * PYRAMID_FACTOR) > min_face:  # the next level no longer looks for faces this small
                scales.append(scale * image_scale)
            scale, side = scale * PYRAMID_FACTOR, side * PYRAMID_FACTOR
        return scales

    def detect(
        self,
        pixels: np.ndarray,
        cores: ThreadPoolExecutor | None = None,
        scale: float = 1.0,
        min_face: float = 0,
    ) -> tuple[np.ndarray, np.ndarray]:
        """facenet-pytorch's three-stage cascade on one image: (N x 5 boxes x1, y1, x2, y2, score; N x 5 x 2).
        With `scale` < 1 P-Net looks for the faces of the image downscaled by it (a larger smallest face), while R-
        and O-Net read the image itself. `min_face`: the smallest face looked for, in the downscaled image's pixels;
        never below the detector's setting.

        With `cores` (a pool of `callers` threads, one per core, for networks loaded with one thread each) the
        pyramid's levels and the R- and O-Net batches are spread over them: these small networks keep two cores
        busier as two single-threaded passes than as one pass on two threads. Each face's result is the same
        either way."""
        no_faces = np.zeros((0, 5), np.float32), np.zeros((0, 5, 2), np.float32)
        pnet, rnet, onet = (self.forward(spec.name) for spec in self.networks())
        height, width = pixels.shape[:2]
        integral = _integral(pixels)

        # Stage 1: P-Net over a pyramid of scales; at scale s its 12-pixel window looks for faces of about 12 / s.
        levels = (cores.map if cores else map)(
            partial(_pnet_level, pnet, integral),
            self._pyramid(height, width, scale, max(min_face, self.settings.detector_min_face_size)),
        )
        candidates = [found for found in levels if len(found)]
        if not candidates:
            return no_faces
        boxes = np.concatenate(candidates)
        boxes = boxes[_nms(boxes[:, :4], boxes[:, 4], 0.7)]
        size = np.concatenate([boxes[:, 2:4] - boxes[:, 0:2]] * 2, axis=1)
        boxes = _square(np.concatenate([boxes[:, :4] + boxes[:, 5:9] * size, boxes[:, 4:5]], axis=1))

        # Stage 2: R-Net rescores and refines each candidate.
        crops, has_pixels = _crops(integral, boxes, R_NET_SIZE)
        if not len(crops):
            return no_faces
        offsets, probabilities = _in_parts(rnet, crops, cores, self.callers)
        passed = probabilities[:, 1] > THRESHOLDS[1]
        boxes = np.concatenate([boxes[has_pixels][passed, :4], probabilities[passed, 1:2]], axis=1)
        offsets = offsets[passed]
        keep = _nms(boxes[:, :4], boxes[:, 4], 0.7)
        boxes = _square(_regress(boxes[keep], offsets[keep]))

        # Stage 3: O-Net rescores, refines and places the landmarks.
        crops, has_pixels = _crops(integral, boxes, O_NET_SIZE)
        if not len(crops):
            return no_faces
        offsets, points, probabilities = _in_parts(onet, crops, cores, self.callers)
        passed = probabilities[:, 1] > THRESHOLDS[2]
        boxes = np.concatenate([boxes[has_pixels][passed, :4], probabilities[passed, 1:2]], axis=1)
        points, offsets = points[passed], offsets[passed]
        box_width, box_height = boxes[:, 2:3] - boxes[:, 0:1] + 1, boxes[:, 3:4] - boxes[:, 1:2] + 1
        landmarks = np.stack(
            [box_width * points[:, :5] + boxes[:, 0:1] - 1, box_height * points[:, 5:] + boxes[:, 1:2] - 1], axis=2
        )
        boxes = _regress(boxes, offsets)
        keep = _nms_min(boxes[:, :4], boxes[:, 4], 0.7)
        return boxes[keep], landmarks[keep]
