"""The face pipeline: decode -> detect -> align -> embed + expression, with the models loaded once per process."""

import io
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch
from PIL import Image

from services import weights
from services.alignment import expression_crop, facenet_crop
from services.detection import DetectedFace, FaceDetector
from services.embedding import FaceEmbedder
from services.emotion import DeepFaceEmotion, MiniXceptionEmotion, analysis
from services.images import decode_image
from services.quality import sharpness
from services.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class AnalyzedFace:
    detection: DetectedFace
    crop: np.ndarray  # 160x160 RGB, what was embedded
    embedding: np.ndarray  # 128 floats, unit length
    expression: dict  # DeepFace.analyze-style emotion result

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
        self.detector = FaceDetector(min_face_size=settings.detector_min_face_size)
        self.embedder = FaceEmbedder(weights.resolve(weights.BY_NAME[settings.facenet_weights], settings.weights_dir))
        if settings.emotion_model == "deepface":
            self.emotion = DeepFaceEmotion(weights.resolve(weights.DEEPFACE_EMOTION, settings.weights_dir))
        else:
            self.emotion = MiniXceptionEmotion(weights.resolve(weights.MINI_XCEPTION, settings.weights_dir))
        # All inference runs on one dedicated thread, whichever request thread asks for it. Torch already
        # spreads one forward pass over every core; and each calling thread gets its own OpenMP team, whose
        # idle spinning slows the others: models called from many request threads ran several times slower.
        self._inference = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inference")

    def run(self, fn, *args, **kwargs):
        """Call fn on the inference thread and wait for its result (stage timings in bench/ use it too)."""
        return self._inference.submit(fn, *args, **kwargs).result()

    def load(self) -> None:
        self.run(self._load)

    def _load(self) -> None:
        torch.set_num_threads(self.settings.torch_threads or os.cpu_count() or 1)
        for model in (self.detector, self.embedder, self.emotion):
            model.load()
        log.info("models loaded: MTCNN, FaceNet-128 (%s), expression %s",
                 self.embedder.weights_path.name, self.emotion.model_name)

    def decode(self, data: bytes) -> np.ndarray:
        return decode_image(data, max_pixels=self.settings.max_image_pixels)

    def analyze(self, image: np.ndarray) -> list[AnalyzedFace]:
        """Every face in the image, best detection score first."""
        return self.run(self._analyze, image)

    def _analyze(self, image: np.ndarray) -> list[AnalyzedFace]:
        faces = self.detector.predict(image)
        if not faces:
            return []
        crops = np.stack([facenet_crop(image, face) for face in faces])
        embeddings = self.embedder.predict(crops)
        probabilities = self.emotion.predict(np.stack([expression_crop(image, face) for face in faces]))
        return [
            AnalyzedFace(face, crop, embedding, analysis(p))
            for face, crop, embedding, p in zip(faces, crops, embeddings, probabilities)
        ]
