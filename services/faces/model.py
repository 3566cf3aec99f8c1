"""The shape every face model has: built and given its weights in load(), called with predict(), warmed up once."""

from abc import ABC, abstractmethod
from typing import Generic, TypeVar

import numpy as np
import torch

from core.settings import Settings

Input = TypeVar("Input")
Output = TypeVar("Output")


class InferenceModel(ABC, Generic[Input, Output]):
    """A network the pipeline runs. Weights are resolved (checked, or downloaded) in load(), not at construction,
    so building the pipeline is cheap and a missing file fails at start-up with its own message."""

    name: str

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._network: torch.nn.Module | None = None

    @property
    def network(self) -> torch.nn.Module:
        if self._network is None:
            raise RuntimeError(f"{self.name} is not loaded: call load() first")
        return self._network

    def load(self) -> None:
        self._network = self.build().eval()
        # The first call pays for lazy initialisation (oneDNN kernels, allocations): do it before a request does.
        self.predict(self.warm_up_input())

    @abstractmethod
    def build(self) -> torch.nn.Module:
        """The network with its weights."""

    @abstractmethod
    def warm_up_input(self) -> Input:
        """A small input of the right shape."""

    @abstractmethod
    def predict(self, batch: Input) -> Output: ...


def blank_faces(count: int, size: int, channels: int | None = 3) -> np.ndarray:
    """Grey uint8 images to warm a model up with."""
    shape = (count, size, size) if channels is None else (count, size, size, channels)
    return np.full(shape, 128, dtype=np.uint8)
