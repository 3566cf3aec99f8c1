import cv2
import numpy as np
import pytest
from PIL import Image
from sqlalchemy import func, select

from core.settings import get_settings
from db.models import Attempt
from db.session import session_scope
from tests.support import jpeg, lfw_photo, lfw_pixels, upload

pytestmark = pytest.mark.models

# Their photos 1 and 2 show one face each (LFW photos often have people in the background too).
PEOPLE = ["Alvaro_Uribe", "Amelie_Mauresmo", "Angelina_Jolie", "Ann_Veneman", "Bill_Gates", "Britney_Spears"]
STRANGER = "Arnold_Schwarzenegger"


def subject(faces: list[dict]) -> dict:
    """LFW photos are centred on their subject: the face nearest the centre of the 250x250 photo."""
    return min(
        faces,
        key=lambda f: (
            (f["box"]["x"] + f["box"]["width"] / 2 - 125) ** 2 + (f["box"]["y"] + f["box"]["height"] / 2 - 125) ** 2
        ),
    )


@pytest.fixture
def enrolled(client):
    """Six LFW people, each enrolled with their first two photos."""
    ids = {}
    for person in PEOPLE:
        response = client.post(
            "/v1/members",
            data={"external_id": person, "display_name": person.replace("_", " ")},
            files=[("file", (f"{n}.jpg", lfw_photo(person, n), "image/jpeg")) for n in (1, 2)],
        )
        assert response.status_code == 201, response.text
        ids[person] = response.json()["id"]
    return ids


def test_identify_finds_enrolled_people_in_their_other_photos(client, enrolled):
    named = 0
    for person in PEOPLE:
        for number in (3, 4, 5):
            response = client.post("/v1/identify", files=upload(lfw_photo(person, number)))
            assert response.status_code == 200, response.text
            face = subject(response.json()["faces"])
            # Never someone else: named, or (calibrated to name strangers at most 1% of the time) left for review.
            assert face["candidates"][0]["external_id"] == person
            assert face["decision"] in ("match", "review"), f"{person} {number}: {face['decision']}"
            if face["match"] is not None:
                assert face["match"]["external_id"] == person
                assert face["match"]["score"] <= response.json()["threshold"]
                named += 1
            assert face["apparent_expression"]["dominant_emotion"] in face["apparent_expression"]["emotion"]
    assert named >= 16  # of 18


def test_a_stranger_is_unknown(client, enrolled):
    for number in (1, 2, 3):
        response = client.post("/v1/identify", files=upload(lfw_photo(STRANGER, number)))
        face = subject(response.json()["faces"])
        assert face["match"] is None
        assert len(face["candidates"]) == 5
        assert face["candidates"][0]["score"] > response.json()["threshold"]  # the nearest decides


def test_identify_records_one_attempt_per_face(client, enrolled):
    group = np.concatenate([lfw_pixels("Bill_Gates", 7), lfw_pixels(STRANGER, 6)], axis=1)
    response = client.post("/v1/identify", files=upload(jpeg(group)), params={"top_k": 2})
    faces = sorted(response.json()["faces"], key=lambda f: f["box"]["x"])
    assert len(faces) == 2
    assert faces[0]["match"]["external_id"] == "Bill_Gates" and faces[1]["match"] is None
    assert all(len(f["candidates"]) == 2 for f in faces)
    with session_scope() as session:
        attempts = session.scalars(select(Attempt).order_by(Attempt.face_index)).all()
        assert [a.decision for a in sorted(attempts, key=lambda a: a.box["x"])] == ["match", "unknown"]
        assert len({a.request_id for a in attempts}) == 1
        assert all(a.review_status == "pending" and a.expression["dominant_emotion"] for a in attempts)
        assert {str(a.id) for a in attempts} == {f["attempt_id"] for f in faces}


def test_identify_with_no_members_is_unknown(client):
    face = subject(client.post("/v1/identify", files=upload(lfw_photo("Bill_Gates", 1))).json()["faces"])
    assert face["match"] is None and face["candidates"] == []


def test_a_stricter_threshold_can_turn_a_match_into_unknown(client, enrolled, monkeypatch):
    monkeypatch.setattr(get_settings(), "learn_from_visits", False)  # the same photo twice: nothing learned between
    loose = client.post("/v1/identify", files=upload(lfw_photo("Bill_Gates", 7))).json()
    distance = loose["faces"][0]["match"]["distance"]
    strict = client.post(
        "/v1/identify", files=upload(lfw_photo("Bill_Gates", 7)), params={"threshold": max(0.2, distance - 0.05)}
    ).json()
    assert strict["faces"][0]["match"] is None


