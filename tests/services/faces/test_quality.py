"""The enrollment gate's rules, on figures (no models)."""

import numpy as np
import pytest

from core.errors import FaceRejectedError
from services.faces.detection import Box
from services.faces.quality import QualityGate, crop_inside_share, pose_of, turn_of

GATE = QualityGate(min_face_size=40, min_detection_score=0.95, min_sharpness=25)


def test_box_has_one_shape():
    box = Box.from_corners(10, 20, 110, 140)
    assert box.rounded() == {"x": 10, "y": 20, "width": 100, "height": 120}
    assert box.corners == (10, 20, 110, 140) and box.size == 100


FRAME = (250, 250)  # (height, width), an LFW photo


def boxes(*sizes: float) -> list[Box]:
    """Square faces of these sizes, side by side across the middle of FRAME."""
    return [Box(10 + 60 * i, 100, size, size) for i, size in enumerate(sizes)]


@pytest.mark.parametrize(("sizes", "largest", "chosen"), [([80], False, 0), ([80, 20], False, 0), ([30, 90], True, 1)])
def test_background_faces_do_not_count(sizes, largest, chosen):
    assert GATE.choose(boxes(*sizes), FRAME, largest=largest) == chosen


@pytest.mark.parametrize(("sizes", "code"), [([], "no_face"), ([80, 60], "multiple_faces")])
def test_choose_refuses(sizes, code):
    with pytest.raises(FaceRejectedError) as refused:
        GATE.choose(boxes(*sizes), FRAME, largest=False)
    assert refused.value.code == code


def test_largest_passes_over_a_bystander_cut_off_at_the_edge():
    # A bystander's box runs 74 px past the left edge: larger on paper, a sliver in the photo.
    bystander, subject = Box(-73.8, 60, 130, 130), Box(80, 70, 100, 110)
    assert GATE.choose([bystander, subject], FRAME, largest=True) == 1


def test_largest_prefers_the_central_face_of_two_alike_and_refuses_when_neither_is():
    central, aside = Box(75, 75, 100, 100), Box(150, 5, 95, 95)
    assert GATE.choose([aside, central], FRAME, largest=True) == 1
    left, right = Box(10, 80, 90, 90), Box(150, 80, 95, 95)  # the same size, as far from the centre
    with pytest.raises(FaceRejectedError) as refused:
        GATE.choose([left, right], FRAME, largest=True)
    assert refused.value.code == "multiple_faces"
    assert GATE.choose([Box(10, 80, 50, 50), right], FRAME, largest=True) == 1  # clearly the larger one


@pytest.mark.parametrize(
    ("figures", "code"),
    [
        ({"face_size": 30, "detection_score": 0.99, "crop_sharpness": 100}, "face_too_small"),
        ({"face_size": 80, "detection_score": 0.9, "crop_sharpness": 100}, "low_detection_score"),
        ({"face_size": 80, "detection_score": 0.99, "crop_sharpness": 10}, "blurry"),
        ({"face_size": 80, "detection_score": 0.99, "crop_sharpness": 100, "crop_inside": 0.79}, "face_cut_off"),
    ],
)
def test_check_names_the_failed_rule(figures, code):
    with pytest.raises(FaceRejectedError) as refused:
        GATE.check(**figures)
    assert refused.value.code == code and refused.value.status_code == 422


def test_a_good_face_passes():
    GATE.check(face_size=80, detection_score=0.99, crop_sharpness=100)
    GATE.check(face_size=80, detection_score=0.99, crop_sharpness=100, crop_inside=0.8)


def test_the_cut_off_share_counts_facenets_margin_around_the_box():
    """FaceNet reads the box widened by 15% on each side: a box that touches the edge has its margin outside."""
    assert crop_inside_share(Box(75, 75, 100, 100), FRAME) == 1.0
    assert crop_inside_share(Box(0, 75, 100, 100), FRAME) == pytest.approx(115 / 130)
    assert crop_inside_share(Box(-50, 75, 100, 100), FRAME) == pytest.approx(65 / 130)


def test_the_turn_reads_the_nose_against_the_eyes():
    eyes = [[100, 100], [160, 100]]
    straight = np.array([*eyes, [130, 130], [110, 160], [150, 160]])
    to_their_left = np.array([*eyes, [145, 130], [120, 160], [160, 160]])  # the nose to the image's right
    assert turn_of(straight) == pytest.approx(0.0) and pose_of(turn_of(straight)) == "straight"
    assert turn_of(to_their_left) == pytest.approx(0.25) and pose_of(turn_of(to_their_left)) == "left"
    mirrored = to_their_left.copy()
    mirrored[:, 0] = 260 - mirrored[:, 0]
    mirrored[[0, 1]] = mirrored[[1, 0]]  # the image's left eye is the other one now
    assert pose_of(turn_of(mirrored)) == "right"
    assert pose_of(0.1) is None and pose_of(0.6) is None  # between the poses, or turned too far
