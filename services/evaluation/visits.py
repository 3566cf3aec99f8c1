"""Members who gave one photo, over repeated visits (`facegate eval-identify --visits N`), through the service's
own signup and identify path, where confident matches may be learned (services.identity.learning).

Protocol, on an identity-labelled folder (FOLDER/<person>/<photos>, sorted by name), seeded:
- the gallery: everybody with at least two photos, each signed up with their first photo the gate takes;
- regulars: the members with at least N + 2 photos; in each of N rounds every regular visits with their next photo,
  and a share of the strangers passes the door too, all in a shuffled order;
- strangers: the people with one photo, never enrolled;
- then a final visit of each regular (their next photo) and of every stranger.
The run is made twice on fresh databases, learning off and on, so the two can be compared on the same photos.

Measures at the final visit: regulars named as themselves (DIR), named as somebody else, in the review band;
strangers named (FPIR); and the faces learned over the rounds, and how many of them were somebody else's photo."""

import random
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select, text

from core.enums import Decision, FaceOrigin
from core.errors import FaceGateError
from core.settings import Settings
from db.models import Attempt, Face
from db.session import session_scope
from services.evaluation.identification import _people
from services.evaluation.verification import subject_face
from services.faces.pipeline import AnalyzedFace, FacePipeline
from services.faces.quality import QualityGate
from services.identity import enrollment, recognition
from services.identity.calibration import GalleryCalibration


@dataclass
class VisitsResult:
    learning: bool
    members: int
    regulars: int
    strangers: int
    visits: int  # rounds before the final visit
    dir: float  # regulars named as themselves at the final visit
    wrongly_named: float  # regulars named as another member
    review: float  # regulars in the review band
    fpir: float  # strangers named as some member at the final visit
    faces_learned: int
    wrongly_learned: int  # learned faces that were another person's photo


@dataclass
class _Visitor:
    person: str | None  # None: a stranger
    face: AnalyzedFace


def evaluate_visits(
    pipeline: FacePipeline,
    settings: Settings,
    folder: Path,
    *,
    visits: int,
    seed: int = 0,
    progress: Callable[[Iterable], Iterable] = iter,
) -> list[VisitsResult]:
    """Learning off, then on (see the module)."""
    members, strangers = _people(folder, 2)
    gate = QualityGate.from_settings(settings)
    enrolled: dict[str, AnalyzedFace] = {}
    probes: dict[str, list[AnalyzedFace]] = {}  # each regular's photos after the enrolled one
    passing: list[AnalyzedFace] = []
    for name, paths in progress([*members.items(), *strangers.items()]):
        analysed = [subject_face(pipeline, path) for path in paths]
        if name in strangers:
            passing += [subject for _, subject in analysed if subject is not None]
            continue
        for i, (faces, _) in enumerate(analysed):
            try:
                enrolled[name] = enrollment.gate_faces(gate, faces, largest=True)
            except FaceGateError:
                continue
            probes[name] = [subject for _, subject in analysed[i + 1 :] if subject is not None]
            break
    regulars = sorted(name for name, faces in probes.items() if len(faces) >= visits + 1)
    return [
        _run(settings.model_copy(update={"learn_from_visits": learning}), enrolled,
             {name: probes[name][: visits + 1] for name in regulars}, passing, visits, seed)
        for learning in (False, True)
    ]  # fmt: skip


def _run(
    settings: Settings,
    enrolled: dict[str, AnalyzedFace],
    visits_of: dict[str, list[AnalyzedFace]],
    strangers: list[AnalyzedFace],
    visits: int,
    seed: int,
) -> VisitsResult:
    gallery = GalleryCalibration(settings)
    with session_scope() as session:
        session.execute(text("TRUNCATE members, faces, attempts, false_match_blacklist, audit_log CASCADE"))
        ids = {}
        for name in sorted(enrolled):
            member = enrollment.signup(
                session, settings, gallery, external_id=name, display_name=name, metadata={},
                faces=[enrollment.GatedFace(enrollment.Photo(name, b""), enrolled[name])],
                allow_duplicate=True, threshold=None, caller=None,
            )  # fmt: skip
            ids[name] = member.id
    rng = random.Random(seed)
    shuffled = rng.sample(strangers, len(strangers))
    share = len(shuffled) // max(visits, 1)
    attempt_person: dict[uuid.UUID, str | None] = {}

    def visit(visitor: _Visitor) -> recognition.FaceResult:
        with session_scope() as session:
            found = recognition.identify(session, settings, gallery, [visitor.face], threshold=None, k=2, caller=None)
        (result,) = found.faces
        if result.attempt_id is not None:
            attempt_person[result.attempt_id] = visitor.person
        return result

    for round_ in range(visits):
        door = [_Visitor(name, faces[round_]) for name, faces in visits_of.items()]
        door += [_Visitor(None, face) for face in shuffled[round_ * share : (round_ + 1) * share]]
        for visitor in rng.sample(door, len(door)):
            visit(visitor)
    named = wrongly = review = 0
    for name, faces in visits_of.items():
        result = visit(_Visitor(name, faces[visits]))
        if result.match is not None:
            named += result.match.member_id == ids[name]
            wrongly += result.match.member_id != ids[name]
        review += result.outcome.decision == Decision.REVIEW
    strangers_named = sum(visit(_Visitor(None, face)).outcome.decision == Decision.MATCH for face in strangers)
    owner = {member_id: name for name, member_id in ids.items()}
    with session_scope() as session:
        learned = session.execute(
            select(Face.member_id, Attempt.id)
            .join(Attempt, Attempt.id == Face.source_attempt_id)
            .where(Face.origin == FaceOrigin.VISIT)
        ).all()
    regulars = max(len(visits_of), 1)
    return VisitsResult(
        learning=settings.learn_from_visits,
        members=len(ids),
        regulars=len(visits_of),
        strangers=len(strangers),
        visits=visits,
        dir=named / regulars,
        wrongly_named=wrongly / regulars,
        review=review / regulars,
        fpir=strangers_named / max(len(strangers), 1),
        faces_learned=len(learned),
        wrongly_learned=sum(attempt_person.get(attempt) != owner[member] for member, attempt in learned),
    )
