"""Faces followed across the frames of one live stream: one track per person passing, decided on its best frames.

A face joins the track whose last box it overlaps and whose last embedding it stays near (or, without overlap, a
track whose embedding it is very near: the same person re-found after a jump or a missed frame). Each track keeps
its best frames (detection score, size and sharpness) and is identified on their quality-weighted mean embedding,
re-normalised: one blurred or turned frame no longer decides alone. The decision a track holds changes only when
a different one comes back on several frames in a row (hysteresis), so a label does not flicker. A track unseen for
`gap_seconds` has left; the same face later is a new visit.

No database and no models here: services.identity.streams searches and records; this decides what to search with
and what to show."""

import itertools
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from services.faces.detection import Box
from services.faces.pipeline import AnalyzedFace
from services.identity.matching import Outcome

# Association: FaceNet distances between unit vectors (0..2). Frames of one face a moment apart stay well within
# FOLLOW_DISTANCE, far below the distance between different people; REFIND_DISTANCE lets a face that jumped
# (frames dropped, a quick step, two people changing places) keep its track (docs/streams.md).
MIN_OVERLAP = 0.2  # IoU with the track's last box
FOLLOW_DISTANCE = 1.0
REFIND_DISTANCE = 0.8
# Quality of a frame for the fused embedding: a face this large (FaceNet's crop is 160 px) and as sharp as a clean
# photo counts in full; smaller or blurrier ones proportionally less.
FULL_QUALITY_SIZE = 112.0
FULL_QUALITY_SHARPNESS = 50.0


def quality(face: AnalyzedFace) -> float:
    detection = face.detection
    return (
        detection.score
        * min(1.0, detection.size / FULL_QUALITY_SIZE)
        * min(1.0, face.sharpness / FULL_QUALITY_SHARPNESS)
    )


def overlap(a: Box, b: Box) -> float:
    """Intersection over union of two boxes."""
    ax1, ay1, ax2, ay2 = a.corners
    bx1, by1, bx2, by2 = b.corners
    inter = max(0.0, min(ax2, bx2) - max(ax1, bx1)) * max(0.0, min(ay2, by2) - max(ay1, by1))
    union = a.width * a.height + b.width * b.height - inter
    return inter / union if union > 0 else 0.0


def outcome_key(outcome: Outcome) -> tuple[str, uuid.UUID | None]:
    """What a viewer sees of a decision: match (and whom), review or unknown."""
    return outcome.decision, outcome.match.member_id if outcome.match else None


@dataclass(eq=False)  # a track is itself, whatever its figures
class Track:
    id: int
    face: AnalyzedFace  # the latest frame's
    last_seen: float
    frames: int = 1
    best: list[tuple[float, AnalyzedFace]] = field(default_factory=list)  # (quality, face), best first
    held: Outcome | None = None  # the decision shown
    challenger: Outcome | None = None  # a different decision seen on the latest frames
    challenges: int = 0  # for how many frames in a row
    attempt_id: uuid.UUID | None = None  # the visit's one recorded attempt

    def fused_embedding(self) -> np.ndarray:
        """The quality-weighted mean of the best frames' embeddings, unit length."""
        weights = np.array([max(q, 1e-6) for q, _ in self.best], np.float32)
        mean = (weights[:, None] * np.stack([f.embedding for _, f in self.best])).sum(axis=0)
        return mean / np.linalg.norm(mean)

    def fused(self) -> AnalyzedFace:
        """This frame's face (box, crop, expression) carrying the fused embedding."""
        return replace(self.face, embedding=self.fused_embedding())

    def best_face(self) -> AnalyzedFace:
        """The best frame so far carrying the fused embedding: what a recorded attempt shows and stores."""
        return replace(self.best[0][1], embedding=self.fused_embedding())


class FaceTracker:
    """The tracks of one stream (one connection: frames arrive one at a time, so no lock)."""

    def __init__(
        self,
        *,
        best_frames: int = 5,
        switch_frames: int = 3,
        gap_seconds: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.best_frames = best_frames
        self.switch_frames = switch_frames
        self.gap_seconds = gap_seconds
        self._clock = clock
        self._ids = itertools.count(1)
        self.tracks: list[Track] = []

    def follow(self, faces: list[AnalyzedFace]) -> list[Track]:
        """Each face's track (in the faces' order), continued or new; tracks unseen for gap_seconds are dropped."""
        now = self._clock()
        self.tracks = [t for t in self.tracks if now - t.last_seen <= self.gap_seconds]
        # Greedy assignment, most overlapping and nearest pairs first; each track takes at most one face.
        pairs = []
        for i, face in enumerate(faces):
            for track in self.tracks:
                iou = overlap(face.detection.box, track.face.detection.box)
                distance = float(np.linalg.norm(face.embedding - track.face.embedding))
                if (iou >= MIN_OVERLAP and distance <= FOLLOW_DISTANCE) or distance <= REFIND_DISTANCE:
                    pairs.append((iou - distance, i, track))
        chosen: dict[int, Track] = {}
        for _, i, track in sorted(pairs, key=lambda p: p[0], reverse=True):
            if i not in chosen and track not in chosen.values():
                chosen[i] = track
        followed = []
        for i, face in enumerate(faces):
            if i in chosen:
                track = chosen[i]
                track.face, track.last_seen, track.frames = face, now, track.frames + 1
            else:
                track = Track(next(self._ids), face, now)
                self.tracks.append(track)
            track.best = sorted([*track.best, (quality(face), face)], key=lambda b: b[0], reverse=True)
            del track.best[self.best_frames :]
            followed.append(track)
        return followed

    def settle(self, track: Track, outcome: Outcome) -> Outcome:
        """The decision the track shows after this frame's (on its fused embedding): the first one it gets, kept
        until a different one comes on switch_frames frames in a row. The held decision takes the newest
        outcome's figures when they agree."""
        if track.held is None or outcome_key(outcome) == outcome_key(track.held):
            track.held, track.challenger, track.challenges = outcome, None, 0
            return outcome
        if track.challenger is not None and outcome_key(outcome) == outcome_key(track.challenger):
            track.challenges += 1
        else:
            track.challenges = 1
        track.challenger = outcome
        if track.challenges >= self.switch_frames:
            track.held, track.challenger, track.challenges = outcome, None, 0
        return track.held
