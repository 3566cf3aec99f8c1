"""The JSON bodies FaceGate answers with, as typed dictionaries (ids and times are strings, as in the JSON).
tests/facegate_client/test_types.py checks each against the service's OpenAPI schema."""

from typing import Any, Literal, TypedDict

Decision = Literal["match", "unknown", "no_match", "review", "enrolled"]
AttemptKind = Literal["identify", "verify", "enroll"]
ReviewStatus = Literal["pending", "correct", "false_match", "false_non_match"]
Verdict = Literal["correct", "false_match", "false_non_match"]
BatchStatus = Literal["created", "exists", "error"]


class Box(TypedDict):
    x: float
    y: float
    width: float
    height: float


class ApparentExpression(TypedDict):
    emotion: dict[str, float]
    dominant_emotion: str


class Face(TypedDict):
    id: str
    member_id: str
    detection_score: float
    quality: dict[str, Any]
    enabled: bool
    origin: Literal["signup", "review", "visit"]
    source_attempt_id: str | None
    created_at: str


class Member(TypedDict):
    id: str
    external_id: str
    display_name: str
    metadata: dict[str, Any]
    created_at: str
    updated_at: str
    faces: list[Face]
    template_faces: int


class ErrorBody(TypedDict):
    code: str
    message: str
    details: dict[str, Any]


class BatchItem(TypedDict):
    external_id: str
    status: BatchStatus
    member_id: str | None
    faces: int | None
    error: ErrorBody | None


class MemberBatch(TypedDict):
    items: list[BatchItem]
    created: int
    exists: int
    errors: int


class MemberPage(TypedDict):
    items: list[Member]
    total: int
    offset: int
    limit: int


class DetectedFace(TypedDict):
    box: Box
    landmarks: dict[str, tuple[float, float]]
    score: float
    apparent_expression: ApparentExpression


class DetectResult(TypedDict):
    faces: list[DetectedFace]


class Candidate(TypedDict):
    member_id: str
    external_id: str
    display_name: str
    distance: float
    similarity: float
    score: float | None
    confidence: float | None
    template_faces: int | None
    blacklisted: bool


class Match(TypedDict):
    member_id: str
    external_id: str
    display_name: str
    distance: float
    score: float
    confidence: float | None


class IdentifiedFace(DetectedFace):
    candidates: list[Candidate]
    match: Match | None
    decision: Decision
    review: bool
    attempt_id: str | None  # null only on the live stream (/v1/identify/stream), which records each track once


class IdentifyResult(TypedDict):
    faces: list[IdentifiedFace]
    threshold: float
    review_threshold: float
    gallery_size: int
    calibrated: bool


class VerifyResult(TypedDict):
    member_id: str
    match: bool
    review: bool
    distance: float | None
    confidence: float | None
    threshold: float
    faces_in_photo: int
    face: DetectedFace
    attempt_id: str


class MemberRef(TypedDict):
    id: str
    external_id: str
    display_name: str


class Attempt(TypedDict):
    id: str
    request_id: str
    kind: AttemptKind
    face_index: int
    box: Box
    detection_score: float
    candidates: list[Candidate]
    threshold: float
    decision: Decision
    claimed_member_id: str | None
    matched_member_id: str | None
    distance: float | None
    score: float | None
    confidence: float | None
    needs_review: bool
    apparent_expression: ApparentExpression | None
    review_status: ReviewStatus
    review_note: str | None
    reviewed_at: str | None
    created_at: str


class AttemptPage(TypedDict):
    items: list[Attempt]
    total: int
    offset: int
    limit: int


class MemberFaceDistance(TypedDict):
    face: Face
    distance: float


class VerdictEffect(TypedDict):
    """The standing verdict: what it says (meaning), who (member) and what it did."""

    verdict: Verdict
    meaning: str
    member: MemberRef | None
    enrolled_face_id: str | None
    face_enrolled: bool
    blacklist_entry_id: str | None
    learned_face_removed: bool


class ReviewItem(TypedDict):
    attempt: Attempt
    probe_crop_available: bool
    member: MemberRef | None
    member_faces: list[MemberFaceDistance]
    other_member: MemberRef | None
    other_faces: list[MemberFaceDistance]
    verdict: VerdictEffect | None


class BlacklistEntry(TypedDict):
    id: str
    member: MemberRef
    attempt_id: str | None
    note: str | None
    created_at: str
