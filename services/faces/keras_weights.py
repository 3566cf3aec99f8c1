"""Keras .h5 weights read with h5py alone (no TensorFlow, no torch): the layers' arrays in PyTorch's layout, which
is also ONNX's."""

from os import PathLike

import h5py
import numpy as np

KerasLayers = dict[str, dict[str, np.ndarray]]


def _attr_strings(group: h5py.Group, name: str) -> list[str]:
    """A Keras list attribute; Keras splits long ones into name0, name1, ... (HDF5's 64 KiB header limit)."""
    if name in group.attrs:
        chunks = [group.attrs[name]]
    else:
        chunks, i = [], 0
        while f"{name}{i}" in group.attrs:
            chunks.append(group.attrs[f"{name}{i}"])
            i += 1
    return [s.decode() if isinstance(s, bytes) else str(s) for chunk in chunks for s in chunk]


def read_keras_layers(path: str | PathLike) -> KerasLayers:
    """Layer name -> {weight name ('kernel', 'gamma', 'depthwise_kernel', ...) -> array} for every layer with weights.

    Reads a full-model file (weights under 'model_weights') or a model.save_weights() file (layers at the root).
    """
    try:
        f = h5py.File(path, "r")
    except FileNotFoundError:  # a missing file is not a format error
        raise
    except OSError as e:
        raise ValueError(f"{path} is not a Keras h5 weights file (not HDF5)") from e
    with f:
        root = f["model_weights"] if "model_weights" in f else f
        layer_names = _attr_strings(root, "layer_names")
        if not layer_names:
            raise ValueError(f"{path} is not a Keras h5 weights file (no 'layer_names' attribute)")
        layers = {name: _layer_weights(root[name]) for name in layer_names}
    return {name: weights for name, weights in layers.items() if weights}


def _layer_weights(group: h5py.Group) -> dict[str, np.ndarray]:
    """A layer group's datasets by short name: '<scope>/kernel:0' (Keras 2) or '<scope>/kernel' -> 'kernel'."""
    weights = {}

    def add(name: str, obj: h5py.HLObject) -> None:  # must return None, or visititems stops
        if isinstance(obj, h5py.Dataset):
            weights[name.rsplit("/", 1)[-1].removesuffix(":0")] = obj[()]

    group.visititems(add)
    return weights


def pytorch_layout(weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """One Keras layer's weights as the float32 parameters and buffers of the matching PyTorch module (OIHW kernels,
    (out, in) dense kernels), the layout ONNX's Conv and Gemm take too."""
    if "moving_mean" in weights:  # BatchNormalization; scale=False / center=False layers lack gamma / beta
        mean = weights["moving_mean"]
        params = {
            "weight": weights.get("gamma", np.ones_like(mean)),
            "bias": weights.get("beta", np.zeros_like(mean)),
            "running_mean": mean,
            "running_var": weights["moving_variance"],
        }
    elif "depthwise_kernel" in weights:  # SeparableConv2D; depthwise HWC1 -> (C, 1, H, W), groups=C
        params = {
            "depthwise.weight": weights["depthwise_kernel"].transpose(2, 3, 0, 1),
            "pointwise.weight": weights["pointwise_kernel"].transpose(3, 2, 0, 1),
        }
    else:  # Conv2D kernel HWIO -> OIHW, Dense kernel (in, out) -> (out, in)
        kernel = weights["kernel"]
        params = {"weight": kernel.T if kernel.ndim == 2 else kernel.transpose(3, 2, 0, 1)}
        if "bias" in weights:
            params["bias"] = weights["bias"]
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in params.items()}
