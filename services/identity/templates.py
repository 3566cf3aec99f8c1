"""Member templates: one L2-normalised 128-d vector per member, the mean of its enabled faces.

Averaging a member's photos cancels much of what varies between them (pose, light, expression), so a template
sits nearer every new photo of that person than most single photos do; identify searches templates, and the
faces stay stored for review and to rebuild the template whenever one is added, disabled or removed."""

import uuid

import numpy as np
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from db.models import Face, Member


def template_of(embeddings: np.ndarray) -> np.ndarray | None:
    """The normalised mean of unit embeddings (N x 128), or None for none."""
    if len(embeddings) == 0:
        return None
    mean = np.asarray(embeddings, dtype=np.float64).mean(axis=0)
    return (mean / max(float(np.linalg.norm(mean)), 1e-12)).astype(np.float32)


def rebuild(session: Session, member_id: uuid.UUID) -> None:
    """Recompute the member's template from its enabled faces (call after any change to them)."""
    session.flush()
    rows = session.scalars(select(Face.embedding).where(Face.member_id == member_id, Face.enabled)).all()
    template = template_of(np.array([np.asarray(r) for r in rows]))
    session.execute(
        update(Member)
        .where(Member.id == member_id)
        .values(template=None if template is None else template.tolist(), template_faces=len(rows))
    )
