"""Templates that learn from visits: the probe of a confident match becomes a learned face of its member.

A member who signed up with one selfie has a template of one photo; every visit shows that person again in
another light, pose and year. A probe is learned only when all of these hold, so that a look-alike stranger
cannot walk into a member's template by passing the door again and again (docs/identification.md, "Learning
from visits"):
- the match is confident at a stricter target than the accept decision (learn_identify_fpir, learn_verify_far);
- the probe also agrees with the member's *signup* faces alone at that strict 1:1 line, so learned faces can
  never pull the template away from the person who signed up, however many of them there are;
- it passes the enrollment gate (size, detection score, sharpness);
- it adds something: no face of the member is a near copy of it (learn_min_novelty);
- at most learn_max_per_day faces a day per member, within max_faces_per_member: the oldest learned face makes
  room; signup faces are never pushed out.
A learned face is removed (and the template rebuilt) when a reviewer later says its attempt was wrong."""

import logging
import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from core.enums import FaceOrigin
from core.errors import FaceRejectedError
from core.settings import Settings
from db.models import ApiKey, Face, Member
from services.faces.pipeline import AnalyzedFace
from services.faces.quality import QualityGate
from services.identity import audit, templates
from services.identity.calibration import Calibration, distance_of

log = logging.getLogger(__name__)


def _gate_passes(settings: Settings, face: AnalyzedFace) -> bool:
    try:
        QualityGate.from_settings(settings).check_face(face)
    except FaceRejectedError:
        return False
    return True


def make_room(session: Session, settings: Settings, member_id: uuid.UUID) -> bool:
    """Delete the oldest learned faces of the member until one more face fits under max_faces_per_member; False
    when only signup faces are left to push out (they never are)."""
    faces = session.scalars(select(Face).where(Face.member_id == member_id).order_by(Face.created_at)).all()
    surplus = len(faces) + 1 - settings.max_faces_per_member
    learned = [f for f in faces if f.origin != FaceOrigin.SIGNUP]
    if surplus > len(learned):
        return False
    for old in learned[: max(surplus, 0)]:
        session.delete(old)
    return True


def learn_from_match(
    session: Session,
    settings: Settings,
    calibration: Calibration,
    *,
    attempt_id: uuid.UUID,
    face: AnalyzedFace,
    member_id: uuid.UUID,
    strict: bool,
    caller: ApiKey | None,
) -> Face | None:
    """Learn the probe of a match as a face of `member_id`, or None when any rule says no (see the module).
    `strict`: the match reached the stricter learning target (identify's or verify's, the caller's to judge)."""
    if not settings.learn_from_visits or not strict or not _gate_passes(settings, face):
        return None
    # The member's row lock: two visits of one member at once learn one after the other (cap and daily limit). FOR NO
    # KEY UPDATE, as the template's update takes anyway: it waits for no request holding the member (FOR KEY SHARE).
    if session.get(Member, member_id, with_for_update={"key_share": True}) is None:
        return None
    rows = session.execute(select(Face.embedding, Face.origin).where(Face.member_id == member_id, Face.enabled)).all()
    embeddings = np.array([np.asarray(e, dtype=np.float32) for e, _ in rows])
    signup_faces = embeddings[[origin == FaceOrigin.SIGNUP for _, origin in rows]] if len(rows) else embeddings
    anchor = templates.template_of(signup_faces)
    if anchor is None:
        return None
    if float(distance_of(float(np.dot(face.embedding, anchor)))) > calibration.impostors.distance_at(
        settings.learn_verify_far
    ):
        return None
    if float(distance_of(float(np.max(embeddings @ face.embedding)))) < settings.learn_min_novelty:
        return None
    since = datetime.now(UTC) - timedelta(days=1)
    learned_today = session.scalar(
        select(func.count()).where(
            Face.member_id == member_id, Face.origin == FaceOrigin.VISIT, Face.created_at >= since
        )
    )
    if (learned_today or 0) >= settings.learn_max_per_day or not make_room(session, settings, member_id):
        return None
    learned = Face(
        member_id=member_id,
        embedding=face.embedding.tolist(),
        detection_score=face.detection.score,
        quality={"face_size": round(face.detection.size, 1), "sharpness": round(face.sharpness, 1),
                 "box": face.detection.box.rounded()},
        crop_jpeg=face.crop_jpeg() if settings.store_face_crops else None,
        origin=FaceOrigin.VISIT,
        source_attempt_id=attempt_id,
    )  # fmt: skip
    session.add(learned)
    session.flush()
    templates.rebuild(session, member_id)
    audit.record(session, caller, "face.learn", "face", learned.id, member_id=member_id, attempt_id=attempt_id)
    log.info("learned face %s of member %s from attempt %s", learned.id, member_id, attempt_id)
    return learned


def forget_learned_from(session: Session, attempt_id: uuid.UUID) -> list[uuid.UUID]:
    """Remove the faces learned from this attempt (a reviewer found it wrong) and rebuild their templates; the
    members whose templates changed."""
    members = session.scalars(
        delete(Face)
        .where(Face.source_attempt_id == attempt_id, Face.origin == FaceOrigin.VISIT)
        .returning(Face.member_id)
    ).all()
    for member_id in set(members):
        templates.rebuild(session, member_id)
    return list(set(members))
