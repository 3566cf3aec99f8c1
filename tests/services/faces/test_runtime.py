"""The ONNX Runtime path reproduces the PyTorch networks its graphs stand for, and serving it needs no torch."""

import os
import re
import subprocess
import sys
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest
from facenet_pytorch import MTCNN

from core.errors import UnsupportedImageTypeError
from core.settings import Settings
from services.evaluation.camera_clips import door_frame
from services.faces import weights
from services.faces.alignment import expression_crop, facenet_crop
from services.faces.detection import FaceDetector
from services.faces.embedding import FaceEmbedder
from services.faces.expression import expression_model
from services.faces.pipeline import FacePipeline
from services.faces.runtime import (
    OPENVINO_MOST_PER_PASS,
    ModelExportError,
    export_missing,
    openvino_bfloat16,
    openvino_forward,
    padded_size,
)
from tests.support import LFW_IMAGES, REPO, camera_frame, embed_passes, jpeg, lfw_pixels

pytestmark = pytest.mark.models

# One photo each of 8 people (LFW is sorted by name, so these are spread over the alphabet), and two camera frames
# with several faces of different sizes.
PEOPLE = sorted(p.name for p in LFW_IMAGES.iterdir())[:: max(1, len(list(LFW_IMAGES.iterdir())) // 8)][:8]


@pytest.fixture(scope="module")
def photos() -> list[np.ndarray]:
    frames = [camera_frame(("Colin_Powell", 1), ("George_W_Bush", 2)), camera_frame(("Tony_Blair", 3), face_width=90)]
    return [lfw_pixels(person, 1) for person in PEOPLE] + frames


@pytest.fixture(scope="module")
def onnx_settings(tmp_path_factory) -> Settings:
    return Settings(data_dir=tmp_path_factory.mktemp("data"), inference_runtime="onnx")


@pytest.fixture(scope="module")
def onnx_pipeline(onnx_settings) -> FacePipeline:
    pipeline = FacePipeline(onnx_settings)
    pipeline.load()  # exports every network into data_dir/onnx
    return pipeline


def torch_model(model_class, settings: Settings):
    model = model_class(settings.model_copy(update={"inference_runtime": "torch"}))
    model.load()
    return model


@pytest.fixture(scope="module")
def full_ladder(onnx_pipeline) -> FaceDetector:
    """The detector looking down to facenet-pytorch's default smallest face (20 px), every pyramid level."""
    detector = FaceDetector(onnx_pipeline.settings.model_copy(update={"detector_min_face_size": 20}))
    detector.load()
    return detector


def test_detector_matches_facenet_pytorch(full_ladder, photos):
    reference = MTCNN(min_face_size=20, keep_all=True, device="cpu")
    for pixels in photos:
        boxes, landmarks = full_ladder.detect(pixels)
        found = reference.detect(pixels, landmarks=True)
        assert found[0] is not None
        # facenet-pytorch hands back object arrays
        expected_boxes, expected_scores, expected_landmarks = (np.asarray(a, dtype=np.float32) for a in found)
        assert len(boxes) == len(expected_boxes)
        # Measured on 58 LFW photos: at most 6e-5 px apart (float32 rounding of the resampled pixels).
        np.testing.assert_allclose(boxes[:, :4], expected_boxes, atol=1e-3)
        np.testing.assert_allclose(boxes[:, 4], expected_scores, atol=1e-5)
        np.testing.assert_allclose(landmarks, expected_landmarks, atol=1e-3)
    assert sum(len(full_ladder.detect(p)[0]) for p in photos[-2:]) == 3


def test_a_larger_smallest_face_skips_levels_without_moving_the_faces_it_finds(onnx_pipeline, full_ladder, photos):
    """The default skips the pyramid levels that look only for faces under 40 px: the faces it finds are the full
    ladder's, to the bit, so their crops and embeddings do not change."""
    assert onnx_pipeline.settings.detector_min_face_size == 40

    def at_least_40(boxes: np.ndarray, landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        big = np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]) >= 40
        return boxes[big], landmarks[big]

    compared = 0
    for pixels in photos:
        boxes, landmarks = at_least_40(*onnx_pipeline.detector.detect(pixels))
        full_boxes, full_landmarks = at_least_40(*full_ladder.detect(pixels))
        np.testing.assert_array_equal(boxes, full_boxes)
        np.testing.assert_array_equal(landmarks, full_landmarks)
        compared += len(boxes)
    assert compared >= len(photos) - 1  # every photo's subject but the ~40 px face of the last frame


@pytest.fixture(scope="module")
def faces(onnx_pipeline, photos) -> list:
    """(pixels, face) of every face in the photos."""
    return [(pixels, face) for pixels in photos for face in onnx_pipeline.detector.predict(pixels)]


@pytest.fixture(scope="module")
def facenet_crops(faces) -> np.ndarray:
    return np.stack([facenet_crop(pixels, face) for pixels, face in faces])


@pytest.fixture(scope="module")
def float32_embedder(onnx_pipeline) -> FaceEmbedder:
    embedder = FaceEmbedder(onnx_pipeline.settings.model_copy(update={"embedding_precision": "float32"}))
    embedder.load()
    return embedder


def test_embeddings_and_expressions_match_pytorch(onnx_pipeline, float32_embedder, faces, facenet_crops):
    embeddings = float32_embedder.predict(facenet_crops)
    expected = torch_model(FaceEmbedder, onnx_pipeline.settings).predict(facenet_crops)
    assert np.linalg.norm(embeddings - expected, axis=1).max() < 1e-4  # unit vectors; 1.05 decides a match

    grey = np.stack([expression_crop(pixels, face) for pixels, face in faces])

    probabilities = onnx_pipeline.expression.predict(grey)
    expected = torch_model(type(expression_model(onnx_pipeline.settings)), onnx_pipeline.settings).predict(grey)
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)


