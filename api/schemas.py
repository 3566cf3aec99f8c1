"""Request and response bodies of the v1 API."""

import base64
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, HttpUrl, UrlConstraints, model_validator

from api.deps import Moment
from core.enums import AttemptKind, Decision, DeliveryStatus, FaceOrigin, ReviewStatus, Role, Verdict
from core.errors import FaceGateError
from core.logs import redact_url
from db.models import Face, Member
from services.faces.pipeline import AnalyzedFace
from services.identity.enrollment import BatchOutcome
from services.identity.matching import Candidate
from services.identity.members import Consent, MemberRecord
from services.identity.recognition import FaceResult
from services.identity.review import VerdictEffect
from services.identity.tracking import Track

LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")


def _without_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


# Text that reaches the database; PostgreSQL cannot store NUL. (Query strings and JSON bodies are also screened
# whole by api.middleware; this covers multipart form fields.)
Text = Annotated[str, AfterValidator(_without_nul)]

# Member metadata is a record's few fields, not a document: deeper nesting is refused before anything walks it.
METADATA_MAX_DEPTH = 32


def _storable_metadata(value: dict[str, Any]) -> dict[str, Any]:
    """Metadata PostgreSQL can store as JSONB (no NUL in any key or string) and nested at most METADATA_MAX_DEPTH
    deep; walked without recursion, however deep it came."""
    waiting: list[tuple[Any, int]] = [(value, 1)]
    while waiting:
        item, depth = waiting.pop()
        if depth > METADATA_MAX_DEPTH:
            raise ValueError(f"must be nested at most {METADATA_MAX_DEPTH} deep")
        if isinstance(item, str):
            _without_nul(item)
        elif isinstance(item, dict):
            waiting += [(key, depth) for key in item] + [(v, depth + 1) for v in item.values()]
        elif isinstance(item, list):
            waiting += [(v, depth + 1) for v in item]
    return value


Metadata = Annotated[dict[str, Any], AfterValidator(_storable_metadata)]


class MemberCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    external_id: Text = Field(min_length=1, max_length=255)
    display_name: Text = Field(min_length=1, max_length=255)
    metadata: Metadata = Field(default_factory=dict)
    consent_text_version: Text | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="The version of the consent text the person agreed to; recorded with the member and audited"
        " (required when the service sets FACEGATE_REQUIRE_CONSENT)",
    )
    consent_given_at: Moment | None = Field(
        default=None, description="When the person gave consent (with consent_text_version); default: now"
    )

    def consent(self) -> Consent | None:
        if self.consent_text_version is None:
            return None
        return Consent(self.consent_text_version, self.consent_given_at or datetime.now(UTC))


class MemberUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    external_id: Text | None = Field(default=None, min_length=1, max_length=255)
    display_name: Text | None = Field(default=None, min_length=1, max_length=255)
    metadata: Metadata | None = None


class FaceOut(BaseModel):
    id: uuid.UUID
    member_id: uuid.UUID
    detection_score: float
    quality: dict[str, Any]
    enabled: bool
    origin: FaceOrigin = Field(
        description="signup: a photo sent to enroll; review: enrolled by a reviewer's verdict; visit: learned from a"
        " confident match (removed when that attempt is found a false match)"
    )
    source_attempt_id: uuid.UUID | None = Field(
        description="The attempt a learned face came from, or the enroll attempt that queued a borderline one"
    )
    created_at: datetime

    @classmethod
    def from_face(cls, face: Face) -> "FaceOut":
        return cls(
            id=face.id,
            member_id=face.member_id,
            detection_score=face.detection_score,
            quality=face.quality,
            enabled=face.enabled,
            origin=face.origin,
            source_attempt_id=face.source_attempt_id,
            created_at=face.created_at,
        )


class ConsentOut(BaseModel):
    text_version: str
    given_at: datetime


class MemberOut(BaseModel):
    id: uuid.UUID
    external_id: str
    display_name: str
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    faces: list[FaceOut]
    template_faces: int = Field(description="How many enabled faces back the member's template (identify uses it)")
    consent: ConsentOut | None = Field(description="The consent recorded at signup; null: none recorded")

    @classmethod
    def from_member(cls, member: Member) -> "MemberOut":
        return cls(
            id=member.id,
            external_id=member.external_id,
            display_name=member.display_name,
            metadata=member.metadata_,
            created_at=member.created_at,
            updated_at=member.updated_at,
            faces=[FaceOut.from_face(f) for f in member.faces],
            template_faces=member.template_faces,
            consent=ConsentOut(text_version=member.consent_text_version, given_at=member.consent_given_at)
            if member.consent_text_version and member.consent_given_at
            else None,
        )


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


