"""Bodies of the CompreFace- and DeepStack-compatible routes, in their clients' field names (exadel-inc/CompreFace
docs/Rest-API-description.md; DeepStack's and CodeProject.AI's face module). FaceGate's own view of each
recognition rides along in a `facegate` field the clients ignore."""

import uuid
from typing import Any

from pydantic import BaseModel, Field

from core.enums import Decision
from services.faces.pipeline import AnalyzedFace
from services.identity import compat
from services.identity.matching import DecisionRule
from services.identity.recognition import FaceResult

# CompreFace's plugins FaceGate can answer; others (age, gender, mask) are ignored, as are unknown names.
ANSWERED_PLUGINS = frozenset({"landmarks", "pose", "calculator"})
PLUGIN_VERSIONS = {
    "detector": "facegate.MTCNN",
    "calculator": "facegate.FaceNet128",
    "landmarks": "facegate.MTCNN5Landmarks",
    "pose": "facegate.LandmarkPose",
}


def _pixel(value: float) -> int:
    return max(int(round(value)), 0)


class CompreFaceError(BaseModel):
    message: str
    code: int = Field(description="CompreFace's error code: 28 no face, 31 several faces, 42 subject not found, ...")


class CompreFaceBox(BaseModel):
    probability: float
    x_min: int
    y_min: int
    x_max: int
    y_max: int

    @classmethod
    def of(cls, face: AnalyzedFace) -> "CompreFaceBox":
        x1, y1, x2, y2 = face.detection.box.corners
        return cls(
            probability=round(face.detection.score, 5),
            x_min=_pixel(x1),
            y_min=_pixel(y1),
            x_max=_pixel(x2),
            y_max=_pixel(y2),
        )


class CompreFacePose(BaseModel):
    pitch: float
    roll: float
    yaw: float


class CompreFacePluginFields(BaseModel):
    """What the asked-for plugins add to a face; absent when not asked for."""

    landmarks: list[tuple[int, int]] | None = None
    pose: CompreFacePose | None = None
    embedding: list[float] | None = Field(default=None, description="FaceNet's 128-d unit vector (not 512-d)")

    @staticmethod
    def fields(face: AnalyzedFace, plugins: frozenset[str]) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        if "landmarks" in plugins:
            fields["landmarks"] = [(_pixel(x), _pixel(y)) for x, y in face.detection.landmarks]
        if "pose" in plugins:
            fields["pose"] = CompreFacePose(**compat.pose(face))
        if "calculator" in plugins:
            fields["embedding"] = [round(float(v), 7) for v in face.embedding]
        return fields


class CompreFaceSubjectSimilarity(BaseModel):
    subject: str
    similarity: float = Field(
        description="FaceGate's calibrated score mapped onto [0, 1]: 0.60 and up is FaceGate's match, 0.40 to "
        "0.60 its review band, below 0.40 unknown"
    )


class FaceGateView(BaseModel):
    """FaceGate's own decision about the face, recorded as the attempt `attempt_id` (review, verdicts)."""

    decision: Decision
    review: bool = Field(description="In the review band: nobody named, queued for a person")
    member_id: uuid.UUID | None = Field(default=None, description="The named member (a match)")
    attempt_id: uuid.UUID | None = None

    @classmethod
    def of(cls, result: FaceResult) -> "FaceGateView":
        match = result.match
        return cls(
            decision=result.outcome.decision,
            review=result.outcome.needs_review,
            member_id=match.member_id if match else None,
            attempt_id=result.attempt_id,
        )


class CompreFaceRecognizedFace(CompreFacePluginFields):
    box: CompreFaceBox
    subjects: list[CompreFaceSubjectSimilarity]
    facegate: FaceGateView

    @classmethod
    def of(
        cls, result: FaceResult, rule: DecisionRule, count: int, plugins: frozenset[str]
    ) -> "CompreFaceRecognizedFace":
        ranked = compat.predictions(result, rule, count)
        return cls(
            box=CompreFaceBox.of(result.face),
            subjects=[
                CompreFaceSubjectSimilarity(subject=p.candidate.external_id, similarity=p.similarity) for p in ranked
            ],
            facegate=FaceGateView.of(result),
            **CompreFacePluginFields.fields(result.face, plugins),
        )


