"""The live stream's attempt throttle (no models, no database)."""

import uuid

from core.enums import Decision
from services.identity.matching import Candidate, Outcome
from services.identity.streams import AttemptThrottle


def matched(member_id: uuid.UUID) -> Outcome:
    candidate = Candidate(member_id, "x", "X", 3, 0.4, False, score=0.4)
    return Outcome(Decision.MATCH, candidate, needs_review=False)


def test_one_attempt_per_stream_decision_and_member_per_interval():
    now = [100.0]
    throttle = AttemptThrottle(30, clock=lambda: now[0])
    ada, bob = uuid.uuid4(), uuid.uuid4()
    unknown = Outcome(Decision.UNKNOWN, None, needs_review=False)
    assert throttle.admit("desk", matched(ada))
    assert not throttle.admit("desk", matched(ada))  # the same person, the next frame
    assert throttle.admit("desk", matched(bob)) and throttle.admit("door", matched(ada))
    assert throttle.admit("desk", unknown) and not throttle.admit("desk", unknown)
    now[0] += 29.9
    assert not throttle.admit("desk", matched(ada))
    now[0] += 0.1
    assert throttle.admit("desk", matched(ada)) and throttle.admit("desk", unknown)
    assert not throttle.admit("desk", matched(ada))


def test_zero_interval_records_every_frame():
    throttle = AttemptThrottle(0)
    assert all(throttle.admit("desk", matched(uuid.uuid4())) for _ in range(3))
    ada = uuid.uuid4()
    assert throttle.admit("desk", matched(ada)) and throttle.admit("desk", matched(ada))
