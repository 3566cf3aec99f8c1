"""Member templates, the calibrated review band, the duplicate band and templates that learn from reviews."""

import numpy as np
import pytest
from sqlalchemy import select

from core.settings import get_settings
from tests.support import lfw_photo, upload

pytestmark = pytest.mark.models


def signup(client, person: str, photos: tuple[int, ...], **params) -> dict:
    files = [("file", (f"{n}.jpg", lfw_photo(person, n), "image/jpeg")) for n in photos]
    response = client.post(
        "/v1/members", data={"external_id": person, "display_name": person}, files=files, params=params
    )
    assert response.status_code == 201, response.text
    return response.json()


def test_template_follows_the_faces(client, admin):
    gates = signup(client, "Bill_Gates", (1, 2, 3))
    assert gates["template_faces"] == 3
    first = gates["faces"][0]["id"]
    url = f"/v1/members/{gates['id']}"
    assert admin.patch(f"{url}/faces/{first}", json={"enabled": False}).status_code == 200
    assert client.get(url).json()["template_faces"] == 2
    for face in gates["faces"]:
        assert client.delete(f"{url}/faces/{face['id']}").status_code == 204
    assert client.get(url).json()["template_faces"] == 0
    verify = client.post("/v1/verify", data={"member_id": gates["id"]}, files=upload(lfw_photo("Bill_Gates", 4)))
    assert verify.json()["error"]["code"] == "member_has_no_faces"


def test_identify_is_calibrated_and_names_with_confidence(client):
    gates = signup(client, "Bill_Gates", (1, 2, 3))
    (face,) = client.post("/v1/identify", files=upload(lfw_photo("Bill_Gates", 4))).json()["faces"]
    assert face["decision"] == "match" and face["match"]["member_id"] == gates["id"]
    assert 0.9 < face["match"]["confidence"] <= 1.0 and not face["review"]
    one = client.post("/v1/identify", files=upload(lfw_photo("Bill_Gates", 4))).json()
    for person in ("Angelina_Jolie", "Ann_Veneman", "Britney_Spears", "Alvaro_Uribe"):
        signup(client, person, (1, 2))
    five = client.post("/v1/identify", files=upload(lfw_photo("Bill_Gates", 4))).json()
    assert one["calibrated"] and one["gallery_size"] == 1 and five["gallery_size"] == 5
    assert five["threshold"] < one["threshold"]  # tighter with more members
    fixed = client.post("/v1/identify", files=upload(lfw_photo("Bill_Gates", 4)), params={"threshold": 0.3}).json()
    assert not fixed["calibrated"] and fixed["threshold"] == 0.3 and fixed["faces"][0]["match"] is None


def test_known_strangers_are_enrolled_faces_against_the_other_members(client):
    from db.models import Face, Member
    from db.session import session_scope
    from services.identity.calibration import known_strangers

    for person in ("Bill_Gates", "Angelina_Jolie", "Ann_Veneman", "Britney_Spears"):
        signup(client, person, (1, 2))
    with session_scope() as session:
        known = known_strangers(session, get_settings())
        faces = session.execute(select(Face.member_id, Face.embedding)).all()
        templates = dict(session.execute(select(Member.id, Member.template)).all())
    assert known.members == 4 and len(known.nearest) == 8 and len(known.similarities) == 8 * 3
    expected = []
    for owner, embedding in faces:
        others = sorted(float(np.linalg.norm(np.subtract(embedding, t))) for m, t in templates.items() if m != owner)
        expected.append((others[0], others[1] - others[0]))
    got = np.array(sorted(zip(known.nearest, known.gap, strict=True)))
    np.testing.assert_allclose(got, np.array(sorted(expected)), atol=1e-5)


