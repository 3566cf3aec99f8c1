"""The face pipeline: decode -> detect -> align -> embed + expression, with the models loaded once per process.
Detection and embedding are the two stages of a batcher (services/faces/batching.py), which queues the callers'
photos and takes them through in batches; what each stage computes is here."""

import io
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from functools import cached_property, partial
from typing import Any, ParamSpec, TypeVar

import numpy as np
from PIL import Image

from core.errors import FaceGateError
from core.metrics import INFERENCE_QUEUE, MODEL_STAGE
from core.settings import Settings
from services.faces.alignment import expression_crop, facenet_crop
from services.faces.batching import Batcher, Job, Stage, failed
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
    frame: tuple[int, int]  # (height, width) of the photo it was found in

    @cached_property
    def sharpness(self) -> float:
        """Only the enrollment gate needs it, so identify never pays for it."""
        return sharpness(self.crop)

    def crop_jpeg(self) -> bytes:
        out = io.BytesIO()
        Image.fromarray(self.crop).save(out, format="JPEG", quality=90)
        return out.getvalue()


@dataclass(frozen=True)
class Photo:
    """A decoded photo on its way through the stages, with the caller's smallest face (pixels) when it gave one."""

    pixels: np.ndarray
    min_face_size: int | None = None


# A photo's job: its faces once detected, then its analyzed faces.
PhotoJob = Job[Photo, list[AnalyzedFace]]


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
        # overlap only so that a batch's detection fills the gaps of the previous batch's FaceNet pass, and the
        # embedding stage embeds the faces of all the photos of its turn in one pass.
        self._embedding = Stage[Photo, list[AnalyzedFace]]("inference", self._embed_turn)
        self._batcher = Batcher(
            [Stage[Photo, list[AnalyzedFace]]("detect", self._detect_turn), self._embedding],
            most=settings.max_inference_batch,
        )
        self._load_lock = threading.Lock()
        self.loaded = False

    def run(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """Call fn on the inference thread and wait for its result (stage timings in bench/ use it too).

        It runs in the caller's context, so its log lines carry the caller's request id."""
        with INFERENCE_QUEUE.track_inprogress():
            return self._embedding.run(fn, *args, **kwargs)

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

    def analyze_photo(self, data: bytes, min_face_size: int | None = None) -> list[AnalyzedFace]:
        """Every face in an uploaded photo, best detection score first (decoded on the caller's thread). Faces
        smaller than `min_face_size` are left out (FaceDetector.predict)."""
        return self.analyze(self.decode(data), min_face_size)

    def analyze(self, image: np.ndarray, min_face_size: int | None = None) -> list[AnalyzedFace]:
        """Every face in decoded RGB pixels, best detection score first."""
        (result,) = self._queue([Photo(image, min_face_size)])
        return result.result()

    def analyze_photos(self, photos: Sequence[bytes]) -> list[Future[list[AnalyzedFace]]]:
        """analyze_photo for several photos at once, each answer (or its own error) a finished future: queued
        together, they go through the networks in as few passes as max_inference_batch allows. They are decoded
        one batch at a time, so no more than a batch of full-size images is held at once."""
        size = self.settings.max_inference_batch
        results: list[Future[list[AnalyzedFace]]] = []
        for first in range(0, len(photos), size):
            decoded: list[Photo | Future[list[AnalyzedFace]]] = []
            for data in photos[first : first + size]:
                try:
                    decoded.append(Photo(self.decode(data)))
                except FaceGateError as error:  # an undecodable photo fails alone
                    decoded.append(failed(error))
            queued = iter(self._queue([d for d in decoded if isinstance(d, Photo)]))
            results += [next(queued) if isinstance(d, Photo) else d for d in decoded]
        return results

    def _queue(self, photos: list[Photo]) -> list[Future[list[AnalyzedFace]]]:
        """Queue the photos for inference and wait until each has its answer."""
        with INFERENCE_QUEUE.track_inprogress():
            results = self._batcher.submit(photos)
            wait(results)
        return results

    def _detect_turn(self, batch: list[PhotoJob]) -> list[list[DetectedFace] | None]:
        """The detection stage's work: the faces of each photo of the turn."""
        self._load()
        if len(batch) > 1 and self.cores > 1:  # photos side by side, each on one core
            return list(self._detection.map(partial(self._detect, cores=None), batch))
        return [self._detect(job, cores=self._spread) for job in batch]  # each photo spread over the cores

    def _embed_turn(self, batch: list[PhotoJob]) -> list[list[AnalyzedFace]]:
        """The embedding stage's work (the detection turn that handed these on has loaded the models)."""
        return self._embed([(job.item.pixels, job.value) for job in batch])

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

    def _detect(self, job: PhotoJob, cores: ThreadPoolExecutor | None) -> list[DetectedFace] | None:
        """The photo's faces, or None when detection failed: that failure is the photo's own answer."""
        try:
            with MODEL_STAGE.labels("detect").time():
                return job.context.run(self.detector.predict, job.item.pixels, cores, job.item.min_face_size)
        except Exception as error:
            job.fail(error)
            return None

    def _embed(self, detected: list[tuple[np.ndarray, list[DetectedFace]]]) -> list[list[AnalyzedFace]]:
        """Align, embed and read the expression of every face of the photos, each network in one pass."""
        pairs = [(image, face) for image, faces in detected for face in faces]
        if not pairs:
            return [[] for _ in detected]
        with MODEL_STAGE.labels("align").time():
            crops = np.stack([facenet_crop(image, face) for image, face in pairs])
            expression_crops = (  # off: the expression model is neither loaded nor run
                np.stack([expression_crop(image, face) for image, face in pairs])
                if self.settings.expression_enabled
                else None
            )
        expressions = None
        if expression_crops is not None:
            expressions = self._detection.submit(self._read_expressions, expression_crops)  # beside FaceNet's pass
        with MODEL_STAGE.labels("embed").time():
            embeddings = self.embedder.predict(crops)
        read = [apparent_expression(p) for p in expressions.result()] if expressions else [None] * len(pairs)
        analyzed = iter(
            AnalyzedFace(face, crop, embedding, expression, image.shape[:2])
            for (image, face), crop, embedding, expression in zip(pairs, crops, embeddings, read, strict=True)
        )
        return [[next(analyzed) for _ in faces] for _, faces in detected]
