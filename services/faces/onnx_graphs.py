"""The pipeline's ONNX graphs, built with onnx's own graph API from the weight files (no torch): FaceNet and
mini-Xception from their Keras .h5 files (services.faces.keras_weights), MTCNN's P-, R- and O-Net from
facenet-pytorch's state dicts (services.faces.torch_weights).

Each graph is the operation-for-operation twin of the PyTorch network it stands for (services.faces.networks,
facenet-pytorch's MTCNN), which stays the source of truth in the dev install: tests/services/faces/test_onnx_graphs.py
checks them against each other. Inputs are NCHW float32 named "input", with any batch size.
"""

from collections.abc import Sequence
from os import PathLike
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from services.faces.keras_weights import KerasLayers, pytorch_layout, read_keras_layers
from services.faces.torch_weights import read_state_dict

ONNX_OPSET = 17
KERAS_BN_EPS = 1e-3  # Keras BatchNormalization's default

Dim = int | str  # a fixed size, or the name of a size known only at run time


class GraphBuilder:
    """Nodes and weights appended in order; every node has one output, named after the node."""

    def __init__(self, name: str, input_shape: Sequence[Dim]) -> None:
        self.name = name
        self.input_shape = input_shape
        self.nodes: list[onnx.NodeProto] = []
        self.weights: list[onnx.TensorProto] = []

    def _unique(self, stem: str) -> str:
        return f"{stem}_{len(self.nodes) + len(self.weights)}"

    def weight(self, array: np.ndarray, stem: str = "w") -> str:
        name = self._unique(stem)
        # np.array, not np.ascontiguousarray: that makes a scalar 1-d, and ONNX Runtime folds a Mul into the Conv
        # before it only for a scalar (or per-channel) factor.
        self.weights.append(numpy_helper.from_array(np.array(array, dtype=np.float32, order="C"), name))
        return name

    def constant(self, values: Sequence[int], stem: str = "shape") -> str:
        name = self._unique(stem)
        self.weights.append(numpy_helper.from_array(np.array(values, dtype=np.int64), name))
        return name

    def op(self, op_type: str, *inputs: str, **attributes: Any) -> str:
        output = self._unique(op_type.lower())
        self.nodes.append(helper.make_node(op_type, list(inputs), [output], name=output, **attributes))
        return output

    def conv(
        self,
        x: str,
        kernel: np.ndarray,
        bias: np.ndarray | None = None,
        stride: int = 1,
        padding: tuple[int, int] = (0, 0),
        groups: int = 1,
    ) -> str:
        """PyTorch's Conv2d: OIHW kernel, symmetric zero padding (height, width)."""
        inputs = [x, self.weight(kernel, "kernel")] + ([] if bias is None else [self.weight(bias, "bias")])
        pad_h, pad_w = padding
        return self.op(
            "Conv",
            *inputs,
            kernel_shape=list(kernel.shape[2:]),
            strides=[stride, stride],
            pads=[pad_h, pad_w, pad_h, pad_w],
            group=groups,
        )

    def batch_norm(self, x: str, params: dict[str, np.ndarray], eps: float = KERAS_BN_EPS) -> str:
        """Inference batch normalisation with a layer's weight (gamma), bias (beta), running mean and variance."""
        names = [self.weight(params[k], k) for k in ("weight", "bias", "running_mean", "running_var")]
        return self.op("BatchNormalization", x, *names, epsilon=eps)

    def max_pool(self, x: str, kernel: int, stride: int, *, ceil: bool = False, same: bool = False) -> str:
        """No padding (rounding the output size down, or up with `ceil` as PyTorch's ceil_mode), or Keras's 'same'
        (TF puts the odd padding pixel bottom/right, SAME_UPPER; padding never wins)."""
        padding: dict[str, Any] = {"auto_pad": "SAME_UPPER"} if same else {"ceil_mode": int(ceil)}
        return self.op("MaxPool", x, kernel_shape=[kernel, kernel], strides=[stride, stride], **padding)

    def dense(self, x: str, weight: np.ndarray, bias: np.ndarray | None = None) -> str:
        """PyTorch's Linear: (out, in) weight. Without a bias a MatMul, which ONNX Runtime merges with a batch norm
        after it (FaceNet's bottleneck) as it does not a Gemm."""
        if bias is None:
            return self.op("MatMul", x, self.weight(weight.T, "dense"))
        return self.op("Gemm", x, self.weight(weight, "dense"), self.weight(bias, "bias"), transB=1)

    def prelu(self, x: str, slope: np.ndarray, spatial: bool) -> str:
        """PyTorch's PReLU, one slope per channel (axis 1) of an NCHW (spatial) or NC input."""
        return self.op("PRelu", x, self.weight(slope.reshape((-1, 1, 1) if spatial else (-1,)), "slope"))

    def flatten_channels_last(self, x: str) -> str:
        """MTCNN's x.permute(0, 3, 2, 1) then view(N, -1): the dense layers read width-major, channels last."""
        return self.op("Flatten", self.op("Transpose", x, perm=[0, 3, 2, 1]), axis=1)

    def scaled_residual(self, x: str, residual: str, scale: float) -> str:
        scaled = residual if scale == 1.0 else self.op("Mul", residual, self.weight(np.array(scale), "scale"))
        return self.op("Add", scaled, x)

    def model(self, outputs: Sequence[tuple[str, str, Sequence[Dim]]]) -> onnx.ModelProto:
        """The graph with its (node, output name, shape) outputs, checked."""
        renamed = [helper.make_node("Identity", [node], [name]) for node, name, _ in outputs]
        graph = helper.make_graph(
            self.nodes + renamed,
            self.name,
            [helper.make_tensor_value_info("input", TensorProto.FLOAT, list(self.input_shape))],
            [helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape)) for _, name, shape in outputs],
            initializer=self.weights,
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", ONNX_OPSET)], producer_name="facegate")
        onnx.checker.check_model(model)
        return model


