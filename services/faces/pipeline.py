"""The face pipeline: decode -> detect -> align -> embed + expression, with the models loaded once per process."""

import contextvars
import io
import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from functools import cached_property, partial
from typing import Any, ParamSpec, TypeVar

import numpy as np
from PIL import Image

from core.errors import FaceGateError
from core.metrics import INFERENCE_QUEUE, MODEL_STAGE
from core.settings import Settings
from services.faces.alignment import expression_crop, facenet_crop
from services.faces.detection import DetectedFace, FaceDetector
from services.faces.embedding import FaceEmbedder
from services.faces.expression import apparent_expression, expression_model
from services.faces.images import decode_image
from services.faces.quality import sharpness
from services.faces.runtime import export_missing, inference_threads

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")


@dataclass
class AnalyzedFace:
    detection: DetectedFace
    crop: np.ndarray  # 160x160 RGB, what was embedded
    embedding: np.ndarray  # 128 floats, unit length
    expression: dict[str, Any] | None  # DeepFace.analyze-style apparent expression; None when it is turned off

    @cached_property
    def sharpness(self) -> float:
        """Only the enrollment gate needs it, so identify never pays for it."""
        return sharpness(self.crop)

    def crop_jpeg(self) -> bytes:
        out = io.BytesIO()
        Image.fromarray(self.crop).save(out, format="JPEG", quality=90)
        return out.getvalue()


@dataclass
class _Waiting:
    """A decoded photo waiting for the inference thread, with where its answer goes."""

    image: np.ndarray
    context: contextvars.Context  # the caller's, so log lines carry its request id
    result: Future[list[AnalyzedFace]] = field(default_factory=Future)


