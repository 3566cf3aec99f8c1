"""Enrolling a folder of photos (`facegate enroll-folder`): one member per sub-folder, its name the external id,
each photo through the quality gate and the duplicate-signup check, one transaction per photo.

A journal of the photos done lets an interrupted run carry on; a photo stored by a run cut off before its journal
line is found again by its embedding and counted as enrolled before, not stored twice."""

from collections.abc import Iterator
from pathlib import Path
from typing import Literal, NamedTuple

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from core.errors import FaceGateError
from core.settings import Settings
from db.models import Face, Member
from db.session import session_scope
from services.faces.images import IMAGE_SUFFIXES
from services.faces.pipeline import AnalyzedFace, FacePipeline
from services.identity import enrollment, members
from services.identity.calibration import GalleryCalibration

# What became of a photo: enrolled; enrolled by an earlier run cut off before it wrote the journal line; or the
# code and message of its refusal.
Outcome = Literal["enrolled", "exists"] | tuple[str, str]
# The same photo embeds to the same vector again, while two photos of one person lie far further apart.
SAME_PHOTO_DISTANCE = 1e-3


class Person(NamedTuple):
    folder: Path  # its name is the member's external id
    photos: list[Path]  # those still to enroll
    resumed: bool  # an earlier run did some of its photos

    @property
    def external_id(self) -> str:
        return self.folder.name

    @property
    def display_name(self) -> str:
        return self.folder.name.replace("_", " ")


class FolderPlan(NamedTuple):
    """What a run has to do: the people with photos left, and how many photos there are in all."""

    people: list[Person]
    folders: int
    total: int  # photos in the folder (within per_person)

    @property
    def todo(self) -> int:
        return sum(len(person.photos) for person in self.people)


def plan(folder: Path, *, per_person: int | None, done: set[str]) -> FolderPlan:
    """The people of FOLDER/<person>/<photos> (at most `per_person` files each, images only), less the photos
    whose resolved paths are in `done` (the journal). A folder that is missing, or holds no such sub-folder, is
    refused: enrolling nobody would look like success."""
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder")
    folders = sorted(d for d in folder.iterdir() if d.is_dir())
    if not folders:
        raise ValueError(f"{folder} holds no <person>/ folders of photos (one sub-folder per member)")
    photos = {
        person: [path for path in sorted(person.iterdir())[:per_person] if path.suffix.lower() in IMAGE_SUFFIXES]
        for person in folders
    }
    people = []
    for person, paths in photos.items():
        left = [path for path in paths if str(path.resolve()) not in done]
        if left:
            people.append(Person(person, left, resumed=len(left) < len(paths)))
    return FolderPlan(people, len(folders), sum(len(paths) for paths in photos.values()))


def enroll_people(
    pipeline: FacePipeline,
    settings: Settings,
    gallery: GalleryCalibration,
    people: list[Person],
    *,
    largest: bool,
    allow_duplicate: bool,
    consent: members.Consent | None = None,
) -> Iterator[tuple[Path, Outcome]]:
    """Each photo of each person, told as soon as it is done. It owns its transactions (it takes no session):
    the models run first, then one short transaction per photo, so a refusal leaves nothing behind. `consent`: the
    consent every person of the folder gave, recorded with each member created."""
    for person in people:
        for path in person.photos:
            outcome: Outcome
            try:
                face = enrollment.gate_photo(pipeline, path.read_bytes(), largest=largest)
                with session_scope() as session:  # committed before the caller hears of it
                    outcome = enroll_face(
                        session, settings, gallery, person, face, allow_duplicate=allow_duplicate, consent=consent
                    )
            except FaceGateError as exc:
                outcome = (exc.code, exc.message)
            yield path, outcome


def enroll_face(
    session: Session,
    settings: Settings,
    gallery: GalleryCalibration,
    person: Person,
    face: AnalyzedFace,
    *,
    allow_duplicate: bool,
    consent: members.Consent | None = None,
) -> Literal["enrolled", "exists"]:
    """The person's member, found by external id or created, gets the face, unless it holds this very photo
    already (stored by a run cut off before its journal line)."""
    member = session.scalar(select(Member).where(Member.external_id == person.external_id))
    if member is None:
        member = members.create_member(
            session, external_id=person.external_id, display_name=person.display_name, metadata={}, consent=consent
        )
    elif session.scalar(
        select(
            exists().where(
                Face.member_id == member.id, Face.embedding.l2_distance(face.embedding) < SAME_PHOTO_DISTANCE
            )
        )
    ):
        return "exists"
    enrollment.add_face(
        session, settings, gallery, member, face, allow_duplicate=allow_duplicate, threshold=None, caller=None
    )
    return "enrolled"
