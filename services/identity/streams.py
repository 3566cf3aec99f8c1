"""Live identify streams (a desk camera, a door): every frame goes through identify, but each person is recorded as
an attempt at most once per `stream_record_seconds` per stream and decision: a member by their id, a face nobody
is named for (unknown, review band) by its embedding (the same stranger in the next frame lies within
stream_same_face_distance of the recorded face; several strangers in view are each recorded). One person standing
in front of the camera for a minute is then a couple of attempts to review, not hundreds; frames that are not
recorded are not stored at all."""

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sqlalchemy.orm import Session

from core.enums import Decision
from core.settings import Settings
from db.models import ApiKey
from services.faces.pipeline import AnalyzedFace
from services.identity import recognition
from services.identity.calibration import GalleryCalibration
from services.identity.matching import Outcome

# (stream, decision, matched member) for members
Slot = tuple[str, Decision, uuid.UUID]


@dataclass(frozen=True)
class _Stranger:
    stream: str
    decision: Decision
    embedding: np.ndarray
    recorded_at: float


class AttemptThrottle:
    """When each stream last recorded each member (per decision), and which strangers it recorded lately; shared
    by every connection of the process."""

    def __init__(self, interval_s: float, same_face_distance: float, clock: Callable[[], float] = time.monotonic):
        self.interval_s, self.same_face_distance = interval_s, same_face_distance
        self._clock = clock
        self._last: dict[Slot, float] = {}
        self._strangers: list[_Stranger] = []
        self._lock = threading.Lock()

    def admit(self, stream: str, embedding: np.ndarray, outcome: Outcome) -> bool:
        """Whether this face is recorded; if so, it starts a new interval for its member or stranger."""
        now = self._clock()
        with self._lock:
            # Entries whose interval has passed behave like new ones: drop them so the tables stay small.
            self._last = {s: t for s, t in self._last.items() if now - t < self.interval_s}
            self._strangers = [s for s in self._strangers if now - s.recorded_at < self.interval_s]
            if outcome.match is None:
                if any(
                    s.stream == stream
                    and s.decision == outcome.decision
                    and float(np.linalg.norm(s.embedding - embedding)) <= self.same_face_distance
                    for s in self._strangers
                ):
                    return False
                if self.interval_s > 0:
                    self._strangers.append(_Stranger(stream, outcome.decision, embedding, now))
                return True
            slot = (stream, outcome.decision, outcome.match.member_id)
            if slot in self._last:
                return False
            if self.interval_s > 0:
                self._last[slot] = now
            return True


def identify_frame(
    session: Session,
    settings: Settings,
    gallery: GalleryCalibration,
    throttle: AttemptThrottle,
    caller: ApiKey,
    camera: str,
    faces: list[AnalyzedFace],
) -> recognition.Identification:
    """identify() for one frame of the caller's camera, recording only what the throttle admits."""
    stream = f"{caller.id}/{camera}"
    return recognition.identify(
        session,
        settings,
        gallery,
        faces,
        threshold=None,
        k=settings.top_k,
        caller=caller,
        should_record=lambda face, outcome: throttle.admit(stream, face.embedding, outcome),
    )
