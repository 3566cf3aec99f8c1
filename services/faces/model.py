"""The shape every face model has: its networks given their weights in load(), called with predict(), warmed up."""

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Generic, TypeVar

import numpy as np

from core.settings import Settings
from services.faces import weights
from services.faces.runtime import Forward, NetworkSpec, load_forwards

Input = TypeVar("Input")
Output = TypeVar("Output")


class InferenceModel(ABC, Generic[Input, Output]):
    """One or more networks the pipeline runs, with their pre- and post-processing. Weights are resolved (checked,
    or downloaded) in load(), not at construction, so building the pipeline is cheap and a missing file fails at
    start-up with its own message."""

    name: str

    def __init__(self, settings: Settings, callers: int = 1) -> None:
        self.settings = settings
        self.callers = callers  # how many threads may run its networks at the same time
        self._forwards: dict[str, Forward] | None = None

    def forward(self, network: str) -> Forward:
        """The forward pass of the network named `network` (a NetworkSpec's name)."""
        if self._forwards is None:
            raise RuntimeError(f"{self.name} is not loaded: call load() first")
        return self._forwards[network]

    def load(self) -> None:
        self._forwards = load_forwards(self.networks(), self.settings, self.callers)
        # The first call pays for lazy initialisation (kernels, allocations): do it before a request does.
        self.predict(self.warm_up_input())

    def weight_path(self, weight: weights.WeightFile) -> Path:
        """A verified copy of one of its weight files (downloaded when missing)."""
        return weights.resolve(weight, self.settings.weights_dir, self.settings.data_dir / "models")

    def weight_digest(self, weight: weights.WeightFile) -> str:
        """A short name for the exact weights, part of its networks' file names."""
        return weights.file_digest(weight, self.settings.weights_dir, self.settings.data_dir / "models")

    @abstractmethod
    def networks(self) -> list[NetworkSpec]:
        """The networks predict() runs: their ONNX graphs and PyTorch builds, with their weights."""

    @abstractmethod
    def warm_up_input(self) -> Input:
        """A small input of the right shape."""

    @abstractmethod
    def predict(self, batch: Input) -> Output: ...


def blank_faces(count: int, size: int, channels: int | None = 3) -> np.ndarray:
    """Grey uint8 images to warm a model up with."""
    shape = (count, size, size) if channels is None else (count, size, size, channels)
    return np.full(shape, 128, dtype=np.uint8)
