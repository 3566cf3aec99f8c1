"""The stream's face tracker on real faces: frames built from LFW photos through the service's pipeline."""

import uuid

import cv2
import numpy as np
import pytest

from core.enums import Decision
from services.evaluation.camera_clips import Pose, passing_clip, place, read_rgb, room
from services.identity.matching import Candidate, Outcome
from services.identity.tracking import FaceTracker, quality
from tests.support import LFW_IMAGES

pytestmark = pytest.mark.models

SIZE = (640, 480)


def photos(person: str, *numbers: int) -> list:
    return [LFW_IMAGES / person / f"{person}_{n:04d}.jpg" for n in numbers]


def faces_of(pipeline, frame: np.ndarray) -> list:
    return sorted(pipeline.analyze(frame), key=lambda face: face.detection.box.x)


def test_one_person_passing_is_one_track_and_another_person_in_the_same_place_is_not(pipeline):
    tracker = FaceTracker()
    clip = passing_clip(photos("Colin_Powell", 1, 2, 3), SIZE, 8, seed=1)
    followed = [tracker.follow(faces_of(pipeline, frame)) for frame in clip]
    assert all(len(tracks) == 1 for tracks in followed)
    assert {tracks[0].id for tracks in followed} == {1} and followed[-1][0].frames == 8
    # Someone else where Colin Powell just was: the boxes overlap, the faces do not continue.
    stranger = place(room(*SIZE, 1), read_rgb(photos("Hugo_Chavez", 1)[0]), Pose(cx=0.65))
    (track,) = tracker.follow(faces_of(pipeline, stranger))
    assert track.id == 2 and track.frames == 1


def test_two_people_keep_their_tracks_when_they_change_places(pipeline):
    tracker = FaceTracker()
    background = room(*SIZE, 2)
    ada, bob = read_rgb(photos("Colin_Powell", 1)[0]), read_rgb(photos("Hugo_Chavez", 1)[0])
    left, right = Pose(cx=0.25, side=220), Pose(cx=0.75, side=220)
    first = tracker.follow(faces_of(pipeline, place(place(background, ada, left), bob, right)))
    swapped = tracker.follow(faces_of(pipeline, place(place(background, bob, left), ada, right)))
    assert [t.id for t in first] == [1, 2] and [t.id for t in swapped] == [2, 1]  # re-found by their faces


def test_the_best_frames_are_kept_and_fused_to_unit_length(pipeline):
    tracker = FaceTracker(best_frames=2)
    sharp = place(room(*SIZE, 3), read_rgb(photos("Colin_Powell", 1)[0]), Pose())
    blurred = cv2.GaussianBlur(sharp, (0, 0), 2)
    for frame in (sharp, blurred, sharp, blurred):
        (track,) = tracker.follow(faces_of(pipeline, frame))
    assert track.id == 1 and track.frames == 4
    assert quality(track.face) < min(q for q, _ in track.best)  # the blurred frames were dropped from the best
    assert len(track.best) == 2 and np.isclose(np.linalg.norm(track.fused_embedding()), 1.0, atol=1e-5)
    sharp_embedding = track.best[0][1].embedding
    assert np.linalg.norm(track.fused_embedding() - sharp_embedding) < 0.05


def test_a_face_unseen_for_longer_than_the_gap_starts_a_new_visit(pipeline):
    now = [0.0]
    tracker = FaceTracker(gap_seconds=3, clock=lambda: now[0])
    frame = place(room(*SIZE, 4), read_rgb(photos("Colin_Powell", 1)[0]), Pose())
    faces = faces_of(pipeline, frame)
    assert tracker.follow(faces)[0].id == 1
    now[0] = 2.9
    assert tracker.follow(faces)[0].id == 1
    now[0] = 6.0
    assert tracker.follow(faces)[0].id == 2 and len(tracker.tracks) == 1


def matched(member_id: uuid.UUID) -> Outcome:
    return Outcome(Decision.MATCH, Candidate(member_id, "x", "X", 3, 0.4, False, score=0.4), needs_review=False)


def test_a_decision_holds_until_another_comes_on_enough_frames_in_a_row(pipeline):
    tracker = FaceTracker(switch_frames=3)
    frame = place(room(*SIZE, 5), read_rgb(photos("Colin_Powell", 1)[0]), Pose())
    (track,) = tracker.follow(faces_of(pipeline, frame))
    ada, bob = matched(uuid.uuid4()), matched(uuid.uuid4())
    unknown, review = Outcome(Decision.UNKNOWN, None, False), Outcome(Decision.REVIEW, None, True)
    assert tracker.settle(track, ada) is ada
    shown = [tracker.settle(track, outcome) for outcome in (review, unknown, review, review, ada, bob, bob)]
    assert shown == [ada] * 7  # no three in a row of any other decision
    assert tracker.settle(track, bob) is bob  # the third bob in a row
    assert tracker.settle(track, unknown) is bob
