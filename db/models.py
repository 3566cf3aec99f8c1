"""Tables. Embeddings are L2-normalised 128-d FaceNet vectors; distances are Euclidean (pgvector `<->`)."""

import uuid
from datetime import datetime

from pgvector.sqlalchemy import HALFVEC, Vector
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    cast,
    func,
    true,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from core.enums import AttemptKind, Decision, DeliveryStatus, FaceOrigin, ReviewStatus, Role

EMBEDDING_DIM = 128
# Identify's index on the member templates: HNSW over half-precision copies (half the vector bytes of the full
# ones, the same recall once the nearest few are re-ranked exactly), graph parameters chosen with bench/scale.py
# at 1M members (docs/scaling.md). services.identity.bulk rebuilds it after a large import.
TEMPLATE_INDEX = "ix_members_template_hnsw"
TEMPLATE_INDEX_M, TEMPLATE_INDEX_EF_CONSTRUCTION = 32, 128


class Base(DeclarativeBase):
    pass


def _uuid_pk() -> Mapped[uuid.UUID]:
    return mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)


def _created_at() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


class Member(Base):
    __tablename__ = "members"

    id: Mapped[uuid.UUID] = _uuid_pk()
    external_id: Mapped[str] = mapped_column(String(255), unique=True, nullable=False)
    display_name: Mapped[str] = mapped_column(String(255), nullable=False)
    # `metadata` is reserved on declarative classes: the attribute takes a trailing underscore.
    metadata_: Mapped[dict] = mapped_column("metadata", JSONB, nullable=False, default=dict)
    # The member's template: the L2-normalised mean of its enabled faces (services.identity.templates), what
    # identify searches; NULL while the member has no enabled face.
    template: Mapped[list[float] | None] = mapped_column(Vector(EMBEDDING_DIM))
    template_faces: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now(), nullable=False
    )

    faces: Mapped[list["Face"]] = relationship(
        back_populates="member", cascade="all, delete-orphan", passive_deletes=True, order_by="Face.created_at"
    )

    __table_args__ = (
        Index(
            TEMPLATE_INDEX,
            cast(template, HALFVEC(EMBEDDING_DIM)).label("template_half"),
            postgresql_using="hnsw",
            postgresql_ops={"template_half": "halfvec_l2_ops"},
            postgresql_with={"m": TEMPLATE_INDEX_M, "ef_construction": TEMPLATE_INDEX_EF_CONSTRUCTION},
        ),
    )


class GallerySize(Base):
    """One row: how many members have a template, kept exact by statement triggers on members (migration 0008),
    so identify reads the gallery's size instead of counting it."""

    __tablename__ = "gallery_size"

    one_row: Mapped[bool] = mapped_column(Boolean, primary_key=True, server_default=true())
    members: Mapped[int] = mapped_column(BigInteger, nullable=False)

    __table_args__ = (CheckConstraint("one_row"),)


