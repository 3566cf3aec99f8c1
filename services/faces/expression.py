"""Expression stage: the apparent facial expression, with DeepFace's 7 labels and DeepFace.analyze's result shape.

Two models read a face crop: the default mini-Xception (oarriaga/face_classification, FER2013, converted from
Keras) and DeepFace's own emotion network through deepface's PyTorch backend, where its weights are supplied.
Both follow deepface's model interface (Demography) as well as the pipeline's (InferenceModel).
"""

from typing import Any

import cv2
import numpy as np
import torch
from deepface.models.Demography import Demography
from deepface.models.demography.DemographyUtils import EMOTION_LABELS

from core.settings import Settings
from services.faces import weights
from services.faces.alignment import EXPRESSION_SIZE
from services.faces.keras_convert import mini_xception_state_dict
from services.faces.model import InferenceModel, blank_faces
from services.faces.networks import MiniXception


def apparent_expression(probabilities: np.ndarray) -> dict[str, Any]:
    """DeepFace.analyze's emotion fields: a percentage per label and the dominant label."""
    percentages = {label: round(float(p) * 100, 2) for label, p in zip(EMOTION_LABELS, probabilities, strict=True)}
    return {"emotion": percentages, "dominant_emotion": EMOTION_LABELS[int(np.argmax(probabilities))]}


class ExpressionModel(InferenceModel[np.ndarray, np.ndarray], Demography):
    """predict(N x 64 x 64 uint8 grey faces) -> N x 7 probabilities in EMOTION_LABELS order."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.model_name = self.name  # deepface's name for it

    def warm_up_input(self) -> np.ndarray:
        return blank_faces(1, EXPRESSION_SIZE, channels=None)


class MiniXceptionExpression(ExpressionModel):
    """64x64 grey input scaled to [-1, 1]."""

    name = "mini_XCEPTION"

    def build(self) -> torch.nn.Module:
        model = MiniXception()
        path = weights.resolve(weights.MINI_XCEPTION, self.settings.weights_dir)
        model.load_state_dict(mini_xception_state_dict(path))
        return model

    @torch.inference_mode()
    def predict(self, batch: np.ndarray) -> np.ndarray:
        x = torch.from_numpy((batch.astype(np.float32) / 255.0 - 0.5) * 2.0).unsqueeze(1)
        return self.network(x).numpy()


class DeepFaceExpression(ExpressionModel):
    """DeepFace's emotion CNN (48x48 grey, [0, 1]) on deepface's PyTorch backend."""

    name = "Emotion"
    input_size = 48

    def build(self) -> torch.nn.Module:
        from deepface.models.demography.pytorch import Emotion

        model = Emotion.EmotionModel()
        path = weights.resolve(weights.DEEPFACE_EMOTION, self.settings.weights_dir)
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        return model

    @torch.inference_mode()
    def predict(self, batch: np.ndarray) -> np.ndarray:
        small = np.stack(
            [cv2.resize(face, (self.input_size, self.input_size), interpolation=cv2.INTER_AREA) for face in batch]
        )
        x = torch.from_numpy(small.astype(np.float32) / 255.0).unsqueeze(1)
        return self.network(x).numpy()


def expression_model(settings: Settings) -> ExpressionModel:
    return DeepFaceExpression(settings) if settings.expression_model == "deepface" else MiniXceptionExpression(settings)
