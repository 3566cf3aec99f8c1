"""Request and response bodies of the v1 API."""

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from db.models import Face, Member
from services.matching import Candidate
from services.pipeline import AnalyzedFace
from services.recognition import FaceResult

LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")


class MemberCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    external_id: str = Field(min_length=1, max_length=255)
    display_name: str = Field(min_length=1, max_length=255)
    metadata: dict[str, Any] = Field(default_factory=dict)


class MemberUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    external_id: str | None = Field(default=None, min_length=1, max_length=255)
    display_name: str | None = Field(default=None, min_length=1, max_length=255)
    metadata: dict[str, Any] | None = None


class FaceOut(BaseModel):
    id: uuid.UUID
    member_id: uuid.UUID
    detection_score: float
    quality: dict[str, Any]
    enabled: bool
    created_at: datetime

    @classmethod
    def of(cls, face: Face) -> "FaceOut":
        return cls(id=face.id, member_id=face.member_id, detection_score=face.detection_score,
                   quality=face.quality, enabled=face.enabled, created_at=face.created_at)


class MemberOut(BaseModel):
    id: uuid.UUID
    external_id: str
    display_name: str
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    faces: list[FaceOut]

    @classmethod
    def of(cls, member: Member) -> "MemberOut":
        return cls(id=member.id, external_id=member.external_id, display_name=member.display_name,
                   metadata=member.attributes, created_at=member.created_at, updated_at=member.updated_at,
                   faces=[FaceOut.of(f) for f in member.faces])


class MemberPage(BaseModel):
    items: list[MemberOut]
    total: int
    offset: int
    limit: int


class Box(BaseModel):
    x: float
    y: float
    width: float
    height: float


class ApparentExpression(BaseModel):
    """DeepFace.analyze's emotion fields: a percentage per label and the dominant label."""

    emotion: dict[str, float]
    dominant_emotion: str


def face_fields(face: AnalyzedFace) -> dict[str, Any]:
    x1, y1, x2, y2 = face.detection.box
    return dict(
        box=Box(x=round(x1, 1), y=round(y1, 1), width=round(x2 - x1, 1), height=round(y2 - y1, 1)),
        landmarks={name: (round(float(x), 1), round(float(y), 1))
                   for name, (x, y) in zip(LANDMARK_NAMES, face.detection.landmarks)},
        score=round(face.detection.score, 5),
        apparent_expression=ApparentExpression(**face.expression),
    )


class DetectedFaceOut(BaseModel):
    box: Box
    landmarks: dict[str, tuple[float, float]]
    score: float
    apparent_expression: ApparentExpression

    @classmethod
    def of(cls, face: AnalyzedFace) -> "DetectedFaceOut":
        return cls(**face_fields(face))


class DetectResponse(BaseModel):
    faces: list[DetectedFaceOut]


class CandidateOut(BaseModel):
    member_id: uuid.UUID
    external_id: str
    display_name: str
    distance: float
    similarity: float
    blacklisted: bool

    @classmethod
    def of(cls, c: Candidate) -> "CandidateOut":
        return cls(member_id=c.member_id, external_id=c.external_id, display_name=c.display_name,
                   distance=round(c.distance, 5), similarity=round(c.similarity, 5), blacklisted=c.blacklisted)


class MatchOut(BaseModel):
    member_id: uuid.UUID
    external_id: str
    display_name: str
    distance: float


class IdentifiedFaceOut(DetectedFaceOut):
    candidates: list[CandidateOut]
    match: MatchOut | None = Field(description="The matched member, or null: unknown")
    attempt_id: uuid.UUID

    @classmethod
    def of(cls, result: FaceResult) -> "IdentifiedFaceOut":
        m = result.match
        return cls(
            **face_fields(result.face),
            candidates=[CandidateOut.of(c) for c in result.candidates],
            match=MatchOut(member_id=m.member_id, external_id=m.external_id, display_name=m.display_name,
                           distance=round(m.distance, 5)) if m else None,
            attempt_id=result.attempt_id,
        )


class IdentifyResponse(BaseModel):
    faces: list[IdentifiedFaceOut]
    threshold: float


class VerifyResponse(BaseModel):
    member_id: uuid.UUID
    match: bool
    distance: float | None
    threshold: float
    faces_in_photo: int
    face: DetectedFaceOut
    attempt_id: uuid.UUID


class Health(BaseModel):
    status: str
    checks: dict[str, str] = Field(default_factory=dict)
