"""The ONNX graphs built without torch (services.faces.onnx_graphs) reproduce the Keras models' reference outputs and
the PyTorch networks they stand for; MTCNN's weights are read without torch exactly as torch.load reads them."""

import os
import shutil
from pathlib import Path

import h5py
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from facenet_pytorch.models.mtcnn import ONet, PNet, RNet

from services.faces import onnx_graphs, weights
from services.faces.keras_convert import facenet_state_dict, mini_xception_state_dict
from services.faces.networks import MiniXception, build_facenet128
from services.faces.torch_weights import read_state_dict

pytestmark = pytest.mark.models

WEIGHTS_DIR = Path(os.environ["FACEGATE_WEIGHTS_DIR"])  # set by tests/conftest.py
FACENET = WEIGHTS_DIR / weights.FACENET_KERAS.name
MINI_XCEPTION = WEIGHTS_DIR / weights.MINI_XCEPTION.name
MTCNN = {"pnet": weights.MTCNN_PNET, "rnet": weights.MTCNN_RNET, "onet": weights.MTCNN_ONET}


def mtcnn_weights(network: str) -> Path:
    """facenet-pytorch's own copy (the dev install has the package), checked against the published sha256."""
    return weights.resolve(MTCNN[network], WEIGHTS_DIR)


def run(graph: onnx.ModelProto, inputs: np.ndarray) -> list[np.ndarray]:
    session = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": inputs.astype(np.float32)})


@pytest.mark.parametrize("network", sorted(MTCNN))
def test_mtcnn_weights_read_without_torch_equal_torch_load(network):
    path = mtcnn_weights(network)
    arrays, tensors = read_state_dict(path), torch.load(path, weights_only=True)
    assert list(arrays) == list(tensors)
    for name, tensor in tensors.items():
        assert arrays[name].dtype == np.float32
        np.testing.assert_array_equal(arrays[name], tensor.numpy())


def test_a_file_that_is_no_state_dict_is_refused(tmp_path):
    not_torch = tmp_path / "pnet.pt"
    not_torch.write_bytes(b"\x80\x02K\x01.")  # a pickle of the number 1
    with pytest.raises(ValueError, match="not a legacy-format torch.save file"):
        read_state_dict(not_torch)


@pytest.mark.parametrize(
    "graph, weights_file, reference_file, inputs_key, tolerance",
    [
        # The PyTorch conversion's test allows 1e-3 too (tests/services/faces/test_keras_convert.py).
        (onnx_graphs.facenet128_graph, FACENET, "facenet_keras_reference.npz", "inputs_prewhitened_nhwc", 1e-3),
        (onnx_graphs.mini_xception_graph, MINI_XCEPTION, "fer2013_mini_XCEPTION_reference.npz", "inputs_nhwc", 1e-3),
    ],
    ids=["facenet", "mini_xception"],
)
def test_graph_reproduces_keras_outputs(graph, weights_file, reference_file, inputs_key, tolerance):
    reference = np.load(WEIGHTS_DIR / reference_file)
    (outputs,) = run(graph(weights_file), reference[inputs_key].transpose(0, 3, 1, 2))
    assert outputs.shape == reference["outputs"].shape
    assert np.abs(outputs - reference["outputs"]).max() <= tolerance


def _facenet() -> torch.nn.Module:
    model = build_facenet128()
    model.load_state_dict(facenet_state_dict(FACENET))
    return model


def _mini_xception() -> torch.nn.Module:
    model = MiniXception()
    model.load_state_dict(mini_xception_state_dict(MINI_XCEPTION))
    return model


@pytest.mark.parametrize(
    "graph, network, shape, tolerance",
    [
        (lambda: onnx_graphs.facenet128_graph(FACENET), _facenet, (3, 3, 160, 160), 1e-4),
        (lambda: onnx_graphs.mini_xception_graph(MINI_XCEPTION), _mini_xception, (3, 1, 64, 64), 1e-5),
        # An odd height and width: P-Net's ceil-mode pooling keeps the last, partial window.
        (lambda: onnx_graphs.pnet_graph(mtcnn_weights("pnet")), PNet, (2, 3, 37, 53), 1e-5),
        (lambda: onnx_graphs.rnet_graph(mtcnn_weights("rnet")), RNet, (5, 3, 24, 24), 1e-5),
        (lambda: onnx_graphs.onet_graph(mtcnn_weights("onet")), ONet, (5, 3, 48, 48), 1e-5),
    ],
    ids=["facenet", "mini_xception", "pnet", "rnet", "onet"],
)
def test_graph_matches_the_pytorch_network(graph, network, shape, tolerance):
    inputs = np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32)
    outputs = run(graph(), inputs)
    with torch.inference_mode():
        expected = network().eval()(torch.from_numpy(inputs))
    expected = expected if isinstance(expected, tuple) else (expected,)
    assert len(outputs) == len(expected)
    for output, reference in zip(outputs, expected, strict=True):
        assert output.shape == reference.shape
        assert np.abs(output - reference.numpy()).max() <= tolerance


def test_a_keras_file_of_another_model_is_refused(tmp_path):
    with pytest.raises(KeyError, match="conv2d_1"):
        onnx_graphs.mini_xception_graph(FACENET)  # FaceNet's layers are not mini-Xception's
    extended = tmp_path / "extended.h5"
    shutil.copy(MINI_XCEPTION, extended)
    with h5py.File(extended, "r+") as f:
        layers = f["model_weights"]
        layers.create_group("extra_dense/extra_dense").create_dataset("kernel:0", data=np.zeros((2, 2)))
        layers.attrs["layer_names"] = [*layers.attrs["layer_names"], b"extra_dense"]
    with pytest.raises(ValueError, match=r"layers the graph does not use: \['extra_dense'\]"):
        onnx_graphs.mini_xception_graph(extended)


def test_onnx_runtime_folds_facenets_batch_norms_and_residual_scales(tmp_path):
    """What runs is what torch's export ran: ONNX Runtime folds every batch norm and residual factor into the convs and
    the bottleneck (a 1-d factor or a Gemm before the batch norm would stay as extra passes over the activations)."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(tmp_path / "optimised.onnx")
    ort.InferenceSession(onnx_graphs.facenet128_graph(FACENET).SerializeToString(), options)
    operators = {node.op_type for node in onnx.load(str(tmp_path / "optimised.onnx")).graph.node}
    assert not operators & {"BatchNormalization", "Mul"}, operators
