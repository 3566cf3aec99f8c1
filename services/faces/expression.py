"""Expression stage: the apparent facial expression, with DeepFace's 7 labels and DeepFace.analyze's result shape.

Two models read a face crop: the default mini-Xception (oarriaga/face_classification, FER2013, its ONNX graph built
from the Keras file) and DeepFace's own emotion network through deepface's PyTorch backend, where its weights are
supplied (the `deepface` extra: deepface and torch).
"""

from abc import abstractmethod
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from core.settings import Settings
from services.faces import weights
from services.faces.alignment import EXPRESSION_SIZE
from services.faces.model import InferenceModel, blank_faces
from services.faces.runtime import NetworkSpec, traced_graph

if TYPE_CHECKING:
    import onnx
    import torch

# deepface's emotion labels, in its models' output order (deepface.models.demography.DemographyUtils).
EMOTION_LABELS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]


def apparent_expression(probabilities: np.ndarray) -> dict[str, Any]:
    """DeepFace.analyze's emotion fields: a percentage per label and the dominant label."""
    percentages = {label: round(float(p) * 100, 2) for label, p in zip(EMOTION_LABELS, probabilities, strict=True)}
    return {"emotion": percentages, "dominant_emotion": EMOTION_LABELS[int(np.argmax(probabilities))]}


class ExpressionModel(InferenceModel[np.ndarray, np.ndarray]):
    """predict(N x 64 x 64 uint8 grey faces) -> N x 7 probabilities in EMOTION_LABELS order."""

    input_size: int  # the network's square grey input
    weights_file: weights.WeightFile

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.model_name = self.name  # deepface's name for it

    @property
    def network_name(self) -> str:
        return f"{self.name.lower()}-{self.weight_digest(self.weights_file)}"

    def networks(self) -> list[NetworkSpec]:
        return [NetworkSpec(self.network_name, self.graph, self.build)]

    @abstractmethod
    def graph(self) -> "onnx.ModelProto":
        """The ONNX graph with its weights: input (N, 1, input_size, input_size), output "probabilities"."""

    @abstractmethod
    def build(self) -> "torch.nn.Module":
        """The PyTorch network with its weights."""

    def warm_up_input(self) -> np.ndarray:
        return blank_faces(1, EXPRESSION_SIZE, channels=None)

    @abstractmethod
    def scaled(self, faces: np.ndarray) -> np.ndarray:
        """uint8 faces at input_size -> the network's float input values."""

    def predict(self, batch: np.ndarray) -> np.ndarray:
        if self.input_size != batch.shape[1]:
            size = (self.input_size, self.input_size)
            batch = np.stack([cv2.resize(face, size, interpolation=cv2.INTER_AREA) for face in batch])
        (probabilities,) = self.forward(self.network_name)(self.scaled(batch)[:, None])
        return probabilities


class MiniXceptionExpression(ExpressionModel):
    """64x64 grey input scaled to [-1, 1]."""

    name = "mini_XCEPTION"
    input_size = EXPRESSION_SIZE
    weights_file = weights.MINI_XCEPTION

    def graph(self) -> "onnx.ModelProto":
        from services.faces.onnx_graphs import mini_xception_graph

        return mini_xception_graph(self.weight_path(self.weights_file))

    def build(self) -> "torch.nn.Module":
        from services.faces.keras_convert import mini_xception_state_dict
        from services.faces.networks import MiniXception

        model = MiniXception()
        model.load_state_dict(mini_xception_state_dict(self.weight_path(self.weights_file)))
        return model

    def scaled(self, faces: np.ndarray) -> np.ndarray:
        return (faces.astype(np.float32) / 255.0 - 0.5) * 2.0


class DeepFaceExpression(ExpressionModel):
    """DeepFace's emotion CNN (48x48 grey, [0, 1]) on deepface's PyTorch backend."""

    name = "Emotion"
    input_size = 48
    weights_file = weights.DEEPFACE_EMOTION

    def graph(self) -> "onnx.ModelProto":
        return traced_graph(self.build(), (1, 1, self.input_size, self.input_size), ("probabilities",))

    def build(self) -> "torch.nn.Module":
        import torch
        from deepface.models.demography.pytorch import Emotion

        model = Emotion.EmotionModel()
        model.load_state_dict(torch.load(self.weight_path(self.weights_file), map_location="cpu", weights_only=True))
        return model

    def scaled(self, faces: np.ndarray) -> np.ndarray:
        return faces.astype(np.float32) / 255.0


def expression_model(settings: Settings) -> ExpressionModel:
    return DeepFaceExpression(settings) if settings.expression_model == "deepface" else MiniXceptionExpression(settings)
