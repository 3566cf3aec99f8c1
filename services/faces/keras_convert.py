"""Keras .h5 weights -> PyTorch state dicts for services.faces.networks (the source of truth the ONNX graphs of
services.faces.onnx_graphs are checked against), using h5py and numpy (no TensorFlow)."""

from os import PathLike

import numpy as np
import torch
from torch import nn

from services.faces.keras_weights import pytorch_layout, read_keras_layers
from services.faces.networks import build_facenet128


def _torch_params(weights: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """One Keras layer's weights as the parameters and buffers of the matching PyTorch module."""
    tensors = {k: torch.from_numpy(v) for k, v in pytorch_layout(weights).items()}
    if "running_mean" in tensors:
        tensors["num_batches_tracked"] = torch.tensor(0)
    return tensors


def _state_dict(path: str | PathLike, module_to_layer: dict[str, str]) -> dict[str, torch.Tensor]:
    """State dict from a {PyTorch module name: Keras layer name} map; every Keras layer with weights must be used."""
    layers = read_keras_layers(path)
    unused = sorted(set(layers) - set(module_to_layer.values()))
    if unused:
        raise ValueError(f"{path}: Keras layers with no PyTorch counterpart: {unused}")
    return {
        f"{module}.{param}": tensor
        for module, layer in module_to_layer.items()
        for param, tensor in _torch_params(layers[layer]).items()  # KeyError names a missing layer
    }


# facenet-pytorch top-level modules -> Keras name stems; the repeat_* Sequentials hold numbered residual blocks.
_FACENET_REPEATS = {"repeat_1": "Block35", "repeat_2": "Block17", "repeat_3": "Block8"}
_FACENET_SINGLE = {"block8": "Block8_6"}  # the last, ReLU-free Block8 sits outside repeat_3


def _facenet_keras_name(module: str, conv: nn.Conv2d) -> str:
    """Keras layer name of a conv in facenet-pytorch's InceptionResnetV1, e.g.
    'conv2d_1a.conv' -> 'Conv2d_1a_3x3', 'repeat_1.0.branch2.1.conv' -> 'Block35_1_Branch_2_Conv2d_0b_3x3',
    'repeat_2.3.conv2d' -> 'Block17_4_Conv2d_1x1', 'mixed_6a.branch1.2.conv' -> 'Mixed_6a_Branch_1_Conv2d_1a_3x3'.
    """
    kernel = "{}x{}".format(*conv.kernel_size)
    head, *rest = module.removesuffix(".conv").split(".")
    if head in _FACENET_REPEATS:
        block = f"{_FACENET_REPEATS[head]}_{int(rest.pop(0)) + 1}"
    else:
        block = _FACENET_SINGLE.get(head, head.capitalize())  # conv2d_1a -> Conv2d_1a, mixed_6a -> Mixed_6a
    if not rest:  # stem conv
        return f"{block}_{kernel}"
    if rest == ["conv2d"]:  # the residual blocks' 1x1 up-projection
        return f"{block}_Conv2d_{kernel}"
    branch, *position = rest
    # TF-slim scopes: the stride-2 reduction conv is '1a'; others count 0a, 0b, ... along the branch,
    # except a single-conv stride-1 branch, which has no tag.
    if conv.stride == (2, 2):
        tag = "1a_"
    elif position:
        tag = f"0{'abc'[int(position[0])]}_"
    else:
        tag = ""
    return f"{block}_Branch_{branch.removeprefix('branch')}_Conv2d_{tag}{kernel}"


def _facenet_module_to_layer() -> dict[str, str]:
    model = build_facenet128()
    names = {"last_linear": "Bottleneck", "last_bn": "Bottleneck_BatchNorm"}
    for module, layer in model.named_modules():
        if isinstance(layer, nn.Conv2d):
            names[module] = _facenet_keras_name(module, layer)
            if module.endswith(".conv"):  # BasicConv2d: conv, then its BatchNorm 'bn'
                names[module.removesuffix("conv") + "bn"] = names[module] + "_BatchNorm"
    return names


def facenet_state_dict(path: str | PathLike) -> dict[str, torch.Tensor]:
    """Full state dict for services.faces.networks.build_facenet128() from the Keras FaceNet (nyoki-mtl / deepface) h5."""
    return _state_dict(path, _facenet_module_to_layer())


def _mini_xception_module_to_layer() -> dict[str, str]:
    # Keras numbers auto-named layers per type in creation order; each block creates its shortcut conv first.
    names = {
        "conv1": "conv2d_1",
        "bn1": "batch_normalization_1",
        "conv2": "conv2d_2",
        "bn2": "batch_normalization_2",
        "classifier": "conv2d_7",
    }
    for b in range(4):
        names |= {
            f"blocks.{b}.shortcut_conv": f"conv2d_{3 + b}",
            f"blocks.{b}.shortcut_bn": f"batch_normalization_{3 + 3 * b}",
            f"blocks.{b}.sep1": f"separable_conv2d_{1 + 2 * b}",
            f"blocks.{b}.bn1": f"batch_normalization_{4 + 3 * b}",
            f"blocks.{b}.sep2": f"separable_conv2d_{2 + 2 * b}",
            f"blocks.{b}.bn2": f"batch_normalization_{5 + 3 * b}",
        }
    return names


def mini_xception_state_dict(path: str | PathLike) -> dict[str, torch.Tensor]:
    """Full state dict for services.faces.networks.MiniXception from oarriaga's fer2013_mini_XCEPTION h5."""
    return _state_dict(path, _mini_xception_module_to_layer())
