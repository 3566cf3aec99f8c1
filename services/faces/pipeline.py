"""The face pipeline: decode -> detect -> align -> embed + expression, with the models loaded once per process."""

import contextvars
import io
import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property, partial
from typing import Any, ParamSpec, TypeVar

import numpy as np
import torch
from PIL import Image

from core.metrics import INFERENCE_QUEUE, MODEL_STAGE
from core.settings import Settings
from services.faces.alignment import expression_crop, facenet_crop
from services.faces.detection import DetectedFace, FaceDetector
from services.faces.embedding import FaceEmbedder
from services.faces.expression import apparent_expression, expression_model
from services.faces.images import decode_image
from services.faces.quality import sharpness

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")


@dataclass
class AnalyzedFace:
    detection: DetectedFace
    crop: np.ndarray  # 160x160 RGB, what was embedded
    embedding: np.ndarray  # 128 floats, unit length
    expression: dict[str, Any]  # DeepFace.analyze-style apparent expression

    @cached_property
    def sharpness(self) -> float:
        """Only the enrollment gate needs it, so identify never pays for it."""
        return sharpness(self.crop)

    def crop_jpeg(self) -> bytes:
        out = io.BytesIO()
        Image.fromarray(self.crop).save(out, format="JPEG", quality=90)
        return out.getvalue()


class FacePipeline:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.detector = FaceDetector(settings)
        self.embedder = FaceEmbedder(settings)
        self.expression = expression_model(settings)
        # All inference runs on one dedicated thread, whichever request thread asks for it. Torch already
        # spreads one forward pass over every core; and each calling thread gets its own OpenMP team, whose
        # idle spinning slows the others: models called from many request threads ran several times slower.
        self._inference = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inference")
        self.loaded = False

    def run(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """Call fn on the inference thread and wait for its result (stage timings in bench/ use it too).

        It runs in the caller's context, so its log lines carry the caller's request id."""
        with INFERENCE_QUEUE.track_inprogress():
            return self._inference.submit(contextvars.copy_context().run, partial(fn, *args, **kwargs)).result()

    def load(self) -> None:
        self.run(self._load)

    def _load(self) -> None:
        if self.loaded:
            return
        torch.set_num_threads(self.settings.torch_threads or os.cpu_count() or 1)
        for model in (self.detector, self.embedder, self.expression):
            model.load()
        self.loaded = True
        log.info(
            "models loaded: %s, %s (%s), expression %s",
            self.detector.name,
            self.embedder.name,
            self.settings.facenet_weights,
            self.expression.name,
        )

    def decode(self, data: bytes) -> np.ndarray:
        with MODEL_STAGE.labels("decode").time():
            return decode_image(data, max_pixels=self.settings.max_image_pixels)

    def analyze_photo(self, data: bytes) -> list[AnalyzedFace]:
        """Every face in an uploaded photo, best detection score first."""
        return self.analyze(self.decode(data))

    def analyze(self, image: np.ndarray) -> list[AnalyzedFace]:
        """Every face in decoded RGB pixels, best detection score first."""
        return self.run(self._analyze, image)

    def _analyze(self, image: np.ndarray) -> list[AnalyzedFace]:
        self._load()
        with MODEL_STAGE.labels("detect").time():
            faces = self.detector.predict(image)
        if not faces:
            return []
        with MODEL_STAGE.labels("align").time():
            crops = np.stack([facenet_crop(image, face) for face in faces])
            expression_crops = np.stack([expression_crop(image, face) for face in faces])
        with MODEL_STAGE.labels("embed").time():
            embeddings = self.embedder.predict(crops)
        with MODEL_STAGE.labels("expression").time():
            probabilities = self.expression.predict(expression_crops)
        return [
            AnalyzedFace(face, crop, embedding, apparent_expression(p))
            for face, crop, embedding, p in zip(faces, crops, embeddings, probabilities, strict=True)
        ]