class _KerasLayerReader:
    """A Keras file's layers, each taken by name once in PyTorch layout; used() checks none is left over."""

    def __init__(self, path: str | PathLike) -> None:
        self.path = path
        self.layers: KerasLayers = read_keras_layers(path)
        self.taken: set[str] = set()

    def __call__(self, name: str) -> dict[str, np.ndarray]:
        self.taken.add(name)
        return pytorch_layout(self.layers[name])  # KeyError names a missing layer

    def check_all_used(self) -> None:
        unused = sorted(set(self.layers) - self.taken)
        if unused:
            raise ValueError(f"{self.path}: Keras layers the graph does not use: {unused}")


# --- FaceNet: facenet-pytorch's InceptionResnetV1 (services.faces.networks.build_facenet128) ---------------------


def _basic_conv(g: GraphBuilder, keras: _KerasLayerReader, x: str, layer: str, stride: int = 1,
                padding: tuple[int, int] = (0, 0)) -> str:  # fmt: skip
    """facenet-pytorch's BasicConv2d: bias-free conv, batch norm (eps 1e-3), ReLU."""
    x = g.conv(x, keras(layer)["weight"], stride=stride, padding=padding)
    return g.op("Relu", g.batch_norm(x, keras(f"{layer}_BatchNorm")))


def _residual_block(g: GraphBuilder, keras: _KerasLayerReader, x: str, block: str, branches: list[list[tuple]],
                    scale: float, relu: bool = True) -> str:  # fmt: skip
    """Block35/17/8: branches of BasicConv2d (Keras name suffix, padding), concatenated, a 1x1 conv with bias back
    to the input's width, scaled and added to the input."""
    outputs = []
    for number, convs in enumerate(branches):
        y = x
        for suffix, padding in convs:
            y = _basic_conv(g, keras, y, f"{block}_Branch_{number}_Conv2d_{suffix}", padding=padding)
        outputs.append(y)
    up = keras(f"{block}_Conv2d_1x1")
    out = g.scaled_residual(x, g.conv(g.op("Concat", *outputs, axis=1), up["weight"], up["bias"]), scale)
    return g.op("Relu", out) if relu else out


_BLOCK35 = [[("1x1", (0, 0))], [("0a_1x1", (0, 0)), ("0b_3x3", (1, 1))],
            [("0a_1x1", (0, 0)), ("0b_3x3", (1, 1)), ("0c_3x3", (1, 1))]]  # fmt: skip
_BLOCK17 = [[("1x1", (0, 0))], [("0a_1x1", (0, 0)), ("0b_1x7", (0, 3)), ("0c_7x1", (3, 0))]]
_BLOCK8 = [[("1x1", (0, 0))], [("0a_1x1", (0, 0)), ("0b_1x3", (0, 1)), ("0c_3x1", (1, 0))]]


