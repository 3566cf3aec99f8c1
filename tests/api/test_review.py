"""The review loop: queue, verdicts, the false-match blacklist, disabled faces and crop retention."""

import numpy as np
import pytest
from sqlalchemy import select, text

from db.models import Attempt, BlacklistEntry
from db.session import session_scope
from tests.support import jpeg, lfw_photo, lfw_pixels, upload

pytestmark = pytest.mark.models

LOOSE = 1.6  # the loosest per-request threshold: an impostor then matches his nearest members
IMPOSTOR = "Arnold_Schwarzenegger"


@pytest.fixture
def members(client):
    ids = {}
    for person in ("Bill_Gates", "Angelina_Jolie", "Alvaro_Uribe"):
        response = client.post(
            "/v1/members",
            data={"external_id": person, "display_name": person},
            files=[("file", (f"{n}.jpg", lfw_photo(person, n), "image/jpeg")) for n in (1, 2)],
            params={"allow_duplicate": True},  # only identify/verify attempts in these tests' queue
        )
        assert response.status_code == 201, response.text
        ids[person] = response.json()["id"]
    return ids


def identify(client, photo: bytes, threshold=LOOSE) -> dict:
    params = {"threshold": threshold} if threshold is not None else {}  # None: the service's default
    response = client.post("/v1/identify", files=upload(photo), params=params)
    assert response.status_code == 200, response.text
    (face,) = response.json()["faces"]
    return face


def near_duplicate(person: str, number: int) -> bytes:
    """The same photo, a little brighter, shifted by 3 pixels and re-encoded."""
    pixels = lfw_pixels(person, number).astype(np.int16)
    return jpeg(np.clip(np.roll(pixels, 3, axis=1) + 12, 0, 255).astype(np.uint8))


