"""Emotion stage: the apparent facial expression, with DeepFace's 7 labels and DeepFace.analyze's result shape.

Two models read a face crop: the default mini-Xception (oarriaga/face_classification, FER2013, converted from
Keras) and DeepFace's own emotion network through deepface's PyTorch backend, where its weights are supplied.
"""

from pathlib import Path

import cv2
import numpy as np
import torch
from deepface.models.Demography import Demography
from deepface.models.demography.DemographyUtils import EMOTION_LABELS

from services.keras_convert import mini_xception_state_dict
from services.networks import MiniXception


def analysis(probabilities: np.ndarray) -> dict:
    """DeepFace.analyze's emotion fields: a percentage per label and the dominant label."""
    percentages = {label: round(float(p) * 100, 2) for label, p in zip(EMOTION_LABELS, probabilities)}
    return {"emotion": percentages, "dominant_emotion": EMOTION_LABELS[int(np.argmax(probabilities))]}


class EmotionModel(Demography):
    """A deepface-style emotion model with load() and predict(N x 64 x 64 uint8 grey faces) -> N x 7."""

    def __init__(self, weights_path: Path):
        self.weights_path = weights_path
        self.model: torch.nn.Module | None = None

    def network(self) -> torch.nn.Module:
        raise NotImplementedError

    def weights(self) -> dict:
        raise NotImplementedError

    def load(self) -> None:
        model = self.network()
        model.load_state_dict(self.weights())
        self.model = model.eval()


class MiniXceptionEmotion(EmotionModel):
    """64x64 grey input scaled to [-1, 1]."""

    model_name = "mini_XCEPTION"

    def network(self) -> torch.nn.Module:
        return MiniXception()

    def weights(self) -> dict:
        return mini_xception_state_dict(self.weights_path)

    @torch.inference_mode()
    def predict(self, faces: np.ndarray) -> np.ndarray:
        """N x 64 x 64 uint8 grey faces -> N x 7 probabilities in EMOTION_LABELS order."""
        x = torch.from_numpy((faces.astype(np.float32) / 255.0 - 0.5) * 2.0).unsqueeze(1)
        return self.model(x).numpy()


class DeepFaceEmotion(EmotionModel):
    """DeepFace's emotion CNN (48x48 grey, [0, 1]) on deepface's PyTorch backend."""

    model_name = "Emotion"
    input_size = 48

    def network(self) -> torch.nn.Module:
        from deepface.models.demography.pytorch import Emotion

        return Emotion.EmotionModel()

    def weights(self) -> dict:
        return torch.load(self.weights_path, map_location="cpu", weights_only=True)

    @torch.inference_mode()
    def predict(self, faces: np.ndarray) -> np.ndarray:
        small = np.stack([cv2.resize(face, (self.input_size, self.input_size), interpolation=cv2.INTER_AREA)
                          for face in faces])
        x = torch.from_numpy(small.astype(np.float32) / 255.0).unsqueeze(1)
        return self.model(x).numpy()