EXPRESSION_DOC = "null when the service has expression turned off (FACEGATE_EXPRESSION_ENABLED=false)"


def face_fields(face: AnalyzedFace) -> dict[str, Any]:
    return {
        "box": Box(**face.detection.box.rounded()),
        "landmarks": {
            name: (round(float(x), 1), round(float(y), 1))
            for name, (x, y) in zip(LANDMARK_NAMES, face.detection.landmarks, strict=True)
        },
        "score": round(face.detection.score, 5),
        "apparent_expression": ApparentExpression(**face.expression) if face.expression else None,
    }


class DetectedFaceOut(BaseModel):
    box: Box
    landmarks: dict[str, tuple[float, float]]
    score: float
    apparent_expression: ApparentExpression | None = Field(description=EXPRESSION_DOC)

    @classmethod
    def from_face(cls, face: AnalyzedFace) -> "DetectedFaceOut":
        return cls(**face_fields(face))


class DetectResponse(BaseModel):
    faces: list[DetectedFaceOut]


CONFIDENCE_DOC = (
    "1 - the estimated chance that someone who is not enrolled comes this near some member of the current gallery"
    " (identify) or this member (verify); null with a fixed per-request threshold"
)


class CandidateOut(BaseModel):
    member_id: uuid.UUID
    external_id: str
    display_name: str
    distance: float = Field(description="Euclidean distance to the member's template (0 = identical, 2 = opposite)")
    similarity: float
    score: float | None = Field(
        default=None, description="What the decision compares: 2*distance - the next candidate's (calibrated)"
    )
    confidence: float | None = Field(default=None, description=CONFIDENCE_DOC)
    template_faces: int | None = Field(default=None, description="How many enrolled faces back the template")
    blacklisted: bool

    @model_validator(mode="before")
    @classmethod
    def similarity_from_distance(cls, data: Any) -> Any:
        """Attempts recorded before similarity was stored with their candidates."""
        if isinstance(data, dict) and "similarity" not in data and "distance" in data:
            return {**data, "similarity": round(1.0 - float(data["distance"]) ** 2 / 2.0, 5)}
        return data

    @classmethod
    def from_candidate(cls, c: Candidate) -> "CandidateOut":
        return cls(
            member_id=c.member_id,
            external_id=c.external_id,
            display_name=c.display_name,
            distance=round(c.distance, 5),
            similarity=round(c.similarity, 5),
            score=round(c.score, 5),
            confidence=c.confidence,
            template_faces=c.template_faces,
            blacklisted=c.blacklisted,
        )


class MatchOut(BaseModel):
    member_id: uuid.UUID
    external_id: str
    display_name: str
    distance: float
    score: float
    confidence: float | None = Field(description=CONFIDENCE_DOC)


class IdentifiedFaceOut(DetectedFaceOut):
    candidates: list[CandidateOut]
    match: MatchOut | None = Field(description="The matched member, or null: unknown or in the review band")
    decision: Decision = Field(description="match, unknown, or review (nobody named; queued for a person)")
    review: bool = Field(description="In the review band between a confident match and clearly unknown")
    attempt_id: uuid.UUID | None = Field(
        description="The recorded attempt; null on a live stream, which records each track once, when it has"
        " been seen on FACEGATE_STREAM_TRACK_SETTLE_FRAMES frames, and when the nearest member was erased while the"
        " request was in flight (nothing of the probe is kept)"
    )

    @classmethod
    def from_result(cls, result: FaceResult) -> "IdentifiedFaceOut":
        m = result.match
        return cls(
            **face_fields(result.face),
            candidates=[CandidateOut.from_candidate(c) for c in result.candidates],
            match=MatchOut(
                member_id=m.member_id,
                external_id=m.external_id,
                display_name=m.display_name,
                distance=round(m.distance, 5),
                score=round(m.score, 5),
                confidence=m.confidence,
            )
            if m
            else None,
            decision=result.outcome.decision,
            review=result.outcome.needs_review,
            attempt_id=result.attempt_id,
        )