def plugin_versions(plugins: frozenset[str], status: bool) -> dict[str, str] | None:
    """CompreFace's `plugins_versions`, sent when the client asks for `status`."""
    if not status:
        return None
    return {name: version for name, version in PLUGIN_VERSIONS.items() if name in plugins | {"detector", "calculator"}}


class CompreFaceRecognizeResponse(BaseModel):
    result: list[CompreFaceRecognizedFace]
    plugins_versions: dict[str, str] | None = None


class CompreFaceDetectedFace(CompreFacePluginFields):
    box: CompreFaceBox

    @classmethod
    def of(cls, face: AnalyzedFace, plugins: frozenset[str]) -> "CompreFaceDetectedFace":
        return cls(box=CompreFaceBox.of(face), **CompreFacePluginFields.fields(face, plugins))


class CompreFaceDetectResponse(BaseModel):
    result: list[CompreFaceDetectedFace]
    plugins_versions: dict[str, str] | None = None


class CompreFaceVerifiedFace(CompreFaceDetectedFace):
    similarity: float
    facegate: FaceGateView


class CompreFaceVerifyResponse(BaseModel):
    result: list[CompreFaceVerifiedFace]
    plugins_versions: dict[str, str] | None = None


class CompreFaceComparedFace(CompreFaceDetectedFace):
    similarity: float


class CompreFaceVerification(BaseModel):
    source_image_face: CompreFaceDetectedFace
    face_matches: list[CompreFaceComparedFace]
    plugins_versions: dict[str, str] | None = None


class CompreFaceVerificationResponse(BaseModel):
    result: list[CompreFaceVerification]


class CompreFaceExample(BaseModel):
    image_id: uuid.UUID
    subject: str


class CompreFaceAddedExample(CompreFaceExample):
    facegate: dict[str, Any] = Field(description="member_id, and created: whether this face created the subject")


class CompreFaceExamplePage(BaseModel):
    faces: list[CompreFaceExample]
    page_number: int
    page_size: int
    total_pages: int
    total_elements: int


class CompreFaceDeleted(BaseModel):
    deleted: int


class CompreFaceSubjectBody(BaseModel):
    subject: str = Field(min_length=1, max_length=255)


class CompreFaceSubjectList(BaseModel):
    subjects: list[str]


class CompreFaceSubjectUpdated(BaseModel):
    updated: bool


# DeepStack


class DeepStackFailure(BaseModel):
    success: bool = False
    error: str


class DeepStackBox(BaseModel):
    x_min: int
    y_min: int
    x_max: int
    y_max: int

    @staticmethod
    def fields(face: AnalyzedFace) -> dict[str, int]:
        x1, y1, x2, y2 = face.detection.box.corners
        return {"x_min": _pixel(x1), "y_min": _pixel(y1), "x_max": _pixel(x2), "y_max": _pixel(y2)}


class DeepStackDetection(DeepStackBox):
    confidence: float


class DeepStackDetectResponse(BaseModel):
    success: bool = True
    predictions: list[DeepStackDetection]
    count: int


class DeepStackPrediction(DeepStackBox):
    userid: str = Field(description='The member\'s external id when FaceGate names them, else "unknown"')
    confidence: float = Field(description="The similarity of the nearest member, as in the CompreFace routes")
    facegate: FaceGateView


class DeepStackRecognizeResponse(BaseModel):
    success: bool
    predictions: list[DeepStackPrediction]
    count: int
    message: str | None = None
    error: str | None = Field(default=None, description='"No face found in image" when there is none')


class DeepStackRegistered(BaseModel):
    success: bool
    message: str | None = Field(default=None, description='"face added" (a new member) or "face updated"')
    error: str | None = Field(default=None, description='"No face detected" when no image had a usable face')
    facegate: dict[str, Any] | None = None


class DeepStackFaceList(BaseModel):
    success: bool = True
    faces: list[str]


class DeepStackDone(BaseModel):
    success: bool = True


class DeepStackMatch(BaseModel):
    success: bool
    similarity: float | None = None
    error: str | None = None
    facegate: dict[str, Any] | None = None
