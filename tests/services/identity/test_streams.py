"""The live stream's attempt throttle (no models, no database)."""

import uuid

import numpy as np

from core.enums import Decision
from services.identity.matching import Candidate, Outcome
from services.identity.streams import AttemptThrottle

UNKNOWN = Outcome(Decision.UNKNOWN, None, needs_review=False)
REVIEW = Outcome(Decision.REVIEW, None, needs_review=True)


def matched(member_id: uuid.UUID) -> Outcome:
    candidate = Candidate(member_id, "x", "X", 3, 0.4, False, score=0.4)
    return Outcome(Decision.MATCH, candidate, needs_review=False)


def face(seed: int, jitter: float = 0.0) -> np.ndarray:
    """A unit embedding per person; `jitter` moves it as the next frame of the same person would."""
    vector = np.random.default_rng(seed).normal(size=128)
    vector = vector / np.linalg.norm(vector)
    noise = np.random.default_rng(seed + 1000).normal(size=128)
    moved = vector + jitter * noise / np.linalg.norm(noise)
    return moved / np.linalg.norm(moved)


def test_one_attempt_per_stream_decision_and_member_per_interval():
    now = [100.0]
    throttle = AttemptThrottle(30, 1.0, clock=lambda: now[0])
    ada, bob = uuid.uuid4(), uuid.uuid4()
    assert throttle.admit("desk", face(1), matched(ada))
    assert not throttle.admit("desk", face(1, 0.3), matched(ada))  # the same person, the next frame
    assert throttle.admit("desk", face(2), matched(bob)) and throttle.admit("door", face(1), matched(ada))
    assert throttle.admit("desk", face(3), UNKNOWN) and not throttle.admit("desk", face(3, 0.3), UNKNOWN)
    now[0] += 29.9
    assert not throttle.admit("desk", face(1), matched(ada))
    now[0] += 0.1
    assert throttle.admit("desk", face(1), matched(ada)) and throttle.admit("desk", face(3), UNKNOWN)
    assert not throttle.admit("desk", face(1), matched(ada))


def test_several_strangers_in_the_interval_are_each_recorded_once():
    """Strangers are told apart by their faces, not lumped into one 'unknown' per interval."""
    now = [0.0]
    throttle = AttemptThrottle(30, 1.0, clock=lambda: now[0])
    strangers = [face(seed) for seed in range(10, 15)]
    assert all(throttle.admit("door", stranger, UNKNOWN) for stranger in strangers)
    now[0] += 5
    assert not any(throttle.admit("door", face(seed, 0.3), UNKNOWN) for seed in range(10, 15))
    assert throttle.admit("door", face(20), REVIEW) and throttle.admit("desk", face(10), UNKNOWN)
    now[0] += 26
    assert throttle.admit("door", face(10, 0.3), UNKNOWN)


def test_zero_interval_records_every_frame():
    throttle = AttemptThrottle(0, 1.0)
    assert all(throttle.admit("desk", face(1), matched(uuid.uuid4())) for _ in range(3))
    ada = uuid.uuid4()
    assert throttle.admit("desk", face(1), matched(ada)) and throttle.admit("desk", face(1), matched(ada))
    assert throttle.admit("desk", face(2), UNKNOWN) and throttle.admit("desk", face(2), UNKNOWN)