class IdentifyResponse(BaseModel):
    faces: list[IdentifiedFaceOut]
    threshold: float = Field(
        description="The accept score: calibrated for the gallery (on 2*d1 - d2), or the request's distance"
    )
    review_threshold: float = Field(description="Up to this score a face is in the review band")
    gallery_size: int = Field(
        description="Members with a template when the decision was last calibrated (refitted as the gallery changes)"
    )
    calibrated: bool


class VerifyResponse(BaseModel):
    member_id: uuid.UUID
    match: bool
    review: bool = Field(description="No match, but near enough that a person should look")
    distance: float | None
    confidence: float | None = Field(description=CONFIDENCE_DOC)
    threshold: float
    faces_in_photo: int
    face: DetectedFaceOut
    attempt_id: uuid.UUID


class Health(BaseModel):
    status: str
    checks: dict[str, str] = Field(default_factory=dict)


class MemberRef(BaseModel):
    id: uuid.UUID
    external_id: str
    display_name: str

    @classmethod
    def from_member(cls, member: Member) -> "MemberRef":
        return cls(id=member.id, external_id=member.external_id, display_name=member.display_name)


class AttemptOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    request_id: uuid.UUID
    kind: AttemptKind
    face_index: int
    box: Box
    detection_score: float
    candidates: list[CandidateOut]
    threshold: float
    decision: Decision
    claimed_member_id: uuid.UUID | None
    matched_member_id: uuid.UUID | None
    distance: float | None
    score: float | None
    confidence: float | None
    needs_review: bool
    apparent_expression: ApparentExpression | None = Field(validation_alias="expression")
    review_status: ReviewStatus
    review_note: str | None
    reviewed_at: datetime | None
    created_at: datetime


class AttemptPage(BaseModel):
    items: list[AttemptOut]
    total: int
    offset: int
    limit: int


class MemberFaceDistance(BaseModel):
    face: FaceOut
    distance: float


class VerdictOut(BaseModel):
    """The standing verdict on an attempt: what it says and what it did."""

    verdict: Verdict
    meaning: str = Field(
        description="The verdict in plain words, e.g. 'Not in the gallery: the face is nobody enrolled.'"
    )
    member: MemberRef | None = Field(
        description="Who the face is (correct on a match, false_non_match) or is not (false_match); null: nobody"
    )
    enrolled_face_id: uuid.UUID | None = Field(
        description="The face this verdict put into the member's template: the probe, or a held signup photo"
    )
    face_enrolled: bool = Field(description="That face is still one of the member's enabled faces")
    blacklist_entry_id: uuid.UUID | None = Field(description="false_match: the pair that no longer matches")
    learned_face_removed: bool = Field(description="A face the template had learned from this visit was taken out")

    @classmethod
    def from_effect(cls, effect: VerdictEffect) -> "VerdictOut":
        return cls(
            verdict=effect.verdict,
            meaning=effect.meaning,
            member=MemberRef.from_member(effect.member) if effect.member else None,
            enrolled_face_id=effect.enrolled_face_id,
            face_enrolled=effect.face_still_enrolled,
            blacklist_entry_id=effect.blacklist_entry_id,
            learned_face_removed=effect.learned_face_removed,
        )


class ReviewItemOut(BaseModel):
    attempt: AttemptOut
    probe_crop_available: bool
    member: MemberRef | None
    member_faces: list[MemberFaceDistance]
    other_member: MemberRef | None = Field(default=None, description="A possible duplicate: the existing member")
    other_faces: list[MemberFaceDistance] = Field(default_factory=list)
    verdict: VerdictOut | None = Field(default=None, description="The standing verdict; null while pending")


class VerdictIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    verdict: Verdict
    note: Text | None = Field(default=None, max_length=1000)
    member_id: uuid.UUID | None = Field(default=None, description="false_non_match: the member the probe really is")
    enroll: bool = Field(
        default=False,
        description="correct (a match) or false_non_match: add the probe face to that member (template learns)",
    )


class BlacklistEntryOut(BaseModel):
    id: uuid.UUID
    member: MemberRef
    attempt_id: uuid.UUID | None
    note: str | None
    created_at: datetime


class FaceUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool


WEBHOOK_URL_MAX = 2000  # the column's length


def _fits_column(url: HttpUrl) -> HttpUrl:
    if len(str(url)) > WEBHOOK_URL_MAX:  # normalising (punycode, a trailing slash) can lengthen it
        raise ValueError(f"must be at most {WEBHOOK_URL_MAX} characters")
    return url


