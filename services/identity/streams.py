"""Live identify streams (a desk camera, a door): every frame goes through identify, but a face is recorded as an
attempt at most once per `stream_record_seconds` for each stream, decision and member. One person standing in
front of the camera for a minute is then a couple of attempts to review, not hundreds; frames that are not
recorded are not stored at all."""

import threading
import time
import uuid
from collections.abc import Callable

from sqlalchemy.orm import Session

from core.enums import Decision
from core.settings import Settings
from db.models import ApiKey
from services.faces.pipeline import AnalyzedFace
from services.identity import recognition
from services.identity.calibration import GalleryCalibration
from services.identity.matching import Outcome

# (stream, decision, matched member or None for unknown and the review band)
Slot = tuple[str, Decision, uuid.UUID | None]


class AttemptThrottle:
    """When each stream last recorded each (decision, member); shared by every connection of the process."""

    def __init__(self, interval_s: float, clock: Callable[[], float] = time.monotonic):
        self.interval_s = interval_s
        self._clock = clock
        self._last: dict[Slot, float] = {}
        self._lock = threading.Lock()

    def admit(self, stream: str, outcome: Outcome) -> bool:
        """Whether this face is recorded; if so, its slot starts a new interval."""
        slot = (stream, outcome.decision, outcome.match.member_id if outcome.match else None)
        now = self._clock()
        with self._lock:
            last = self._last.get(slot)
            if last is not None and now - last < self.interval_s:
                return False
            self._last[slot] = now
            # Slots whose interval has passed behave like new ones: drop them so the table stays small.
            self._last = {s: t for s, t in self._last.items() if now - t < self.interval_s}
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
        should_record=lambda outcome: throttle.admit(stream, outcome),
    )