def mark_false_match(admin, face: dict) -> dict:
    response = admin.post(
        f"/v1/review/attempts/{face['attempt_id']}/verdict", json={"verdict": "false_match", "note": "not him"}
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_false_match_blacklists_the_pair(client, admin, members):
    face = identify(client, lfw_photo(IMPOSTOR, 1))
    victim = face["match"]["external_id"]
    assert face["match"] is not None and victim != IMPOSTOR
    item = mark_false_match(admin, face)
    assert item["attempt"]["review_status"] == "false_match" and item["attempt"]["review_note"] == "not him"

    again = identify(client, lfw_photo(IMPOSTOR, 1))
    assert again["match"] is None or again["match"]["external_id"] != victim
    flagged = {c["external_id"]: c["blacklisted"] for c in again["candidates"]}
    assert flagged[victim] is True
    # identify moved on to the next candidate within the threshold
    runner_up = next(c for c in again["candidates"] if not c["blacklisted"])
    assert runner_up["distance"] <= LOOSE and again["match"]["external_id"] == runner_up["external_id"]

    # a near-duplicate of the impostor photo is rejected for that member too
    assert identify(client, near_duplicate(IMPOSTOR, 1))["match"]["external_id"] != victim

    # the real member still matches, at the default threshold as well
    genuine = identify(client, lfw_photo(victim, 3), threshold=None)
    assert genuine["match"]["external_id"] == victim

    # verify answers no for the blacklisted pair
    verify = client.post(
        "/v1/verify",
        data={"member_id": members[victim]},
        files=upload(lfw_photo(IMPOSTOR, 1)),
        params={"threshold": LOOSE},
    )
    assert verify.json()["match"] is False

    # removing the entry restores the match, and the attempt returns to the queue
    (entry,) = admin.get("/v1/blacklist").json()
    assert entry["member"]["external_id"] == victim and entry["attempt_id"] == face["attempt_id"]
    assert admin.delete(f"/v1/blacklist/{entry['id']}").status_code == 204
    assert identify(client, lfw_photo(IMPOSTOR, 1))["match"]["external_id"] == victim
    status = admin.get(f"/v1/review/attempts/{face['attempt_id']}").json()["attempt"]["review_status"]
    assert status == "pending"


def test_changing_a_verdict_undoes_the_blacklist_entry(client, admin, members):
    face = identify(client, lfw_photo(IMPOSTOR, 1))
    mark_false_match(admin, face)
    assert len(admin.get("/v1/blacklist").json()) == 1
    changed = admin.post(f"/v1/review/attempts/{face['attempt_id']}/verdict", json={"verdict": "correct"})
    assert changed.json()["attempt"]["review_status"] == "correct"
    assert admin.get("/v1/blacklist").json() == []


def test_false_non_match_can_enroll_the_probe(client, admin, members):
    gates = members["Bill_Gates"]
    strict = client.post(
        "/v1/verify", data={"member_id": gates}, files=upload(lfw_photo("Bill_Gates", 4)), params={"threshold": 0.2}
    ).json()
    assert strict["match"] is False
    item = admin.post(
        f"/v1/review/attempts/{strict['attempt_id']}/verdict", json={"verdict": "false_non_match", "enroll": True}
    ).json()
    assert item["member"]["id"] == gates and len(item["member_faces"]) == 3
    assert min(f["distance"] for f in item["member_faces"]) < 1e-5  # the probe itself is now enrolled
    # changing the verdict takes the enrolled probe back out
    admin.post(f"/v1/review/attempts/{strict['attempt_id']}/verdict", json={"verdict": "correct"})
    assert len(client.get(f"/v1/members/{gates}").json()["faces"]) == 2


def test_the_read_back_says_what_each_verdict_named_and_did(client, admin, members):
    gates = members["Bill_Gates"]
    # A stranger nobody matches: "correct" says not in the gallery, names nobody, enrolls nothing.
    stranger = identify(client, lfw_photo(IMPOSTOR, 1), threshold=0.3)
    assert admin.get(f"/v1/review/attempts/{stranger['attempt_id']}").json()["verdict"] is None  # pending
    url = f"/v1/review/attempts/{stranger['attempt_id']}/verdict"
    verdict = admin.post(url, json={"verdict": "correct"}).json()["verdict"]
    assert verdict["meaning"] == "Not in the gallery: the face is nobody enrolled."
    assert verdict["member"] is None and verdict["enrolled_face_id"] is None and not verdict["face_enrolled"]

    # Missed: a photo of Bill Gates that nobody matched, named and enrolled.
    missed = identify(client, lfw_photo("Bill_Gates", 4), threshold=0.2)
    assert missed["match"] is None
    url = f"/v1/review/attempts/{missed['attempt_id']}/verdict"
    body = {"verdict": "false_non_match", "member_id": gates, "enroll": True}
    verdict = admin.post(url, json=body).json()["verdict"]
    assert verdict["member"]["id"] == gates and verdict["face_enrolled"] is True
    assert verdict["meaning"] == "Missed: the face is Bill_Gates (Bill_Gates)."
    enrolled = verdict["enrolled_face_id"]
    assert enrolled in {f["id"] for f in client.get(f"/v1/members/{gates}").json()["faces"]}
    # The face removed later: the read-back says so.
    assert admin.delete(f"/v1/members/{gates}/faces/{enrolled}").status_code == 204
    verdict = admin.get(f"/v1/review/attempts/{missed['attempt_id']}").json()["verdict"]
    assert verdict["enrolled_face_id"] == enrolled and verdict["face_enrolled"] is False

    # A wrong match names the member it is not, with the blacklist entry.
    wrong = identify(client, lfw_photo(IMPOSTOR, 1))
    verdict = mark_false_match(admin, wrong)["verdict"]
    assert verdict["member"]["id"] == wrong["match"]["member_id"]
    (entry,) = admin.get("/v1/blacklist").json()
    assert verdict["blacklist_entry_id"] == entry["id"] and verdict["meaning"].startswith(
        "Wrong match: the face is not"
    )


def test_verdict_errors(client, admin, members):
    unknown = identify(client, lfw_photo(IMPOSTOR, 1), threshold=0.3)
    assert unknown["match"] is None
    url = f"/v1/review/attempts/{unknown['attempt_id']}/verdict"
    assert admin.post(url, json={"verdict": "false_match"}).json()["error"]["code"] == "not_a_match"
    assert admin.post(url, json={"verdict": "false_non_match"}).json()["error"]["code"] == "missing_field"
    assert admin.post(url, json={"verdict": "maybe"}).status_code == 422
    assert admin.get(f"/v1/review/attempts/{members['Bill_Gates']}").json()["error"]["code"] == "attempt_not_found"


def test_queue_filters_and_puts_borderline_first(client, admin, members):
    identify(client, lfw_photo("Bill_Gates", 3), threshold=None)  # clear match, far below the threshold
    identify(client, lfw_photo(IMPOSTOR, 1), threshold=None)  # unknown
    client.post(
        "/v1/verify", data={"member_id": members["Angelina_Jolie"]}, files=upload(lfw_photo("Angelina_Jolie", 3))
    )
    page = admin.get("/v1/review/attempts").json()
    assert page["total"] == 3
    margins = [abs(a["score"] - a["threshold"]) for a in page["items"]]
    assert margins == sorted(margins)
    assert [a["kind"] for a in admin.get("/v1/review/attempts", params={"kind": "verify"}).json()["items"]] == [
        "verify"
    ]
    first = page["items"][0]
    admin.post(f"/v1/review/attempts/{first['id']}/verdict", json={"verdict": "correct"})
    assert admin.get("/v1/review/attempts", params={"status": "pending"}).json()["total"] == 2
    assert admin.get("/v1/review/attempts", params={"status": "correct"}).json()["items"][0]["id"] == first["id"]


def test_review_item_shows_probe_and_member_faces(client, admin, members):
    face = identify(client, lfw_photo("Bill_Gates", 3), threshold=None)
    item = admin.get(f"/v1/review/attempts/{face['attempt_id']}").json()
    assert item["member"]["external_id"] == "Bill_Gates" and item["probe_crop_available"]
    distances = [f["distance"] for f in item["member_faces"]]
    assert face["candidates"][0]["template_faces"] == 2  # the match is to the template of both faces
    # The confident match was learned: its own probe is now the member's nearest face, beside the two signup ones.
    assert len(distances) == 3 and distances == sorted(distances) and distances[0] < 1e-3
    learned = item["member_faces"][0]["face"]
    assert learned["origin"] == "visit" and learned["source_attempt_id"] == face["attempt_id"]
    crop = admin.get(f"/v1/review/attempts/{face['attempt_id']}/crop")
    assert crop.status_code == 200 and crop.headers["content-type"] == "image/jpeg"


def test_disabled_faces_do_not_match_until_enabled(client, admin, members):
    gates = members["Bill_Gates"]
    faces = client.get(f"/v1/members/{gates}").json()["faces"]
    for face in faces:
        response = admin.patch(f"/v1/members/{gates}/faces/{face['id']}", json={"enabled": False})
        assert response.json()["enabled"] is False
    assert identify(client, lfw_photo("Bill_Gates", 3), threshold=None)["match"] is None
    admin.patch(f"/v1/members/{gates}/faces/{faces[0]['id']}", json={"enabled": True})
    assert identify(client, lfw_photo("Bill_Gates", 3), threshold=None)["match"]["external_id"] == "Bill_Gates"
    actions = [e["action"] for e in admin.get("/v1/audit").json()]
    assert actions.count("face.disable") == 2 and actions.count("face.enable") == 1


def test_retention_purges_crops_and_keeps_what_the_blacklist_needs(client, admin, members):
    from api.lifespan import purge_crops

    old = identify(client, lfw_photo(IMPOSTOR, 1))
    mark_false_match(admin, old)
    recent = identify(client, lfw_photo("Bill_Gates", 3))
    with session_scope() as session:
        session.execute(
            text("UPDATE attempts SET created_at = now() - interval '31 days' WHERE id = :id"),
            {"id": old["attempt_id"]},
        )
    purge_crops()
    with session_scope() as session:
        purged = session.get(Attempt, old["attempt_id"])
        assert purged.probe_crop_jpeg is None and len(purged.probe_embedding) == 128
        assert session.get(Attempt, recent["attempt_id"]).probe_crop_jpeg is not None
        assert session.scalar(select(BlacklistEntry.probe_embedding)) is not None
    assert admin.get(f"/v1/review/attempts/{old['attempt_id']}/crop").json()["error"]["code"] == "crop_not_found"
    # the blacklist still works without the crop
    victim = old["match"]["external_id"]
    assert identify(client, lfw_photo(IMPOSTOR, 1))["match"]["external_id"] != victim
