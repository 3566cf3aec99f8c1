"""Embed stage: FaceNet Inception-ResNet-v1 from the Keras weights (facenet-pytorch's network in the dev install)."""

from typing import TYPE_CHECKING

import numpy as np

from services.faces import weights
from services.faces.alignment import FACENET_SIZE
from services.faces.model import InferenceModel, blank_faces
from services.faces.runtime import NetworkSpec

if TYPE_CHECKING:
    import onnx
    import torch

EMBEDDING_DIM = 128


def prewhiten(crops: np.ndarray) -> np.ndarray:
    """Per-image standardisation the Keras FaceNet was trained with: (x - mean) / max(std, 1/sqrt(N))."""
    x = crops.astype(np.float32)
    axes = tuple(range(1, x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    std = np.maximum(x.std(axis=axes, keepdims=True), np.float32(1.0 / np.sqrt(x[0].size)))
    return (x - mean) / std


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.linalg.norm(vectors, axis=-1, keepdims=True).clip(min=1e-12)


class FaceEmbedder(InferenceModel[np.ndarray, np.ndarray]):
    name = "FaceNet-128"

    @property
    def weights_file(self) -> weights.WeightFile:
        return weights.BY_NAME[self.settings.facenet_weights]

    @property
    def network_name(self) -> str:
        return f"facenet128-{self.weight_digest(self.weights_file)}"

    def networks(self) -> list[NetworkSpec]:
        precision = self.settings.embedding_precision
        return [NetworkSpec(self.network_name, self.graph, self.build, precision=precision)]

    def graph(self) -> "onnx.ModelProto":
        from services.faces.onnx_graphs import facenet128_graph

        return facenet128_graph(self.weight_path(self.weights_file))

    def build(self) -> "torch.nn.Module":
        from services.faces.keras_convert import facenet_state_dict
        from services.faces.networks import build_facenet128

        model = build_facenet128()
        model.load_state_dict(facenet_state_dict(self.weight_path(self.weights_file)))
        return model

    def warm_up_input(self) -> np.ndarray:
        return blank_faces(1, FACENET_SIZE)

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """N x 160 x 160 x 3 uint8 RGB crops -> N x 128 unit-length float32 embeddings."""
        if len(batch) == 0:
            return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
        (raw,) = self.forward(self.network_name)(prewhiten(batch).transpose(0, 3, 1, 2))
        return l2_normalise(raw).astype(np.float32)
