"""Enrollment, the one home of signup and face enrollment for the API and the CLI:
gate each photo's face (no database needed), then store the member and faces after the duplicate-signup check."""

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from core.errors import ConflictError, FaceGateError
from core.settings import Settings
from db.models import Face, Member
from services.faces.pipeline import AnalyzedFace, FacePipeline
from services.faces.quality import QualityGate
from services.identity import members
from services.identity.matching import nearest_members


@dataclass(frozen=True)
class Photo:
    filename: str
    data: bytes


def gate_photo(pipeline: FacePipeline, data: bytes, *, largest: bool) -> AnalyzedFace:
    """The one face a photo may enroll, after the quality gate (FaceRejectedError says why not)."""
    gate = QualityGate.from_settings(pipeline.settings)
    faces = pipeline.analyze_photo(data)
    face = faces[gate.choose([f.detection.size for f in faces], largest=largest)]
    gate.check(face_size=face.detection.size, detection_score=face.detection.score, crop_sharpness=face.sharpness)
    return face


@dataclass(frozen=True)
class GatedFace:
    photo: Photo
    face: AnalyzedFace


def gate_photos(pipeline: FacePipeline, photos: list[Photo], *, largest: bool) -> list[GatedFace]:
    """Every photo's face, or the first refusal, naming the photo."""
    faces = []
    for index, photo in enumerate(photos):
        try:
            faces.append(GatedFace(photo, gate_photo(pipeline, photo.data, largest=largest)))
        except FaceGateError as exc:
            exc.details.update(photo_index=index, filename=photo.filename)
            raise
    return faces


def check_not_duplicate(
    session: Session, settings: Settings, member: Member, face: AnalyzedFace, *, threshold: float
) -> None:
    """Refuse a face that matches another member (a second signup of the same person)."""
    nearest = nearest_members(session, face.embedding, k=2, blacklist_radius=settings.blacklist_radius)
    other = next((c for c in nearest if c.member_id != member.id and c.distance <= threshold), None)
    if other is not None:
        raise ConflictError(
            f"This face matches another member ({other.external_id}); pass allow_duplicate=true to enroll anyway.",
            code="duplicate_face",
            member={"id": str(other.member_id), "external_id": other.external_id, "display_name": other.display_name},
            distance=round(other.distance, 4),
            threshold=threshold,
        )


def store_face(session: Session, settings: Settings, member: Member, face: AnalyzedFace) -> Face:
    stored = Face(
        member_id=member.id,
        embedding=face.embedding.tolist(),
        detection_score=face.detection.score,
        quality={
            "face_size": round(face.detection.size, 1),
            "sharpness": round(face.sharpness, 1),
            "box": face.detection.box.rounded(),
        },
        crop_jpeg=face.crop_jpeg() if settings.store_face_crops else None,
    )
    session.add(stored)
    session.flush()
    return stored


def add_face(
    session: Session, settings: Settings, member: Member, face: AnalyzedFace, *, allow_duplicate: bool, threshold: float
) -> Face:
    """Enroll a gated face for `member`, unless it is another member's (and no override)."""
    if not allow_duplicate:
        check_not_duplicate(session, settings, member, face, threshold=threshold)
    stored = store_face(session, settings, member, face)
    session.refresh(stored)
    return stored


def signup(
    session: Session,
    settings: Settings,
    *,
    external_id: str,
    display_name: str,
    metadata: dict[str, Any],
    faces: list[GatedFace],
    allow_duplicate: bool,
    threshold: float,
) -> Member:
    """Create a member with its gated faces: all of it is stored, or (on any error) none of it."""
    member = members.create_member(session, external_id=external_id, display_name=display_name, metadata=metadata)
    for index, gated in enumerate(faces):
        try:
            if not allow_duplicate:
                check_not_duplicate(session, settings, member, gated.face, threshold=threshold)
            store_face(session, settings, member, gated.face)
        except FaceGateError as exc:
            exc.details.update(photo_index=index, filename=gated.photo.filename)
            raise
    session.refresh(member)
    return member
