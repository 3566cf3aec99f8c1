"""Bulk import of precomputed embeddings: one member per row, with its face and template, written by binary COPY.

For galleries far beyond what enrolling photo by photo can load (bench/scale.py loads 1M members this way). Rows
go in batches, each one transaction, so an interrupted import keeps every finished batch; run again, it skips the
external ids already present and carries on. Building the HNSW index once at the end is far faster than updating
it row by row: `rebuild_index` drops it first and builds it after the last batch (identify scans every template
until then), with this server's maintenance_work_mem and parallel workers (db.session.embedded_tuning)."""

import io
import json
import struct
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from core.errors import FaceGateError
from db.models import EMBEDDING_DIM, TEMPLATE_INDEX, Base
from services.identity import audit
from services.identity.members import Consent

_POSTGRES_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_COPY_TRAILER = struct.pack(">h", -1)
_IMPORT_QUALITY = json.dumps({"source": "import"}).encode()


@dataclass(frozen=True)
class ImportReport:
    imported: int
    skipped: int  # external ids already present (an earlier, interrupted run)
    load_seconds: float
    index_seconds: float | None  # building the template index, when rebuilt

    @property
    def rows_per_second(self) -> float:
        return self.imported / self.load_seconds if self.load_seconds else 0.0


def _field(value: bytes) -> bytes:
    return struct.pack(">i", len(value)) + value


def _vector(embedding: np.ndarray) -> bytes:
    """pgvector's binary form: dimensions, an unused int16, big-endian float4s."""
    return struct.pack(">hh", EMBEDDING_DIM, 0) + embedding.astype(">f4").tobytes()


def _copy_rows(rows: Sequence[tuple[bytes, ...]]) -> io.BytesIO:
    out = io.BytesIO()
    out.write(_COPY_HEADER)
    for row in rows:
        out.write(struct.pack(">h", len(row)))
        out.write(b"".join(_field(v) for v in row))
    out.write(_COPY_TRAILER)
    out.seek(0)
    return out


def check_embeddings(external_ids: list[str], display_names: list[str], embeddings: np.ndarray) -> np.ndarray:
    """The embeddings as unit float32 rows, or a clear error for input that cannot be imported."""
    if embeddings.ndim != 2 or embeddings.shape[1] != EMBEDDING_DIM:
        raise FaceGateError(
            f"Embeddings must be an N x {EMBEDDING_DIM} array, got {embeddings.shape}.", code="bad_embeddings"
        )
    if not len(external_ids) == len(display_names) == len(embeddings):
        raise FaceGateError("One external id and display name per embedding.", code="bad_embeddings")
    if len(set(external_ids)) != len(external_ids):
        raise FaceGateError("External ids must be unique.", code="bad_embeddings")
    norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
    if not np.all(np.isfinite(norms)) or np.any(norms == 0):
        raise FaceGateError("Embeddings must be finite and non-zero.", code="bad_embeddings")
    return (embeddings / norms).astype(np.float32)


def import_embeddings(
    engine: Engine,
    external_ids: list[str],
    display_names: list[str],
    embeddings: np.ndarray,
    *,
    consent: Consent | None = None,
    batch_size: int = 50_000,
    rebuild_index: bool = False,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> ImportReport:
    """Import one member per embedding (its only face, and its template). `consent`: the consent every person gave,
    recorded with each member and in each batch's audit entry. `progress(done, total)` after each batch."""
    units = check_embeddings(external_ids, display_names, embeddings)
    start = time.perf_counter()
    if rebuild_index:
        with engine.begin() as conn:
            conn.execute(text(f"DROP INDEX IF EXISTS {TEMPLATE_INDEX}"))
    imported = skipped = 0
    for first in range(0, len(units), batch_size):
        batch = range(first, min(first + batch_size, len(units)))
        done_before = _present(engine, [external_ids[i] for i in batch])
        todo = [i for i in batch if external_ids[i] not in done_before]
        _copy_batch(engine, todo, external_ids, display_names, units, consent)
        imported += len(todo)
        skipped += len(batch) - len(todo)
        progress(batch.stop, len(units))
    load_seconds = time.perf_counter() - start
    index_seconds = None
    if rebuild_index:
        index_start = time.perf_counter()
        with engine.begin() as conn:
            # A run interrupted after the drop left no index: this one builds it.
            next(i for i in Base.metadata.tables["members"].indexes if i.name == TEMPLATE_INDEX).create(
                conn, checkfirst=True
            )
        index_seconds = time.perf_counter() - index_start
    return ImportReport(imported, skipped, load_seconds, index_seconds)


def _present(engine: Engine, external_ids: list[str]) -> set[str]:
    with engine.connect() as conn:
        found = conn.execute(
            text("SELECT external_id FROM members WHERE external_id = ANY(:ids)"), {"ids": external_ids}
        )
        return {row.external_id for row in found}


def _timestamptz(moment: datetime) -> bytes:
    """timestamptz's binary form: microseconds since 2000-01-01 UTC."""
    return struct.pack(">q", (moment - _POSTGRES_EPOCH) // timedelta(microseconds=1))


def _copy_batch(
    engine: Engine,
    rows: list[int],
    external_ids: list[str],
    display_names: list[str],
    units: np.ndarray,
    consent: Consent | None,
) -> None:
    """One transaction: the members with their templates, their faces, and one audit entry."""
    if not rows:
        return
    consent_fields = (consent.text_version.encode(), _timestamptz(consent.given_at)) if consent else ()
    member_ids = [uuid.uuid4() for _ in rows]
    members = []
    faces = []
    for member_id, i in zip(member_ids, rows, strict=True):
        vector = _vector(units[i])
        members.append(
            (
                member_id.bytes,
                external_ids[i].encode(),
                display_names[i].encode(),
                b"\x01{}",  # jsonb's binary form: version 1, then the text
                vector,
                struct.pack(">i", 1),
                *consent_fields,
            )
        )
        # An imported embedding comes without its detection: its face is marked as imported, score 1.
        faces.append((uuid.uuid4().bytes, member_id.bytes, vector, struct.pack(">d", 1.0), b"\x01" + _IMPORT_QUALITY))
    with engine.begin() as conn:
        cursor = conn.connection.cursor()
        consent_columns = ", consent_text_version, consent_given_at" if consent else ""
        cursor.copy_expert(
            f"COPY members (id, external_id, display_name, metadata, template, template_faces{consent_columns}) "
            "FROM STDIN WITH (FORMAT binary)",
            _copy_rows(members),
        )
        cursor.copy_expert(
            "COPY faces (id, member_id, embedding, detection_score, quality) FROM STDIN WITH (FORMAT binary)",
            _copy_rows(faces),
        )
        session = Session(bind=conn)
        given = (
            {"consent_text_version": consent.text_version, "consent_given_at": consent.given_at.isoformat()}
            if consent
            else {}
        )
        audit.record(session, None, "member.import", "member", None, count=len(rows), **given)
        session.flush()