@pytest.mark.skipif(not openvino_bfloat16(), reason="this CPU has no bfloat16 instructions")
def test_bfloat16_embeddings_stay_near_float32(onnx_pipeline, float32_embedder, facenet_crops):
    """The default bfloat16 FaceNet: on LFW fold 1's 807 photos its embeddings were at most 0.028 from float32's and
    no pair distance moved by more than 0.010 (docs/performance.md)."""
    assert onnx_pipeline.settings.embedding_precision == "bfloat16"
    bfloat16 = onnx_pipeline.embedder.predict(facenet_crops)
    float32 = float32_embedder.predict(facenet_crops)
    drift = np.linalg.norm(bfloat16 - float32, axis=1)
    assert 0 < drift.max() < 0.04  # above 0: bfloat16 arithmetic did run

    def pair_distances(e: np.ndarray) -> np.ndarray:
        return np.linalg.norm(e[:, None] - e[None], axis=-1)

    assert np.abs(pair_distances(bfloat16) - pair_distances(float32)).max() < 0.02


def test_torch_runtime_detects_the_same(onnx_pipeline, photos):
    detector = torch_model(FaceDetector, onnx_pipeline.settings)
    for pixels in photos[-2:]:
        np.testing.assert_allclose(detector.detect(pixels)[0], onnx_pipeline.detector.detect(pixels)[0], atol=1e-3)


def test_openvino_runs_a_large_batch_in_bounded_passes_with_the_same_outputs(onnx_pipeline):
    """Passes of at most 64 keep OpenVINO's buffers from growing to the largest batch ever seen."""
    o_net = onnx_pipeline.detector.networks()[2]
    path = o_net.onnx_path(onnx_pipeline.settings)
    batch = np.random.default_rng(0).uniform(-1, 1, (150, 3, 48, 48)).astype(np.float32)
    whole = openvino_forward(path, 1, 1, "float32", most_per_pass=None)(batch)
    in_passes = openvino_forward(path, 1, 1, "float32", most_per_pass=64)(batch)
    assert [part.shape for part in in_passes] == [part.shape for part in whole]
    for part, reference in zip(in_passes, whole, strict=True):
        np.testing.assert_allclose(part, reference, atol=1e-5)


def test_openvino_passes_come_in_a_few_batch_sizes_with_each_items_answer(onnx_pipeline, monkeypatch):
    """Passes padded to a multiple of 8: OpenVINO sees a few batch sizes, whatever the photos' candidate counts
    (docs/performance.md, "Memory after large bodies"), and each crop's answer is the one it gets alone."""
    import openvino as ov

    assert [padded_size(n) for n in (0, 1, 7, 8, 9, 16, 17, 63)] == [0, 1, 7, 8, 16, 16, 24, 64]
    r_net = onnx_pipeline.detector.networks()[1]
    forward = openvino_forward(r_net.onnx_path(onnx_pipeline.settings), 1, 1, "float32")
    count = 2 * OPENVINO_MOST_PER_PASS + 11
    crops = np.random.default_rng(0).uniform(-1, 1, (count, 3, 24, 24)).astype(np.float32)
    lent: list[int] = []
    tensor = ov.Tensor

    def lend(array: np.ndarray, **kwargs) -> ov.Tensor:
        lent.append(len(array))
        return tensor(array, **kwargs)

    monkeypatch.setattr(ov, "Tensor", lend)
    offsets, probabilities = forward(crops)
    assert lent == [OPENVINO_MOST_PER_PASS, OPENVINO_MOST_PER_PASS, 16]
    assert offsets.shape == (count, 4) and probabilities.shape == (count, 2)
    for i in (0, OPENVINO_MOST_PER_PASS + 1, count - 1):
        alone = forward(crops[i : i + 1])
        np.testing.assert_allclose(offsets[i], alone[0][0], atol=1e-5)
        np.testing.assert_allclose(probabilities[i], alone[1][0], atol=1e-5)


def test_concurrent_photos_are_batched_with_the_same_results(onnx_pipeline, photos):
    alone = [onnx_pipeline.analyze(pixels) for pixels in photos]
    with ThreadPoolExecutor(max_workers=8) as callers:
        together = list(callers.map(onnx_pipeline.analyze, photos))
    for one, other in zip(alone, together, strict=True):
        assert [f.detection.box for f in one] == [f.detection.box for f in other]
        for a, b in zip(one, other, strict=True):
            assert np.linalg.norm(a.embedding - b.embedding) < 1e-5
            assert a.expression["dominant_emotion"] == b.expression["dominant_emotion"]