WebhookUrl = Annotated[HttpUrl, UrlConstraints(max_length=WEBHOOK_URL_MAX), AfterValidator(_fits_column)]
WEBHOOK_URL_DOC = "Where verdicts that overturn this key's decisions are POSTed (docs/api.md: Webhooks); null: none"
# A webhook URL as the API shows it back: credentials and query values redacted (they may be secrets).
RedactedUrl = Annotated[str, AfterValidator(redact_url)]


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Text = Field(min_length=1, max_length=255)
    role: Role
    webhook_url: WebhookUrl | None = Field(default=None, description=WEBHOOK_URL_DOC)


class KeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    name: str
    role: Role
    prefix: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None
    webhook_url: RedactedUrl | None = Field(
        description="Credentials, query values and token-like path segments shown as ***"
    )


class KeyCreated(KeyOut):
    key: str = Field(description="The key itself: shown this once, store it now")
    webhook_secret: str | None = Field(description="The webhook's signing secret (with a webhook_url): store it now")


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: WebhookUrl | None = Field(description=WEBHOOK_URL_DOC)


class WebhookSet(BaseModel):
    key: KeyOut
    secret: str | None = Field(description="A new signing secret for the URL (HMAC-SHA256): store it now")


class WebhookDeliveryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    event: str
    url: RedactedUrl = Field(description="Where the last try went (the key's webhook then), secrets shown as ***")
    payload: dict[str, Any]
    status: DeliveryStatus
    attempts: int = Field(description="Tries so far")
    next_attempt_at: datetime = Field(description="When a pending delivery is tried next")
    last_status_code: int | None = Field(description="The receiver's answer to the last try")
    last_error: str | None = Field(description="Why the last try got no answer")
    delivered_at: datetime | None
    created_at: datetime


class AuditEntryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    actor_key_id: uuid.UUID | None
    actor_name: str
    action: str
    target_type: str
    target_id: str | None
    details: dict[str, Any]
    created_at: datetime


class ErrorOut(BaseModel):
    code: str
    message: str
    details: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def of(cls, error: FaceGateError) -> "ErrorOut":
        return cls(code=error.code, message=error.message, details=error.details)


class BatchMemberIn(MemberCreate):
    """One member of a batch signup (the `members` field of POST /v1/members/batch)."""

    photos: list[Text] = Field(
        default_factory=list, description="Names of the form's file fields that hold this member's photos"
    )


class BatchItemOut(BaseModel):
    external_id: str
    status: Literal["created", "exists", "error"] = Field(
        description="exists: a member already has this external id; nothing was written for this item"
    )
    member_id: uuid.UUID | None = Field(default=None, description="When created or exists")
    faces: int | None = Field(default=None, description="The member's stored faces, when created or exists")
    error: ErrorOut | None = Field(
        default=None, description="The code and message a single signup of this member would have answered"
    )

    @classmethod
    def of(cls, outcome: BatchOutcome) -> "BatchItemOut":
        return cls(
            external_id=outcome.external_id,
            status=outcome.status,
            member_id=outcome.member_id,
            faces=outcome.faces,
            error=ErrorOut.of(outcome.error) if outcome.error else None,
        )


class MemberBatchOut(BaseModel):
    items: list[BatchItemOut] = Field(description="One per member, in the order sent")
    created: int
    exists: int
    errors: int

    @classmethod
    def of(cls, outcomes: list[BatchOutcome]) -> "MemberBatchOut":
        statuses = Counter(outcome.status for outcome in outcomes)
        return cls(
            items=[BatchItemOut.of(o) for o in outcomes],
            created=statuses["created"],
            exists=statuses["exists"],
            errors=statuses["error"],
        )


class StreamFaceOut(IdentifiedFaceOut):
    """A face of a live stream's frame: its box and expression are this frame's; its decision, match and attempt
    are its track's (the person followed across frames), decided on the track's best frames."""

    track_id: int = Field(description="The track this face belongs to: the same person passing, on this connection")
    track_frames: int = Field(description="Frames the track has been seen on so far")

    @classmethod
    def from_track(cls, result: FaceResult, track: Track) -> "StreamFaceOut":
        return cls(**IdentifiedFaceOut.from_result(result).model_dump(), track_id=track.id, track_frames=track.frames)


