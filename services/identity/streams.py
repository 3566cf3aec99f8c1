"""Live identify streams (a desk camera, a door): one decision and one recorded attempt per person passing.

Each connection follows the faces of its frames into tracks (services.identity.tracking). Every frame, each track
is identified on its best frames fused; the decision it shows holds unless the evidence clearly changes. A track is
recorded once, as one attempt, when it has been seen on `stream_track_settle_frames` frames: the attempt holds its
best frame's crop and the fused embedding. Frames that are not recorded are not stored at all."""

import uuid

from sqlalchemy.orm import Session

from core.enums import AttemptKind
from core.settings import Settings
from db.models import ApiKey
from services.faces.pipeline import AnalyzedFace
from services.identity import recognition
from services.identity.calibration import GalleryCalibration
from services.identity.tracking import FaceTracker, Track


def tracker(settings: Settings) -> FaceTracker:
    """A new connection's tracker."""
    return FaceTracker(
        best_frames=settings.stream_track_best_frames,
        switch_frames=settings.stream_track_switch_frames,
        gap_seconds=settings.stream_track_gap_seconds,
    )


def identify_frame(
    session: Session,
    settings: Settings,
    gallery: GalleryCalibration,
    tracks: FaceTracker,
    caller: ApiKey,
    faces: list[AnalyzedFace],
) -> tuple[recognition.Identification, list[Track]]:
    """identify() for one frame on its faces' tracks: each face's result is its track's decision, and a track that
    has just been seen on enough frames is recorded."""
    followed = tracks.follow(faces)
    found = recognition.identify(
        session,
        settings,
        gallery,
        [track.fused() for track in followed],
        threshold=None,
        k=settings.top_k,
        caller=caller,
        should_record=lambda _face, _outcome: False,
    )
    request_id = uuid.uuid4()
    results = []
    for index, (track, result) in enumerate(zip(followed, found.faces, strict=True)):
        held = tracks.settle(track, result.outcome)
        if track.attempt_id is None and track.frames >= settings.stream_track_settle_frames:
            track.attempt_id = recognition.record_attempt(
                session,
                settings,
                kind=AttemptKind.IDENTIFY,
                request_id=request_id,
                face_index=index,
                face=track.best_face(),
                candidates=result.candidates,
                rule=found.rule,
                outcome=held,
                caller=caller,
            ).id
        # The frame's own box and expression; the track's decision and attempt.
        results.append(recognition.FaceResult(track.face, result.candidates, held, track.attempt_id))
    return recognition.Identification(results, found.rule, found.gallery_size), followed