def facenet128_graph(path: str | PathLike) -> onnx.ModelProto:
    """The Keras FaceNet (Inception-ResNet-v1, 128-d bottleneck): (N, 3, 160, 160) prewhitened RGB -> (N, 128)
    "embedding" before L2 normalisation."""
    keras = _KerasLayerReader(path)
    g = GraphBuilder("facenet128", ["batch", 3, 160, 160])
    x = _basic_conv(g, keras, "input", "Conv2d_1a_3x3", stride=2)
    x = _basic_conv(g, keras, x, "Conv2d_2a_3x3")
    x = _basic_conv(g, keras, x, "Conv2d_2b_3x3", padding=(1, 1))
    x = g.max_pool(x, 3, 2)
    x = _basic_conv(g, keras, x, "Conv2d_3b_1x1")
    x = _basic_conv(g, keras, x, "Conv2d_4a_3x3")
    x = _basic_conv(g, keras, x, "Conv2d_4b_3x3", stride=2)
    for i in range(1, 6):
        x = _residual_block(g, keras, x, f"Block35_{i}", _BLOCK35, 0.17)
    x = g.op(
        "Concat",
        _basic_conv(g, keras, x, "Mixed_6a_Branch_0_Conv2d_1a_3x3", stride=2),
        _basic_conv(
            g,
            keras,
            _basic_conv(
                g,
                keras,
                _basic_conv(g, keras, x, "Mixed_6a_Branch_1_Conv2d_0a_1x1"),
                "Mixed_6a_Branch_1_Conv2d_0b_3x3",
                padding=(1, 1),
            ),
            "Mixed_6a_Branch_1_Conv2d_1a_3x3",
            stride=2,
        ),  # fmt: skip
        g.max_pool(x, 3, 2),
        axis=1,
    )
    for i in range(1, 11):
        x = _residual_block(g, keras, x, f"Block17_{i}", _BLOCK17, 0.10)
    branch0 = _basic_conv(g, keras, x, "Mixed_7a_Branch_0_Conv2d_0a_1x1")
    branch1 = _basic_conv(g, keras, x, "Mixed_7a_Branch_1_Conv2d_0a_1x1")
    branch2 = _basic_conv(g, keras, x, "Mixed_7a_Branch_2_Conv2d_0a_1x1")
    branch2 = _basic_conv(g, keras, branch2, "Mixed_7a_Branch_2_Conv2d_0b_3x3", padding=(1, 1))
    x = g.op(
        "Concat",
        _basic_conv(g, keras, branch0, "Mixed_7a_Branch_0_Conv2d_1a_3x3", stride=2),
        _basic_conv(g, keras, branch1, "Mixed_7a_Branch_1_Conv2d_1a_3x3", stride=2),
        _basic_conv(g, keras, branch2, "Mixed_7a_Branch_2_Conv2d_1a_3x3", stride=2),
        g.max_pool(x, 3, 2),
        axis=1,
    )
    for i in range(1, 6):
        x = _residual_block(g, keras, x, f"Block8_{i}", _BLOCK8, 0.20)
    x = _residual_block(g, keras, x, "Block8_6", _BLOCK8, 1.0, relu=False)
    x = g.op("Flatten", g.op("GlobalAveragePool", x), axis=1)  # dropout is the identity at inference
    x = g.batch_norm(g.dense(x, keras("Bottleneck")["weight"]), keras("Bottleneck_BatchNorm"))
    keras.check_all_used()
    return g.model([(x, "embedding", ["batch", 128])])


# --- mini-Xception (services.faces.networks.MiniXception) ---------------------------------------------------------


def mini_xception_graph(path: str | PathLike, num_classes: int = 7) -> onnx.ModelProto:
    """oarriaga's FER2013 mini-Xception: (N, 1, 64, 64) grey in [-1, 1] -> (N, 7) "probabilities"."""
    keras = _KerasLayerReader(path)
    g = GraphBuilder("mini_xception", ["batch", 1, 64, 64])

    def conv_bn(x: str, conv: str, bn: str, relu: bool, stride: int = 1) -> str:
        x = g.batch_norm(g.conv(x, keras(conv)["weight"], stride=stride), keras(bn))
        return g.op("Relu", x) if relu else x

    def separable(x: str, layer: str) -> str:
        """Keras SeparableConv2D (3x3, 'same', no bias): a depthwise conv per channel, then a 1x1 conv."""
        params = keras(layer)
        depthwise = params["depthwise.weight"]
        x = g.conv(x, depthwise, padding=(1, 1), groups=depthwise.shape[0])
        return g.conv(x, params["pointwise.weight"])

    # Keras numbers auto-named layers per type in creation order; each block creates its shortcut conv first.
    x = conv_bn("input", "conv2d_1", "batch_normalization_1", relu=True)
    x = conv_bn(x, "conv2d_2", "batch_normalization_2", relu=True)
    for b in range(4):
        shortcut = conv_bn(x, f"conv2d_{3 + b}", f"batch_normalization_{3 + 3 * b}", relu=False, stride=2)
        x = g.op("Relu", g.batch_norm(separable(x, f"separable_conv2d_{1 + 2 * b}"),
                                      keras(f"batch_normalization_{4 + 3 * b}")))  # fmt: skip
        x = g.batch_norm(separable(x, f"separable_conv2d_{2 + 2 * b}"), keras(f"batch_normalization_{5 + 3 * b}"))
        x = g.op("Add", g.max_pool(x, 3, 2, same=True), shortcut)
    classifier = keras("conv2d_7")
    x = g.conv(x, classifier["weight"], classifier["bias"], padding=(1, 1))
    x = g.op("Softmax", g.op("Flatten", g.op("GlobalAveragePool", x), axis=1), axis=1)
    keras.check_all_used()
    return g.model([(x, "probabilities", ["batch", num_classes])])