class FacePipeline:
    def __init__(self, settings: Settings):
        self.settings = settings
        # MTCNN's small networks run single-threaded, spread over the cores by the pipeline (detect()): one photo's
        # pyramid levels and R-/O-Net batches side by side, or several photos side by side, one per core. Small
        # convolutions keep two cores busier that way than as one pass on two threads (docs/performance.md).
        self.cores = inference_threads(settings)
        self.detector = FaceDetector(settings.model_copy(update={"inference_threads": 1}), callers=self.cores)
        self._detection = ThreadPoolExecutor(max_workers=self.cores, thread_name_prefix="detection")
        self.embedder = FaceEmbedder(settings)
        self.expression = expression_model(settings)
        # Inference runs in two stages, each on one dedicated thread whichever request thread asks: detection,
        # then embedding and expression. Each network pass already spreads over every core; the two stages
        # overlap only so that a batch's detection fills the gaps of the previous batch's FaceNet pass.
        self._detect_turns = ThreadPoolExecutor(max_workers=1, thread_name_prefix="detect")
        self._inference = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inference")
        # Photos that arrive while a stage is busy wait here; its next turn takes them all, and the embedding
        # stage embeds their faces in one pass (cheaper per face than one pass each).
        self._waiting: deque[_Waiting] = deque()
        self._detected: deque[tuple[_Waiting, list[DetectedFace]]] = deque()
        self._load_lock = threading.Lock()
        self.loaded = False

    def run(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """Call fn on the inference thread and wait for its result (stage timings in bench/ use it too).

        It runs in the caller's context, so its log lines carry the caller's request id."""
        with INFERENCE_QUEUE.track_inprogress():
            return self._inference.submit(contextvars.copy_context().run, partial(fn, *args, **kwargs)).result()

    def load(self) -> None:
        self.run(self._load)

    def _load(self) -> None:
        with self._load_lock:  # the first detection turn or load(), whichever comes first
            self._load_models()

    def _load_models(self) -> None:
        if self.loaded:
            return
        models = (self.detector, self.embedder) + ((self.expression,) if self.settings.expression_enabled else ())
        if self.settings.inference_runtime == "onnx":  # one export for all that are missing, before any loads
            export_missing(self.settings, [spec for model in models for spec in model.networks()])
        for model in models:
            model.load()
        self.loaded = True
        log.info(
            "models loaded (%s): %s, %s (%s), expression %s",
            self.settings.inference_runtime,
            self.detector.name,
            self.embedder.name,
            self.settings.facenet_weights,
            self.expression.name if self.settings.expression_enabled else "off",
        )

    def decode(self, data: bytes) -> np.ndarray:
        with MODEL_STAGE.labels("decode").time():
            return decode_image(data, max_pixels=self.settings.max_image_pixels)

    def analyze_photo(self, data: bytes) -> list[AnalyzedFace]:
        """Every face in an uploaded photo, best detection score first (decoded on the caller's thread)."""
        return self.analyze(self.decode(data))

    def analyze(self, image: np.ndarray) -> list[AnalyzedFace]:
        """Every face in decoded RGB pixels, best detection score first."""
        (result,) = self._queue([image])
        return result.result()

    def analyze_photos(self, photos: Sequence[bytes]) -> list[Future[list[AnalyzedFace]]]:
        """analyze_photo for several photos at once, each answer (or its own error) a finished future: queued
        together, they go through the networks in as few passes as max_inference_batch allows. They are decoded
        one batch at a time, so no more than a batch of full-size images is held at once."""
        size = self.settings.max_inference_batch
        results: list[Future[list[AnalyzedFace]]] = []
        for first in range(0, len(photos), size):
            images: list[np.ndarray | Future[list[AnalyzedFace]]] = []
            for data in photos[first : first + size]:
                try:
                    images.append(self.decode(data))
                except FaceGateError as error:  # an undecodable photo fails alone
                    images.append(_failed(error))
            queued = iter(self._queue([i for i in images if isinstance(i, np.ndarray)]))
            results += [next(queued) if isinstance(i, np.ndarray) else i for i in images]
        return results

    def _queue(self, images: list[np.ndarray]) -> list[Future[list[AnalyzedFace]]]:
        """Queue the images for inference and wait until each has its answer."""
        waiting = [_Waiting(image, contextvars.copy_context()) for image in images]
        self._waiting.extend(waiting)
        with INFERENCE_QUEUE.track_inprogress():
            for _ in waiting:  # one turn per photo; an earlier turn may take it
                self._detect_turns.submit(self._detect_waiting)
            wait([w.result for w in waiting])
        return [w.result for w in waiting]

    def _detect_waiting(self) -> None:
        """One turn of the detection stage: the faces of each waiting photo, handed on to the embedding stage."""
        batch = _take(self._waiting, self.settings.max_inference_batch)
        if not batch:
            return
        try:
            self._load()
            if len(batch) > 1 and self.cores > 1:  # photos side by side, each on one core
                found = list(self._detection.map(partial(self._detect, cores=None), batch))
            else:  # each photo spread over the cores
                found = [self._detect(waiting, cores=self._spread) for waiting in batch]
            self._detected.extend((w, faces) for w, faces in zip(batch, found, strict=True) if faces is not None)
            self._inference.submit(self._embed_detected)
        except Exception as error:  # every photo of the turn gets the error; none is left waiting
            _fail(batch, error)

    def _embed_detected(self) -> None:
        """One turn of the embedding stage: the faces of every detected photo waiting, in one pass per network."""
        detected = _take(self._detected, self.settings.max_inference_batch)
        if not detected:
            return
        try:  # the detection turn that handed these on has loaded the models
            for (waiting, _), faces in zip(detected, self._embed(detected), strict=True):
                waiting.result.set_result(faces)
        except Exception as error:
            _fail([waiting for waiting, _ in detected], error)

    def _read_expressions(self, crops: np.ndarray) -> np.ndarray:
        with MODEL_STAGE.labels("expression").time():
            return self.expression.predict(crops)

    @property
    def _spread(self) -> ThreadPoolExecutor | None:
        return self._detection if self.cores > 1 else None

    def detect(self, image: np.ndarray) -> list[DetectedFace]:
        """Every face in decoded RGB pixels, best score first, the cascade spread over the cores (not to be
        called from the detection pool's own threads)."""
        return self.detector.predict(image, self._spread)

    def _detect(self, waiting: _Waiting, cores: ThreadPoolExecutor | None) -> list[DetectedFace] | None:
        """The photo's faces, or None when detection failed: that failure is the photo's own answer."""
        try:
            with MODEL_STAGE.labels("detect").time():
                return waiting.context.run(self.detector.predict, waiting.image, cores)
        except Exception as error:
            waiting.result.set_exception(error)
            return None

    def _embed(self, detected: list[tuple[_Waiting, list[DetectedFace]]]) -> list[list[AnalyzedFace]]:
        """Align, embed and read the expression of every face of the photos, each network in one pass."""
        pairs = [(waiting.image, face) for waiting, faces in detected for face in faces]
        if not pairs:
            return [[] for _ in detected]
        with MODEL_STAGE.labels("align").time():
            crops = np.stack([facenet_crop(image, face) for image, face in pairs])
        expressions = None
        if self.settings.expression_enabled:  # off: the model is neither loaded nor run, nothing is inferred
            with MODEL_STAGE.labels("align").time():
                expression_crops = np.stack([expression_crop(image, face) for image, face in pairs])
            expressions = self._detection.submit(self._read_expressions, expression_crops)  # beside FaceNet's pass
        with MODEL_STAGE.labels("embed").time():
            embeddings = self.embedder.predict(crops)
        read = [apparent_expression(p) for p in expressions.result()] if expressions else [None] * len(pairs)
        analyzed = iter(
            AnalyzedFace(face, crop, embedding, expression)
            for (_, face), crop, embedding, expression in zip(pairs, crops, embeddings, read, strict=True)
        )
        return [[next(analyzed) for _ in faces] for _, faces in detected]


T = TypeVar("T")


def _take(queue: deque[T], most: int) -> list[T]:
    """Up to `most` items from the front of a queue other threads append to."""
    taken: list[T] = []
    while queue and len(taken) < most:
        taken.append(queue.popleft())
    return taken


def _fail(batch: list[_Waiting], error: Exception) -> None:
    """Every photo of the turn not answered yet gets the error; none is left waiting."""
    for waiting in batch:
        if not waiting.result.done():
            waiting.result.set_exception(error)


def _failed(error: Exception) -> Future[list[AnalyzedFace]]:
    future: Future[list[AnalyzedFace]] = Future()
    future.set_exception(error)
    return future