class Face(Base):
    __tablename__ = "faces"

    id: Mapped[uuid.UUID] = _uuid_pk()
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    embedding: Mapped[list[float]] = mapped_column(Vector(EMBEDDING_DIM), nullable=False)
    detection_score: Mapped[float] = mapped_column(Float, nullable=False)
    # Figures measured by the quality gate: face size in pixels, sharpness, box {x, y, width, height}
    quality: Mapped[dict] = mapped_column(JSONB, nullable=False, default=dict)
    crop_jpeg: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True, server_default="true")
    # Where the face came from (FaceOrigin): a signup photo, a reviewer's verdict, or a confident visit.
    origin: Mapped[FaceOrigin] = mapped_column(
        String(16), nullable=False, default=FaceOrigin.SIGNUP, server_default=FaceOrigin.SIGNUP.value
    )
    # The attempt it was learned from (origin review or visit), or the enroll attempt that queued a borderline
    # signup face for review.
    source_attempt_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("attempts.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = _created_at()

    member: Mapped[Member] = relationship(back_populates="faces")


class Attempt(Base):
    """One probe face of an identify or verify request, with what was decided about it."""

    __tablename__ = "attempts"

    id: Mapped[uuid.UUID] = _uuid_pk()
    request_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), index=True, nullable=False)
    kind: Mapped[AttemptKind] = mapped_column(String(16), nullable=False)
    face_index: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    box: Mapped[dict] = mapped_column(JSONB, nullable=False)  # {x, y, width, height}
    detection_score: Mapped[float] = mapped_column(Float, nullable=False)
    probe_embedding: Mapped[list[float]] = mapped_column(Vector(EMBEDDING_DIM), nullable=False)
    probe_crop_jpeg: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    candidates: Mapped[list] = mapped_column(JSONB, nullable=False, default=list)
    threshold: Mapped[float] = mapped_column(Float, nullable=False)
    decision: Mapped[Decision] = mapped_column(String(16), nullable=False)
    # The member the request named (verify) and the member it matched; kept when members are deleted.
    claimed_member_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    matched_member_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("members.id", ondelete="SET NULL"), index=True
    )
    distance: Mapped[float | None] = mapped_column(Float)
    # What was compared with `threshold`: 2*d1 - d2 for calibrated identify, else the distance.
    score: Mapped[float | None] = mapped_column(Float)
    # 1 - the estimated chance that a stranger scores as well as the nearest candidate (calibrated decisions).
    confidence: Mapped[float | None] = mapped_column(Float)
    # In the review band (identify, verify) or a possible duplicate (enroll): a person should look at it.
    needs_review: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False, server_default="false")
    expression: Mapped[dict | None] = mapped_column(JSONB)  # apparent expression, DeepFace.analyze's shape
    review_status: Mapped[ReviewStatus] = mapped_column(
        String(24), nullable=False, default=ReviewStatus.PENDING, server_default=ReviewStatus.PENDING.value
    )
    review_note: Mapped[str | None] = mapped_column(String(1000))
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reviewed_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("api_keys.id", ondelete="SET NULL"))
    # The key whose request recorded the attempt: its webhook hears when a reviewer overturns the decision.
    caller_key_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("api_keys.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = _created_at()

    __table_args__ = (
        Index("ix_attempts_review_status_created_at", "review_status", "created_at"),
        Index("ix_attempts_needs_review_created_at", "needs_review", "created_at"),
        # The admin queue's keyset paging: newest first, by (created_at, id).
        Index("ix_attempts_created_at_id", "created_at", "id"),
    )


class BlacklistEntry(Base):
    """A (member, probe) pair an admin marked as a false match: probes near it never match that member."""

    __tablename__ = "false_match_blacklist"

    id: Mapped[uuid.UUID] = _uuid_pk()
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    probe_embedding: Mapped[list[float]] = mapped_column(Vector(EMBEDDING_DIM), nullable=False)
    attempt_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("attempts.id", ondelete="SET NULL"))
    note: Mapped[str | None] = mapped_column(String(1000))
    created_at: Mapped[datetime] = _created_at()


class ApiKey(Base):
    """A caller of the API. Only a hash of the key is stored; the key itself is shown once, at creation."""

    __tablename__ = "api_keys"

    id: Mapped[uuid.UUID] = _uuid_pk()
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    role: Mapped[Role] = mapped_column(String(16), nullable=False)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    prefix: Mapped[str] = mapped_column(String(16), nullable=False)  # first characters, to tell keys apart
    created_at: Mapped[datetime] = _created_at()
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Optional: where review verdicts that overturn this key's decisions are POSTed, signed with the secret
    # (HMAC-SHA256). The secret is kept as it is: signing needs it.
    webhook_url: Mapped[str | None] = mapped_column(String(2000))
    webhook_secret: Mapped[str | None] = mapped_column(String(64))


class WebhookDelivery(Base):
    """One event for one key's webhook, and how delivering it went: the delivery log."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[uuid.UUID] = _uuid_pk()
    key_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"), nullable=False)
    event: Mapped[str] = mapped_column(String(64), nullable=False)
    url: Mapped[str] = mapped_column(String(2000), nullable=False)  # the key's webhook when the event happened
    payload: Mapped[dict] = mapped_column(JSONB, nullable=False)
    status: Mapped[DeliveryStatus] = mapped_column(
        String(16), nullable=False, default=DeliveryStatus.PENDING, server_default=DeliveryStatus.PENDING.value
    )
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(1000))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = _created_at()

    __table_args__ = (
        Index("ix_webhook_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_key_id_created_at", "key_id", "created_at"),
    )


class AuditEntry(Base):
    """One admin action: who, when, what, on which record."""

    __tablename__ = "audit_log"

    id: Mapped[uuid.UUID] = _uuid_pk()
    actor_key_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("api_keys.id", ondelete="SET NULL"))
    actor_name: Mapped[str] = mapped_column(String(255), nullable=False)
    action: Mapped[str] = mapped_column(String(64), nullable=False)
    target_type: Mapped[str] = mapped_column(String(32), nullable=False)
    target_id: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict] = mapped_column(JSONB, nullable=False, default=dict)
    created_at: Mapped[datetime] = _created_at()

    __table_args__ = (Index("ix_audit_log_created_at", "created_at"),)


class AdminSession(Base):
    """A signed-in browser on the review pages: the cookie holds a token whose hash is the id."""

    __tablename__ = "admin_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"), nullable=False)
    csrf_token: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[datetime] = _created_at()
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
