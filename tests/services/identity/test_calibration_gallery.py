"""The calibration on a real gallery that bad data is in: copies of one photo signed up as many members, and a
member whose faces show several people (services.identity.calibration.known_strangers)."""

import pytest
from sqlalchemy import text

from core.errors import FaceGateError
from core.settings import get_settings
from db.session import session_scope
from services.identity import enrollment
from services.identity.calibration import GalleryCalibration, known_strangers
from tests.support import LFW_IMAGES, lfw_photo, upload

pytestmark = pytest.mark.models

# People with one usable photo at least, for a gallery of one-photo members.
PEOPLE = sorted(p.name for p in LFW_IMAGES.iterdir() if p.is_dir() and (p / f"{p.name}_0001.jpg").exists())[:60]


def gated(pipeline, person: str, n: int = 1) -> enrollment.GatedFace:
    face = enrollment.gate_photo(pipeline, lfw_photo(person, n), largest=True)
    return enrollment.GatedFace(enrollment.Photo(f"{person}_{n}.jpg", b""), face)


def sign_up(pipeline, session, external_id: str, faces: list[enrollment.GatedFace], **options) -> None:
    enrollment.signup(
        session, get_settings(), GalleryCalibration(get_settings()), external_id=external_id,
        display_name=external_id, metadata={}, faces=faces, allow_duplicate=True, threshold=None, caller=None,
        **options,
    )  # fmt: skip


def one_photo_gallery(pipeline, people: list[str]) -> None:
    faces = []
    for person in people:
        try:
            faces.append((person, gated(pipeline, person)))
        except FaceGateError:  # a first photo the gate refuses: that person is left out
            continue
    with session_scope() as session:
        for person, face in faces:
            sign_up(pipeline, session, person, [face])


def test_copies_of_one_photo_as_many_members_do_not_break_identify(client, pipeline):
    """A service key signing one photo up as 110 members put faces at distance 0 from other members' templates,
    and every refit failed: identify answered 500 for everyone."""
    one_photo_gallery(pipeline, PEOPLE[:20])
    copy = gated(pipeline, "Colin_Powell")
    with session_scope() as session:
        for n in range(110):
            sign_up(pipeline, session, f"copy-{n}", [copy])
    response = client.post("/v1/identify", files=upload(lfw_photo("Tony_Blair", 2)))
    assert response.status_code == 200, response.text
    with session_scope() as session:
        known = known_strangers(session, get_settings())
    assert len(known.nearest) <= 20  # the copies are no known strangers
    ready = client.get("/health/ready").json()
    assert ready["status"] == "ok" and "calibration" not in ready["checks"]


def test_a_member_of_several_people_does_not_move_the_accept_score(admin, pipeline):
    one_photo_gallery(pipeline, PEOPLE[:40])
    settings = get_settings()
    with session_scope() as session:
        before = GalleryCalibration(settings).current(session).identify_rule(settings).accept
        members_before = known_strangers(session, settings).members
    mixed = [gated(pipeline, person) for person in ("Colin_Powell", "Serena_Williams", "Hugo_Chavez")]
    with session_scope() as session:
        sign_up(pipeline, session, "mixed", mixed, allow_mismatch=True)
    with session_scope() as session:
        after = GalleryCalibration(settings).current(session).identify_rule(settings).accept
        assert known_strangers(session, settings).members == members_before  # left out of the fit
        assert session.scalar(text("SELECT count(*) FROM members")) == members_before + 1
    assert after == pytest.approx(before, abs=0.01)