class StreamFrameOut(BaseModel):
    """The answer to one frame of a live identify stream (docs/api.md: "Live identify stream")."""

    frame: int = Field(description="The frame's number on this connection, counting every binary message from 1")
    dropped: int = Field(description="Frames replaced by this newer one while the previous was being identified")
    faces: list[StreamFaceOut] = Field(default_factory=list)
    threshold: float | None = None
    review_threshold: float | None = None
    gallery_size: int | None = None
    error: ErrorOut | None = Field(default=None, description="Why this frame could not be identified")
    elapsed_ms: float = Field(description="Server time from receiving the frame to answering it")


class PhotoCheckOut(BaseModel):
    """The enrollment gate's verdict on one camera frame (the desk signup page's live guide); nothing stored."""

    ok: bool
    problem: ErrorOut | None = Field(description="Why the gate would refuse the photo: no_face, multiple_faces, ...")
    faces: list[Box]
    chosen: int | None = Field(description="Index in `faces` of the face that would be enrolled")
    turn: float | None = Field(
        default=None, description="The chosen face's turn, in eye distances (+: to the person's own left)"
    )
    pose: Literal["straight", "left", "right"] | None = Field(
        default=None, description="The chosen face's pose, as the signup page asks for them; None in between"
    )


class CheckInOut(BaseModel):
    member: MemberRef
    how: Literal["face", "card"]
    checked_in_at: datetime


class DeskSignupOut(BaseModel):
    outcome: Literal["enrolled", "queued_for_review"] = Field(
        description="queued_for_review: enrolled, and queued for a person as a possible duplicate of another member"
    )
    member: MemberOut
    possible_duplicate_of: list[MemberRef]


def _only_candidate(attempt: AttemptOut, member_id: uuid.UUID) -> AttemptOut:
    return attempt.model_copy(update={"candidates": [c for c in attempt.candidates if c.member_id == member_id]})


def _base64(data: bytes | None) -> str | None:
    return base64.b64encode(data).decode() if data is not None else None


class ExportedFace(FaceOut):
    embedding: list[float] = Field(description="The 128-d FaceNet embedding, unit length")
    crop_jpeg_base64: str | None = Field(description="The 160x160 JPEG crop that was embedded; null: not stored")


class ExportedAttempt(BaseModel):
    attempt: AttemptOut = Field(
        description="As the review queue shows it, with its verdict (review_status); of its candidates only the"
        " person's own (the others are other people's data)"
    )
    probe_embedding: list[float]
    probe_crop_jpeg_base64: str | None = Field(description="The probe's JPEG crop; null: not stored or purged")


class ExportedBlacklistEntry(BaseModel):
    id: uuid.UUID
    attempt_id: uuid.UUID | None
    note: str | None
    created_at: datetime
    probe_embedding: list[float]


class MemberExport(BaseModel):
    """Everything FaceGate holds about one person (GET /v1/members/{id}/export)."""

    exported_at: datetime
    member: MemberOut
    faces: list[ExportedFace]
    attempts: list[ExportedAttempt] = Field(
        description="The recorded identify, verify and enroll attempts that most likely show the person: those"
        " that matched or claimed them, had them as the nearest candidate, or a reviewer named them in"
    )
    blacklist: list[ExportedBlacklistEntry]
    audit: list[AuditEntryOut] = Field(description="Audit entries about the member, their faces and attempts")

    @classmethod
    def of(cls, record: MemberRecord) -> "MemberExport":
        return cls(
            exported_at=datetime.now(UTC),
            member=MemberOut.from_member(record.member),
            faces=[
                ExportedFace(
                    **FaceOut.from_face(face).model_dump(),
                    embedding=[float(x) for x in face.embedding],
                    crop_jpeg_base64=_base64(face.crop_jpeg),
                )
                for face in record.faces
            ],
            attempts=[
                ExportedAttempt(
                    attempt=_only_candidate(AttemptOut.model_validate(attempt), record.member.id),
                    probe_embedding=[float(x) for x in attempt.probe_embedding],
                    probe_crop_jpeg_base64=_base64(attempt.probe_crop_jpeg),
                )
                for attempt in record.attempts
            ],
            blacklist=[
                ExportedBlacklistEntry(
                    id=entry.id,
                    attempt_id=entry.attempt_id,
                    note=entry.note,
                    created_at=entry.created_at,
                    probe_embedding=[float(x) for x in entry.probe_embedding],
                )
                for entry in record.blacklist
            ],
            audit=[AuditEntryOut.model_validate(entry) for entry in record.audit],
        )