def test_verify_true_and_false_pairs(client, enrolled):
    gates = enrolled["Bill_Gates"]
    same = client.post("/v1/verify", data={"member_id": gates}, files=upload(lfw_photo("Bill_Gates", 8)))
    assert same.status_code == 200, same.text
    assert same.json()["match"] is True and same.json()["distance"] <= same.json()["threshold"]

    other = client.post("/v1/verify", data={"member_id": gates}, files=upload(lfw_photo("Andre_Agassi", 8)))
    assert other.json()["match"] is False and other.json()["distance"] > other.json()["threshold"]

    with session_scope() as session:
        decisions = session.scalars(select(Attempt.decision).where(Attempt.kind == "verify")).all()
    assert sorted(decisions) == ["match", "no_match"]


def test_verify_ignores_disabled_faces_and_other_members(client, enrolled):
    # Agassi's photo compared with Gates: the nearest face must be one of Gates's, not Agassi's own.
    response = client.post(
        "/v1/verify", data={"member_id": enrolled["Bill_Gates"]}, files=upload(lfw_photo("Andre_Agassi", 3))
    ).json()
    assert response["match"] is False and response["distance"] > 0.9


def test_detect_returns_faces_without_storing(client):
    group = np.concatenate([lfw_pixels("Bill_Gates", 1), lfw_pixels("Angelina_Jolie", 1)], axis=1)
    response = client.post("/v1/detect", files=upload(jpeg(group)))
    assert response.status_code == 200
    faces = response.json()["faces"]
    assert len(faces) == 2
    for face in faces:
        assert set(face["box"]) == {"x", "y", "width", "height"} and face["box"]["width"] > 50
        assert set(face["landmarks"]) == {"left_eye", "right_eye", "nose", "mouth_left", "mouth_right"}
        assert face["score"] > 0.9
        assert abs(sum(face["apparent_expression"]["emotion"].values()) - 100) < 0.1
    with session_scope() as session:
        assert session.scalar(select(func.count()).select_from(Attempt)) == 0


def test_min_face_size_leaves_out_smaller_faces_and_keeps_the_others_as_they_were(client, enrolled):
    # A near face (photo at 300 px: face ~130 px) and a far one (photo at 110 px: face ~50 px).
    frame = np.full((480, 640, 3), 128, np.uint8)
    frame[90:390, 20:320] = cv2.resize(lfw_pixels("Bill_Gates", 1), (300, 300), interpolation=cv2.INTER_AREA)
    frame[185:295, 450:560] = cv2.resize(lfw_pixels("Angelina_Jolie", 1), (110, 110), interpolation=cv2.INTER_AREA)
    photo = jpeg(frame)

    every = client.post("/v1/detect", files=upload(photo)).json()["faces"]
    near = client.post("/v1/detect", files=upload(photo), params={"min_face_size": 90}).json()["faces"]
    assert sorted(f["box"]["x"] < 320 for f in every) == [False, True]
    assert near == [f for f in every if f["box"]["x"] < 320]  # the same box, landmarks and expression
    (identified,) = client.post("/v1/identify", files=upload(photo), params={"min_face_size": 90}).json()["faces"]
    assert identified["match"]["external_id"] == "Bill_Gates"
    with session_scope() as session:  # nothing of the far face is kept either
        assert session.scalar(select(func.count()).select_from(Attempt)) == 1

    floor = get_settings().detector_min_face_size
    for value in (floor - 1, 8193):
        refused = client.post("/v1/detect", files=upload(photo), params={"min_face_size": value})
        assert refused.status_code == 422 and refused.json()["error"]["code"] == "invalid_min_face_size"
        assert refused.json()["error"]["details"]["min"] == floor


def test_exif_orientation_is_honoured(client):
    upright = lfw_pixels("Bill_Gates", 1)
    # Store the pixels rotated and let the EXIF tag say how to turn them back (6: rotate 90 degrees clockwise).
    stored = np.ascontiguousarray(np.rot90(upright, k=1))
    exif = Image.Exif()
    exif[0x0112] = 6
    rotated = client.post("/v1/detect", files=upload(jpeg(stored, exif=exif.tobytes()))).json()["faces"]
    plain = client.post("/v1/detect", files=upload(jpeg(upright))).json()["faces"]
    assert len(rotated) == 1 and len(plain) == 1
    for key in ("x", "y", "width", "height"):
        assert abs(rotated[0]["box"][key] - plain[0]["box"][key]) < 4
    left, right = rotated[0]["landmarks"]["left_eye"], rotated[0]["landmarks"]["right_eye"]
    assert abs(left[1] - right[1]) < 10  # eyes level: the face is upright
