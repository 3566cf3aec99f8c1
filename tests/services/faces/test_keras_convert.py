"""The Keras h5 -> PyTorch conversion reproduces the Keras models' reference outputs (real weights, no TensorFlow)."""

import os
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from services.faces.keras_convert import facenet_state_dict, mini_xception_state_dict
from services.faces.keras_weights import read_keras_layers
from services.faces.networks import MiniXception, build_facenet128

pytestmark = pytest.mark.models

WEIGHTS_DIR = Path(os.environ["FACEGATE_WEIGHTS_DIR"])  # set by tests/conftest.py
FACENET = WEIGHTS_DIR / "facenet_keras.h5"
MINI_XCEPTION = WEIGHTS_DIR / "fer2013_mini_XCEPTION.102-0.66.hdf5"


def _outputs(model: torch.nn.Module, inputs_nhwc: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(inputs_nhwc).permute(0, 3, 1, 2).contiguous()).numpy()


def _write_weights_only(full_model: Path, target: Path, strip_suffix: bool = False, skip: str = "") -> None:
    """A model.save_weights()-style file: the full-model file's layer groups at the root, plus 'layer_names'."""
    with h5py.File(full_model, "r") as src, h5py.File(target, "w") as dst:
        weights = src["model_weights"]
        names = [name for name in weights.attrs["layer_names"] if name.decode() != skip]
        for name in names:
            weights.copy(name.decode(), dst)
        dst.attrs["layer_names"] = names
        if strip_suffix:  # weight names 'kernel' instead of Keras 2's 'kernel:0'
            paths = []
            dst.visit(paths.append)
            for path in paths:
                if path.endswith(":0"):
                    dst.move(path, path.removesuffix(":0"))


@pytest.mark.parametrize(
    "build, convert, weights, reference_file, inputs_key, shape",
    [
        (
            build_facenet128,
            facenet_state_dict,
            FACENET,
            "facenet_keras_reference.npz",
            "inputs_prewhitened_nhwc",
            (8, 128),
        ),
        (
            MiniXception,
            mini_xception_state_dict,
            MINI_XCEPTION,
            "fer2013_mini_XCEPTION_reference.npz",
            "inputs_nhwc",
            (14, 7),
        ),
    ],
    ids=["facenet", "mini_xception"],
)
def test_converted_model_reproduces_keras_outputs(build, convert, weights, reference_file, inputs_key, shape):
    model = build()
    model.load_state_dict(convert(weights))
    reference = np.load(WEIGHTS_DIR / reference_file)
    outputs = _outputs(model, reference[inputs_key])
    assert outputs.shape == shape
    assert np.abs(outputs - reference["outputs"]).max() <= 1e-3


@pytest.mark.parametrize(
    "full_model, convert",
    [(FACENET, facenet_state_dict), (MINI_XCEPTION, mini_xception_state_dict)],
    ids=["facenet", "mini_xception"],
)
def test_weights_only_file_gives_identical_tensors(tmp_path, full_model, convert):
    weights_only = tmp_path / "weights.h5"
    _write_weights_only(full_model, weights_only)
    expected, actual = convert(full_model), convert(weights_only)
    assert expected.keys() == actual.keys()
    assert all(torch.equal(expected[k], actual[k]) for k in expected)


def test_weight_names_without_suffix(tmp_path):
    weights_only = tmp_path / "weights.h5"
    _write_weights_only(MINI_XCEPTION, weights_only, strip_suffix=True)
    expected, actual = read_keras_layers(MINI_XCEPTION), read_keras_layers(weights_only)
    assert expected.keys() == actual.keys()
    for layer, weights in expected.items():
        assert weights.keys() == actual[layer].keys()
        assert all(np.array_equal(weights[w], actual[layer][w]) for w in weights)


def test_missing_layer_raises_key_error_naming_it(tmp_path):
    weights_only = tmp_path / "weights.h5"
    _write_weights_only(MINI_XCEPTION, weights_only, skip="separable_conv2d_3")
    with pytest.raises(KeyError, match="separable_conv2d_3"):
        mini_xception_state_dict(weights_only)


def test_non_h5_file_raises_value_error(tmp_path):
    not_h5 = tmp_path / "weights.h5"
    not_h5.write_text("not a Keras file")
    with pytest.raises(ValueError, match="weights.h5"):
        read_keras_layers(not_h5)


def test_h5_file_without_keras_layers_raises_value_error(tmp_path):
    plain_h5 = tmp_path / "plain.h5"
    with h5py.File(plain_h5, "w") as f:
        f["data"] = np.zeros(3)
    with pytest.raises(ValueError, match="plain.h5"):
        read_keras_layers(plain_h5)