# --- MTCNN: facenet-pytorch's PNet, RNet, ONet ---------------------------------------------------------------------


def _mtcnn_convs(g: GraphBuilder, state: dict[str, np.ndarray], x: str, pools: dict[int, tuple[int, int]],
                 count: int) -> str:  # fmt: skip
    """conv{i} (with bias) and PReLU prelu{i} for i in 1..count, after each i in `pools` a ceil-mode max-pool
    (kernel, stride)."""
    for i in range(1, count + 1):
        x = g.prelu(g.conv(x, state[f"conv{i}.weight"], state[f"conv{i}.bias"]), state[f"prelu{i}.weight"], True)
        if i in pools:
            x = g.max_pool(x, *pools[i], ceil=True)
    return x


def pnet_graph(path: str | PathLike) -> onnx.ModelProto:
    """P-Net, fully convolutional: (N, 3, H, W) -> "offsets" (N, 4, h, w), "probabilities" (N, 2, h, w)."""
    state = read_state_dict(path)
    g = GraphBuilder("mtcnn_pnet", ["batch", 3, "height", "width"])
    x = _mtcnn_convs(g, state, "input", {1: (2, 2)}, 3)
    probabilities = g.op("Softmax", g.conv(x, state["conv4_1.weight"], state["conv4_1.bias"]), axis=1)
    offsets = g.conv(x, state["conv4_2.weight"], state["conv4_2.bias"])
    out_h, out_w = "out_height", "out_width"
    return g.model(
        [(offsets, "offsets", ["batch", 4, out_h, out_w]), (probabilities, "probabilities", ["batch", 2, out_h, out_w])]
    )


def rnet_graph(path: str | PathLike) -> onnx.ModelProto:
    """R-Net: (N, 3, 24, 24) -> "offsets" (N, 4), "probabilities" (N, 2)."""
    state = read_state_dict(path)
    g = GraphBuilder("mtcnn_rnet", ["batch", 3, 24, 24])
    x = g.flatten_channels_last(_mtcnn_convs(g, state, "input", {1: (3, 2), 2: (3, 2)}, 3))
    x = g.prelu(g.dense(x, state["dense4.weight"], state["dense4.bias"]), state["prelu4.weight"], False)
    probabilities = g.op("Softmax", g.dense(x, state["dense5_1.weight"], state["dense5_1.bias"]), axis=1)
    offsets = g.dense(x, state["dense5_2.weight"], state["dense5_2.bias"])
    return g.model([(offsets, "offsets", ["batch", 4]), (probabilities, "probabilities", ["batch", 2])])


def onet_graph(path: str | PathLike) -> onnx.ModelProto:
    """O-Net: (N, 3, 48, 48) -> "offsets" (N, 4), "landmarks" (N, 10), "probabilities" (N, 2)."""
    state = read_state_dict(path)
    g = GraphBuilder("mtcnn_onet", ["batch", 3, 48, 48])
    x = g.flatten_channels_last(_mtcnn_convs(g, state, "input", {1: (3, 2), 2: (3, 2), 3: (2, 2)}, 4))
    x = g.prelu(g.dense(x, state["dense5.weight"], state["dense5.bias"]), state["prelu5.weight"], False)
    probabilities = g.op("Softmax", g.dense(x, state["dense6_1.weight"], state["dense6_1.bias"]), axis=1)
    offsets = g.dense(x, state["dense6_2.weight"], state["dense6_2.bias"])
    landmarks = g.dense(x, state["dense6_3.weight"], state["dense6_3.bias"])
    return g.model(
        [
            (offsets, "offsets", ["batch", 4]),
            (landmarks, "landmarks", ["batch", 10]),
            (probabilities, "probabilities", ["batch", 2]),
        ]
    )