def test_review_band_names_nobody_and_queues_the_attempt(client, admin, strict):
    gates = signup(client, "Bill_Gates", (1, 2, 3))
    (face,) = client.post("/v1/identify", files=upload(lfw_photo("Bill_Gates", 4))).json()["faces"]
    assert face["match"] is None and face["review"] and face["decision"] == "review"
    assert face["candidates"][0]["member_id"] == gates["id"]
    verify = client.post("/v1/verify", data={"member_id": gates["id"]}, files=upload(lfw_photo("Bill_Gates", 4)))
    assert verify.json()["match"] is False and verify.json()["review"] is True
    # (strict's 1:1 lines also hold the signup's own photos in the review band: `enroll` attempts, not counted)
    queued = admin.get("/v1/review/attempts", params={"needs_review": True}).json()["items"]
    recognitions = [a for a in queued if a["kind"] != "enroll"]
    assert len(recognitions) == 2 and {a["decision"] for a in recognitions} == {"review", "no_match"}


def test_borderline_duplicate_is_enrolled_and_queued_side_by_side(client, admin, strict):
    first = signup(client, "Andre_Agassi", (2,))
    second = client.post(
        "/v1/members",
        data={"external_id": "agassi-again", "display_name": "Agassi again"},
        files=[("file", ("3.jpg", lfw_photo("Andre_Agassi", 3), "image/jpeg"))],
    )
    assert second.status_code == 201, second.text
    (queued,) = admin.get("/v1/review/attempts", params={"kind": "enroll"}).json()["items"]
    assert queued["needs_review"] and queued["decision"] == "enrolled"
    item = admin.get(f"/v1/review/attempts/{queued['id']}").json()
    assert item["member"]["id"] == second.json()["id"] and item["other_member"]["id"] == first["id"]
    assert len(item["other_faces"]) == 1


def test_a_reviewed_match_teaches_the_template_within_the_cap(client, admin, monkeypatch):
    monkeypatch.setattr(get_settings(), "max_faces_per_member", 3)
    monkeypatch.setattr(get_settings(), "learn_from_visits", False)  # only the reviewer teaches here
    gates = signup(client, "Bill_Gates", (1, 2))

    def taught(photo: int) -> dict:
        (face,) = client.post("/v1/identify", files=upload(lfw_photo("Bill_Gates", photo))).json()["faces"]
        verdict = admin.post(
            f"/v1/review/attempts/{face['attempt_id']}/verdict", json={"verdict": "correct", "enroll": True}
        )
        assert verdict.status_code == 200, verdict.text
        return face

    first = taught(4)
    member = client.get(f"/v1/members/{gates['id']}").json()
    assert member["template_faces"] == 3 and [f["origin"] for f in member["faces"]].count("review") == 1
    taught(5)  # at the cap: the older learned face makes room, the signup faces stay
    member = client.get(f"/v1/members/{gates['id']}").json()
    assert len(member["faces"]) == 3 and {f["id"] for f in gates["faces"]} <= {f["id"] for f in member["faces"]}
    assert first["attempt_id"] not in {f["source_attempt_id"] for f in member["faces"]}
    # a changed verdict takes the learned face back out
    last = next(f for f in member["faces"] if f["origin"] == "review")
    admin.post(f"/v1/review/attempts/{last['source_attempt_id']}/verdict", json={"verdict": "correct"})
    assert client.get(f"/v1/members/{gates['id']}").json()["template_faces"] == 2


def test_signup_faces_are_never_pushed_out(client, admin, monkeypatch):
    monkeypatch.setattr(get_settings(), "max_faces_per_member", 2)
    gates = signup(client, "Bill_Gates", (1, 2))
    (face,) = client.post("/v1/identify", files=upload(lfw_photo("Bill_Gates", 4))).json()["faces"]
    verdict = admin.post(
        f"/v1/review/attempts/{face['attempt_id']}/verdict", json={"verdict": "correct", "enroll": True}
    )
    assert verdict.status_code == 409 and verdict.json()["error"]["code"] == "member_faces_full"
    member = client.get(f"/v1/members/{gates['id']}").json()
    assert [f["id"] for f in member["faces"]] == [f["id"] for f in gates["faces"]]
