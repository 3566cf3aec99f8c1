"""The enrollment gate's rules, on figures (no models)."""

import pytest

from core.errors import FaceRejectedError
from services.faces.detection import Box
from services.faces.quality import QualityGate

GATE = QualityGate(min_face_size=40, min_detection_score=0.95, min_sharpness=25)


def test_box_has_one_shape():
    box = Box.from_corners(10, 20, 110, 140)
    assert box.rounded() == {"x": 10, "y": 20, "width": 100, "height": 120}
    assert box.corners == (10, 20, 110, 140) and box.size == 100


@pytest.mark.parametrize(("sizes", "largest", "chosen"), [([80], False, 0), ([80, 20], False, 0), ([30, 90], True, 1)])
def test_background_faces_do_not_count(sizes, largest, chosen):
    assert GATE.choose(sizes, largest=largest) == chosen


@pytest.mark.parametrize(("sizes", "code"), [([], "no_face"), ([80, 60], "multiple_faces")])
def test_choose_refuses(sizes, code):
    with pytest.raises(FaceRejectedError) as refused:
        GATE.choose(sizes, largest=False)
    assert refused.value.code == code


@pytest.mark.parametrize(
    ("figures", "code"),
    [
        ({"face_size": 30, "detection_score": 0.99, "crop_sharpness": 100}, "face_too_small"),
        ({"face_size": 80, "detection_score": 0.9, "crop_sharpness": 100}, "low_detection_score"),
        ({"face_size": 80, "detection_score": 0.99, "crop_sharpness": 10}, "blurry"),
    ],
)
def test_check_names_the_failed_rule(figures, code):
    with pytest.raises(FaceRejectedError) as refused:
        GATE.check(**figures)
    assert refused.value.code == code and refused.value.status_code == 422


def test_a_good_face_passes():
    GATE.check(face_size=80, detection_score=0.99, crop_sharpness=100)