def test_photos_of_one_call_share_a_pass_and_fail_alone(onnx_pipeline, photos):
    encoded = [jpeg(pixels) for pixels in photos[:4]] + [b"not an image"]
    alone = [onnx_pipeline.analyze_photo(data) for data in encoded[:4]]
    passes = embed_passes()
    *together, undecodable = onnx_pipeline.analyze_photos(encoded)
    assert embed_passes() == passes + 1
    for one, other in zip(alone, together, strict=True):
        assert [f.detection.box for f in one] == [f.detection.box for f in other.result()]
    assert isinstance(undecodable.exception(), UnsupportedImageTypeError)


def test_a_first_start_elsewhere_exports_and_serves_without_torch(tmp_path):
    """The serving install's first start: no torch (nor facenet-pytorch, deepface) can be imported, by the service or
    by its export child; from a working folder outside the checkout with the default, relative data folder, the ONNX
    files are built there and a face is found and embedded."""
    dev_only = {
        "torch": "torch",
        "torchvision": "torchvision",
        "facenet_pytorch": "facenet-pytorch",
        "deepface": "deepface",
    }
    serving = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    assert not [d for d in serving if re.split(r"[<>=\[ ]", d)[0] in dev_only.values()]
    blocked = tmp_path / "no-torch"
    blocked.mkdir()
    for module in dev_only:
        (blocked / f"{module}.py").write_text(f"raise ImportError('{module} is not part of the serving install')\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    script = (
        "from api.main import app\n"
        "from core.settings import Settings\n"
        "from services.faces.pipeline import FacePipeline\n"
        "from tests.support import lfw_pixels\n"
        "pipeline = FacePipeline(Settings())\n"
        "pipeline.load()\n"
        "faces = pipeline.analyze(lfw_pixels('Colin_Powell', 1))\n"
        "assert len(faces) == 1 and faces[0].embedding.shape == (128,), faces\n"
    )
    env = {key: value for key, value in os.environ.items() if key != "FACEGATE_DATA_DIR"}
    env["PYTHONPATH"] = os.pathsep.join([str(blocked), str(REPO)])
    result = subprocess.run([sys.executable, "-c", script], cwd=elsewhere, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    written = sorted(path.name.split("-")[0] for path in (elsewhere / "data" / "onnx").glob("*.onnx"))
    assert written == ["facenet128", "mini_xception", "mtcnn", "mtcnn", "mtcnn"]


def test_a_failed_export_says_which_networks_and_why(tmp_path):
    weights_dir = tmp_path / "models"
    weights_dir.mkdir()
    (weights_dir / weights.MINI_XCEPTION.name).write_bytes(b"not the weights")
    settings = Settings(data_dir=tmp_path / "data", weights_dir=weights_dir)
    networks = expression_model(settings).networks()
    with pytest.raises(ModelExportError, match=r"exporting mini_xception-\w+ to ONNX failed \(exit 1\): .*sha256"):
        export_missing(settings, networks)
    assert not (tmp_path / "data" / "onnx").exists() or not any((tmp_path / "data" / "onnx").iterdir())


def test_a_relative_data_folder_is_the_callers_not_the_repositorys(tmp_path, monkeypatch):
    """`facegate serve` run from another folder with the default FACEGATE_DATA_DIR (`data`, relative): the export
    (a child process in the repository's folder) writes into this folder's data/onnx, where the service looks."""
    monkeypatch.chdir(tmp_path)
    settings = Settings(data_dir=Path("data"))
    pnet = FaceDetector(settings).networks()[0]  # the smallest network to export
    export_missing(settings, [pnet])
    written = pnet.onnx_path(settings)
    assert written.is_file() and written.is_relative_to(tmp_path.resolve())


def test_a_large_frame_finds_the_faces_of_its_downscaled_copy_in_the_same_places(onnx_pipeline):
    """A frame larger than DETECT_MAX_SIDE is looked at as its downscaled copy would be (the smallest face grows
    with it), from its own pixels: the faces and boxes of the copy, scaled, within a pixel or two."""
    photo = LFW_IMAGES / "Colin_Powell" / "Colin_Powell_0001.jpg"
    frame = door_frame(photo, (1920, 1080), seed=2)
    copy = cv2.resize(frame, (1280, 720), interpolation=cv2.INTER_AREA)
    found, expected = onnx_pipeline.detector.predict(frame), onnx_pipeline.detector.predict(copy)
    assert len(found) == len(expected) == 1
    np.testing.assert_allclose(np.array(found[0].box.corners), np.array(expected[0].box.corners) * 1.5, atol=3)
    # Beyond exact int32 running totals (8.4 MP) the frame is halved first; the face is still found.
    huge = cv2.resize(frame, (3840 * 2, 2160 * 2), interpolation=cv2.INTER_LINEAR)
    (face,) = onnx_pipeline.detector.predict(huge)
    np.testing.assert_allclose(np.array(face.box.corners), np.array(found[0].box.corners) * 4, atol=12)
