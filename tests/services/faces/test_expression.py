import numpy as np
import torch
from deepface.models.demography.DemographyUtils import EMOTION_LABELS
from deepface.models.demography.pytorch.Emotion import EmotionModel

from core.settings import Settings
from services.faces.expression import EMOTION_LABELS as OUR_LABELS
from services.faces.expression import DeepFaceExpression, apparent_expression


def test_apparent_expression_has_deepface_shape():
    result = apparent_expression(np.array([0.1, 0.0, 0.0, 0.7, 0.1, 0.0, 0.1]))
    assert OUR_LABELS == EMOTION_LABELS  # our copy of deepface's list, so that serving needs no deepface
    assert list(result["emotion"]) == EMOTION_LABELS and result["dominant_emotion"] == "happy"
    assert abs(sum(result["emotion"].values()) - 100) < 1e-6


def test_deepface_expression_backend_loads_its_weights_file(tmp_path):
    # deepface's own weights cannot be fetched here; a file saved from the same network checks the loading,
    # the 64 -> 48 resize and the output shape.
    torch.manual_seed(0)
    torch.save(EmotionModel().state_dict(), tmp_path / "facial_expression_model_weights.pth")
    model = DeepFaceExpression(Settings(weights_dir=tmp_path, expression_model="deepface"))
    model.load()
    faces = np.random.default_rng(0).integers(0, 255, size=(3, 64, 64), dtype=np.uint8)
    probabilities = model.predict(faces)
    assert probabilities.shape == (3, 7)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
