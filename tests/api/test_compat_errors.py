"""The CompreFace and DeepStack routes answer bad requests in their clients' error shapes, with a 4xx, and what
their clients send (odd query strings, unknown plugins) is taken as they mean it."""

import base64
import uuid

import numpy as np
import pytest
from fastapi.testclient import TestClient

from db.models import Member
from db.session import session_scope
from tests.support import camera_frame, jpeg, lfw_photo, upload

BLANK = jpeg(np.full((200, 200, 3), 128, np.uint8))


@pytest.fixture
def compreface(anonymous, service_key):
    return TestClient(anonymous.app, headers={"x-api-key": service_key})


def compreface_error(response, status: int, code: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"message", "code"} and body["code"] == code, body
    return body["message"]


def deepstack_error(response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False and body["error"], body
    return body["error"]


def test_compreface_keys(anonymous, client):
    compreface_error(anonymous.get("/api/v1/recognition/subjects"), 401, 20)
    compreface_error(anonymous.get("/api/v1/recognition/subjects", headers={"x-api-key": "nope"}), 401, 10)
    assert client.get("/api/v1/recognition/subjects").json() == {"subjects": []}  # Bearer works too


@pytest.mark.models
def test_compreface_face_errors(compreface):
    no_face = compreface.post("/api/v1/recognition/recognize", files=upload(BLANK))
    assert compreface_error(no_face, 400, 28) == "No face is found in the given image"
    two = jpeg(camera_frame(("Hugo_Chavez", 1), ("Tony_Blair", 1), face_width=250))
    compreface_error(compreface.post("/api/v1/recognition/faces?subject=x", files=upload(two)), 400, 31)
    compreface_error(compreface.post("/api/v1/recognition/faces?subject=x", files=upload(BLANK)), 400, 28)
    blurred = jpeg(camera_frame(("Hugo_Chavez", 3), blur=3.5))
    refused = compreface.post("/api/v1/recognition/faces?subject=x", files=upload(blurred))
    assert "blurry" in compreface_error(refused, 422, 26)  # the gate's reason, for Double Take to show
    with session_scope() as session:
        assert session.query(Member).count() == 0  # no subject is left behind by a refused first face
    garbage = compreface.post("/api/v1/detection/detect", files=upload(b"not an image", "x.jpg", "image/jpeg"))
    assert garbage.status_code in (400, 415) and set(garbage.json()) == {"message", "code"}


@pytest.mark.models
def test_compreface_accepts_what_its_clients_send(compreface):
    photo = lfw_photo("Hugo_Chavez", 1)
    added = compreface.post("/api/v1/recognition/faces", params={"subject": "hugo"}, files=upload(photo))
    assert added.status_code == 201 and added.json()["subject"] == "hugo"
    # The Python SDK's `?&`, Double Take's face_plugins=undefined, the SDK's status=False, unknown plugins.
    for query in ("?&limit=0&prediction_count=1&status=False", "?face_plugins=undefined&det_prob_threshold=0.8",
                  "?face_plugins=age,gender,mask,nonsense,landmarks,pose&status=true"):  # fmt: skip
        response = compreface.post(f"/api/v1/recognition/recognize{query}", files=upload(lfw_photo("Hugo_Chavez", 2)))
        assert response.status_code == 200, response.text
        (face,) = response.json()["result"]
        assert face["subjects"][0]["subject"] == "hugo" and "age" not in face
    assert "landmarks" in face and set(response.json()["plugins_versions"]) >= {"detector", "calculator"}
    assert set(face["pose"]) == {"pitch", "roll", "yaw"} and abs(face["pose"]["yaw"]) < 45  # a frontal LFW photo
    encoded = base64.b64encode(lfw_photo("Hugo_Chavez", 3)).decode()
    as_json = compreface.post("/api/v1/recognition/recognize", json={"file": encoded})
    assert as_json.json()["result"][0]["subjects"][0]["subject"] == "hugo"


@pytest.mark.models
def test_compreface_not_found_and_hostile_parameters(compreface):
    missing = uuid.uuid4()
    compreface_error(compreface.get(f"/api/v1/recognition/faces/{missing}/img"), 404, 11)
    compreface_error(compreface.delete(f"/api/v1/recognition/faces/{missing}"), 404, 11)
    compreface_error(compreface.put("/api/v1/recognition/subjects/nobody", json={"subject": "x"}), 404, 42)
    compreface_error(compreface.post(f"/api/v1/recognition/faces/{missing}/verify", files=upload(BLANK)), 404, 11)
    assert compreface.delete("/api/v1/recognition/faces?subject=nobody").json() == {"deleted": 0}
    compreface_error(compreface.delete("/api/v1/recognition/faces"), 400, 33)  # not the whole collection at once
    compreface_error(compreface.delete("/api/v1/recognition/subjects"), 400, 33)
    compreface_error(compreface.post("/api/v1/recognition/faces", files=upload(BLANK)), 400, 33)  # no subject
    assert compreface.post("/api/v1/recognition/subjects", json={"subject": "s"}).status_code == 201
    compreface_error(compreface.post("/api/v1/recognition/subjects", json={"subject": "s"}), 400, 43)
    for query in ("limit=-1", "det_prob_threshold=nan", "det_prob_threshold=2", "prediction_count=0", "limit=x"):
        compreface_error(compreface.post(f"/api/v1/recognition/recognize?{query}", files=upload(BLANK)), 400, 26)
    compreface_error(compreface.post("/api/v1/recognition/recognize", json={"file": "%%%"}), 400, 21)
    compreface_error(compreface.post("/api/v1/recognition/recognize", json=["file"]), 400, 26)
    compreface_error(compreface.post("/api/v1/recognition/recognize", json={}), 400, 33)
    compreface_error(compreface.post("/api/v1/recognition/recognize", content=b"raw"), 415, 21)
    compreface_error(compreface.put("/api/v1/recognition/subjects/s", json={"subject": "a\x00b"}), 400, 26)


@pytest.mark.models
def test_deepstack_errors_and_no_face_answers(anonymous, service_key, admin):
    key = {"api_key": service_key}
    deepstack_error(anonymous.post("/v1/vision/face/list"), 415)
    deepstack_error(anonymous.post("/v1/vision/face/list", data={"api_key": "nope"}), 401)
    deepstack_error(anonymous.post("/v1/vision/face/list", data={"other": "x"}), 401)
    assert anonymous.post("/v1/vision/face/list", data=key).json() == {"success": True, "faces": []}
    no_face = anonymous.post("/v1/vision/face/recognize", data=key, files={"image": ("i.jpg", BLANK)})
    assert no_face.status_code == 200 and no_face.json()["error"] == "No face found in image"
    assert no_face.json()["success"] is False and no_face.json()["predictions"] == []
    register = anonymous.post(
        "/v1/vision/face/register", data={**key, "userid": "u"}, files={"image": ("i.jpg", BLANK)}
    )
    assert register.status_code == 200 and register.json() == {"success": False, "error": "No face detected"}
    photo = {"image": ("i.jpg", lfw_photo("Hugo_Chavez", 1))}
    assert (
        deepstack_error(anonymous.post("/v1/vision/face/register", data=key, files=photo), 400)
        == "user id not specified"
    )
    assert deepstack_error(anonymous.post("/v1/vision/face/recognize", data=key), 400) == "No valid image file found"
    garbage = anonymous.post("/v1/vision/face/recognize", data=key, files={"image": ("i.jpg", b"not an image")})
    assert 400 <= garbage.status_code < 500 and garbage.json()["success"] is False
    bad_confidence = anonymous.post("/v1/vision/face/recognize", data={**key, "min_confidence": "nan"}, files=photo)
    deepstack_error(bad_confidence, 400)
    match = anonymous.post(
        "/v1/vision/face/match", data=key, files={"image1": ("a.jpg", BLANK), "image2": ("b.jpg", BLANK)}
    )
    assert match.json() == {"success": False, "error": "No face found in one or both images"}
    door = {"api_key": admin.post("/v1/keys", json={"name": "door", "role": "identify"}).json()["key"]}
    deepstack_error(anonymous.post("/v1/vision/face/delete", data={**door, "userid": "u"}), 403)  # a door erases nobody
    too_many = [("image", (f"{n}.jpg", b"x", "image/jpeg")) for n in range(1001)]  # past the form parser's limit
    deepstack_error(anonymous.post("/v1/vision/face/register", data=key, files=too_many), 400)
