"""A person passing the camera over /v1/identify/stream: one track, one decision, one attempt."""

import pytest
from starlette.testclient import WebSocketDenialResponse

from core.settings import get_settings
from services.evaluation.camera_clips import encode_jpeg, passing_clip
from tests.support import LFW_IMAGES, lfw_photo

pytestmark = pytest.mark.models


def clip(person: str, numbers: tuple[int, ...], frames: int, seed: int) -> list[bytes]:
    photos = [LFW_IMAGES / person / f"{person}_{n:04d}.jpg" for n in numbers]
    return [encode_jpeg(frame) for frame in passing_clip(photos, (640, 480), frames, seed=seed)]


def test_a_person_passing_is_one_track_one_decision_and_one_attempt(client, admin, service_key, monkeypatch):
    monkeypatch.setattr(get_settings(), "stream_track_gap_seconds", 600)  # however slow the machine
    settle = get_settings().stream_track_settle_frames
    files = [("file", (f"{n}.jpg", lfw_photo("Tony_Blair", n), "image/jpeg")) for n in (1, 2, 3)]
    created = client.post("/v1/members", data={"external_id": "tb", "display_name": "Tony Blair"}, files=files)
    assert created.status_code == 201, created.text
    # Shifted, rescaled and re-lit copies of one photo, with other photos of him mixed in.
    frames = clip("Tony_Blair", (4, 5, 6, 7), 10, seed=3)
    with client.websocket_connect("/v1/identify/stream?camera=door", headers={"X-API-Key": service_key}) as stream:
        answers = []
        for frame in frames:
            stream.send_bytes(frame)
            answers.append(stream.receive_json())
        stream.send_bytes(clip("Hugo_Chavez", (1, 2), 1, seed=4)[0])  # then someone else
        stranger = stream.receive_json()

    faces = [a["faces"] for a in answers]
    assert all(len(f) == 1 for f in faces), faces
    faces = [f[0] for f in faces]
    assert len({f["track_id"] for f in faces}) == 1 and [f["track_frames"] for f in faces] == list(range(1, 11))
    assert {(f["decision"], f["match"]["external_id"] if f["match"] else None) for f in faces} == {("match", "tb")}
    assert all(f["attempt_id"] is None for f in faces[: settle - 1])
    assert {f["attempt_id"] for f in faces[settle - 1 :]} == {faces[-1]["attempt_id"]} != {None}
    (other,) = stranger["faces"]
    assert other["track_id"] != faces[0]["track_id"] and other["decision"] == "unknown"
    recorded = admin.get("/v1/review/attempts", params={"kind": "identify"}).json()
    assert recorded["total"] == 1 and recorded["items"][0]["id"] == faces[-1]["attempt_id"]


def test_a_stream_may_raise_the_smallest_face_but_not_lower_it(client, service_key):
    headers = {"X-API-Key": service_key}
    with pytest.raises(WebSocketDenialResponse) as denied:
        client.websocket_connect("/v1/identify/stream?min_face_size=20", headers=headers).__enter__()
    assert denied.value.status_code == 422 and denied.value.json()["error"]["code"] == "invalid_min_face_size"
    frame = clip("Tony_Blair", (4,), 1, seed=3)[0]
    with client.websocket_connect("/v1/identify/stream?min_face_size=60", headers=headers) as stream:
        stream.send_bytes(frame)
        (near,) = stream.receive_json()["faces"]
    with client.websocket_connect("/v1/identify/stream?min_face_size=400", headers=headers) as stream:
        stream.send_bytes(frame)
        assert stream.receive_json()["faces"] == []
    assert near["box"]["width"] >= 60
