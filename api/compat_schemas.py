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


class Pose(BaseModel):
    pitch: float
    roll: float
    yaw: float


class PluginFields(BaseModel):
    """What the asked-for plugins add to a face; absent when not asked for."""

    landmarks: list[tuple[int, int]] | None = None
    pose: Pose | None = None
    embedding: list[float] | None = Field(default=None, description="FaceNet's 128-d unit vector (not 512-d)")

    @staticmethod
    def fields(face: AnalyzedFace, plugins: frozenset[str]) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        if "landmarks" in plugins:
            fields["landmarks"] = [(_pixel(x), _pixel(y)) for x, y in face.detection.landmarks]
        if "pose" in plugins:
            fields["pose"] = Pose(**compat.pose(face))
        if "calculator" in plugins:
            fields["embedding"] = [round(float(v), 7) for v in face.embedding]
        return fields


class SubjectSimilarity(BaseModel):
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


class RecognizedFace(PluginFields):
    box: CompreFaceBox
    subjects: list[SubjectSimilarity]
    facegate: FaceGateView

    @classmethod
    def of(cls, result: FaceResult, rule: DecisionRule, count: int, plugins: frozenset[str]) -> "RecognizedFace":
        ranked = compat.predictions(result, rule, count)
        return cls(
            box=CompreFaceBox.of(result.face),
            subjects=[SubjectSimilarity(subject=p.candidate.external_id, similarity=p.similarity) for p in ranked],
            facegate=FaceGateView.of(result),
            **PluginFields.fields(result.face, plugins),
        )


def plugin_versions(plugins: frozenset[str], status: bool) -> dict[str, str] | None:
    """CompreFace's `plugins_versions`, sent when the client asks for `status`."""
    if not status:
        return None
    return {name: version for name, version in PLUGIN_VERSIONS.items() if name in plugins | {"detector", "calculator"}}


class RecognizeResponse(BaseModel):
    result: list[RecognizedFace]
    plugins_versions: dict[str, str] | None = None


class DetectedFace(PluginFields):
    box: CompreFaceBox

    @classmethod
    def of(cls, face: AnalyzedFace, plugins: frozenset[str]) -> "DetectedFace":
        return cls(box=CompreFaceBox.of(face), **PluginFields.fields(face, plugins))


class DetectResponse(BaseModel):
    result: list[DetectedFace]
    plugins_versions: dict[str, str] | None = None


class VerifiedFace(DetectedFace):
    similarity: float
    facegate: FaceGateView


class VerifyResponse(BaseModel):
    result: list[VerifiedFace]
    plugins_versions: dict[str, str] | None = None


class ComparedFace(DetectedFace):
    similarity: float


class Verification(BaseModel):
    source_image_face: DetectedFace
    face_matches: list[ComparedFace]
    plugins_versions: dict[str, str] | None = None


class VerificationResponse(BaseModel):
    result: list[Verification]


class Example(BaseModel):
    image_id: uuid.UUID
    subject: str


class AddedExample(Example):
    facegate: dict[str, Any] = Field(description="member_id, and created: whether this face created the subject")


class ExamplePage(BaseModel):
    faces: list[Example]
    page_number: int
    page_size: int
    total_pages: int
    total_elements: int


class Deleted(BaseModel):
    deleted: int


class SubjectBody(BaseModel):
    subject: str = Field(min_length=1, max_length=255)


class SubjectList(BaseModel):
    subjects: list[str]


class SubjectUpdated(BaseModel):
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
    def of(face: AnalyzedFace) -> dict[str, int]:
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
