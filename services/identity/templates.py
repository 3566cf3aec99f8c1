"""Member templates: one L2-normalised 128-d vector per member, the weighted mean of its enabled faces.

Averaging a member's photos cancels much of what varies between them (pose, light, expression), so a template
sits nearer every new photo of that person than most single photos do; identify searches templates, and the
faces stay stored for review and to rebuild the template whenever one is added, disabled or removed. A face that
agrees less with the member's other faces (a poor photo, an odd angle) counts less, so it pulls the template
away from that person's usual look less."""

import uuid

import numpy as np
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from db.models import Face, Member

# A face's weight in its member's template: exp(AGREEMENT_WEIGHT x its mean cosine similarity to the member's
# other faces). A wide range of values did about equally well on LFW, and better than the plain mean (0); 4 is
# the middle of it (the figures, held out and not: docs/identification.md, "Templates").
AGREEMENT_WEIGHT = 4.0


def template_of(embeddings: np.ndarray, agreement_weight: float = AGREEMENT_WEIGHT) -> np.ndarray | None:
    """The normalised agreement-weighted mean of unit embeddings (N x 128), or None for none. One or two faces
    weigh the same: their plain mean."""
    faces = np.asarray(embeddings, dtype=np.float64)
    if len(faces) == 0:
        return None
    weights = np.ones(len(faces))
    if len(faces) > 1:
        similarity = faces @ faces.T
        agreement = (similarity.sum(axis=1) - np.diag(similarity)) / (len(faces) - 1)
        weights = np.exp(agreement_weight * agreement)
    mean = weights @ faces
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
