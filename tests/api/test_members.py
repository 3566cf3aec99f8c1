import json

import cv2
import numpy as np
import pytest
from sqlalchemy import func, select

from db.models import BlacklistEntry, Face, Member
from db.session import session_scope
from tests.support import embed_passes, jpeg, lfw_photo, lfw_pixels, upload


def create(client, external_id="m-1", display_name="Member One", **extra):
    response = client.post("/v1/members", json={"external_id": external_id, "display_name": display_name, **extra})
    assert response.status_code == 201, response.text
    return response.json()


def count(model) -> int:
    with session_scope() as session:
        return session.scalar(select(func.count()).select_from(model))


def test_member_crud(client, admin):
    member = create(client, metadata={"team": "red"})
    assert member["metadata"] == {"team": "red"} and member["faces"] == []

    assert client.get(f"/v1/members/{member['id']}").json()["external_id"] == "m-1"

    updated = client.patch(f"/v1/members/{member['id']}", json={"display_name": "Renamed", "metadata": {"a": 1}})
    assert updated.status_code == 200
    assert updated.json()["display_name"] == "Renamed" and updated.json()["metadata"] == {"a": 1}

    assert client.delete(f"/v1/members/{member['id']}").status_code == 204  # the member system erases
    assert admin.delete(f"/v1/members/{member['id']}").status_code == 404
    gone = client.get(f"/v1/members/{member['id']}")
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "member_not_found"


def test_list_pages_and_filters_by_external_id(client):
    for i in range(5):
        create(client, external_id=f"m-{i}", display_name=f"Member {i}")
    page = client.get("/v1/members", params={"offset": 1, "limit": 2}).json()
    assert page["total"] == 5 and [m["external_id"] for m in page["items"]] == ["m-1", "m-2"]
    only = client.get("/v1/members", params={"external_id": "m-3"}).json()
    assert only["total"] == 1 and only["items"][0]["external_id"] == "m-3"


def test_duplicate_external_id_is_a_conflict(client):
    create(client)
    response = client.post("/v1/members", json={"external_id": "m-1", "display_name": "Again"})
    assert response.status_code == 409 and response.json()["error"]["code"] == "duplicate_external_id"
    other = create(client, external_id="m-2")
    renamed = client.patch(f"/v1/members/{other['id']}", json={"external_id": "m-1"})
    assert renamed.status_code == 409 and renamed.json()["error"]["code"] == "duplicate_external_id"
    assert client.get(f"/v1/members/{other['id']}").json()["external_id"] == "m-2"


@pytest.mark.models
def test_signup_with_photos_in_one_call(client):
    response = client.post(
        "/v1/members",
        data={"external_id": "agassi", "display_name": "Andre Agassi", "metadata": json.dumps({"sport": "tennis"})},
        files=[
            ("file", ("2.jpg", lfw_photo("Andre_Agassi", 2), "image/jpeg")),
            ("file", ("3.jpg", lfw_photo("Andre_Agassi", 3), "image/jpeg")),
        ],
    )
    assert response.status_code == 201, response.text
    member = response.json()
    assert member["metadata"] == {"sport": "tennis"} and len(member["faces"]) == 2
    face = member["faces"][0]
    assert face["enabled"] and face["detection_score"] > 0.9 and face["quality"]["face_size"] > 40
    crop = client.get(f"/v1/members/{member['id']}/faces/{face['id']}/crop")
    assert crop.status_code == 200 and crop.headers["content-type"] == "image/jpeg"


@pytest.mark.models
def test_signup_with_a_bad_photo_stores_nothing(client):
    blank = jpeg(np.full((200, 200, 3), 128, dtype=np.uint8))
    response = client.post(
        "/v1/members",
        data={"external_id": "agassi", "display_name": "Andre Agassi"},
        files=[
            ("file", ("good.jpg", lfw_photo("Andre_Agassi", 2), "image/jpeg")),
            ("file", ("blank.jpg", blank, "image/jpeg")),
        ],
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "no_face" and error["details"]["photo_index"] == 1
    assert count(Member) == 0 and count(Face) == 0


@pytest.mark.models
def test_enroll_quality_gate(client):
    member = create(client)
    url = f"/v1/members/{member['id']}/faces"

    blank = jpeg(np.full((200, 200, 3), 90, dtype=np.uint8))
    assert client.post(url, files=upload(blank)).json()["error"]["code"] == "no_face"

    pair = np.concatenate([lfw_pixels("Andre_Agassi", 2), lfw_pixels("Bill_Gates", 1)], axis=1)
    two = client.post(url, files=upload(jpeg(pair)))
    assert two.status_code == 422 and two.json()["error"]["code"] == "multiple_faces"
    # With `largest`, two faces of about the same size, neither in the middle: which was meant cannot be told.
    alike = client.post(url, files=upload(jpeg(pair)), params={"largest": True})
    assert alike.status_code == 422 and alike.json()["error"]["code"] == "multiple_faces"
    smaller = np.full((250, 250, 3), 128, dtype=np.uint8)
    smaller[62:187, 62:187] = cv2.resize(lfw_pixels("Bill_Gates", 1), (125, 125), interpolation=cv2.INTER_AREA)
    clear = np.concatenate([lfw_pixels("Andre_Agassi", 2), smaller], axis=1)
    assert client.post(url, files=upload(jpeg(clear)), params={"largest": True}).status_code == 201

    small = np.asarray(
        __import__("PIL.Image", fromlist=["Image"]).fromarray(lfw_pixels("Bill_Gates", 2)).resize((80, 80))
    )
    tiny = client.post(url, files=upload(jpeg(small)))
    assert tiny.status_code == 422 and tiny.json()["error"]["code"] == "face_too_small"

    # The face half out of the photo (shifted 100 px to the left): it would embed far from his other photos.
    cut_off = np.full((250, 250, 3), 128, dtype=np.uint8)
    cut_off[:, :150] = lfw_pixels("Bill_Gates", 2)[:, 100:]
    cut = client.post(url, files=upload(jpeg(cut_off)))
    assert cut.status_code == 422 and cut.json()["error"]["code"] == "face_cut_off"
    assert cut.json()["error"]["details"]["inside"] < 0.8

    blurred = cv2.GaussianBlur(lfw_pixels("Bill_Gates", 3), (0, 0), 4)
    blurry = client.post(url, files=upload(jpeg(blurred)))
    assert blurry.status_code == 422 and blurry.json()["error"]["code"] == "blurry"

    assert len(client.get(f"/v1/members/{member['id']}").json()["faces"]) == 1


@pytest.mark.models
def test_duplicate_signup_answers_409_with_the_other_member(client, admin):
    agassi = create(client, external_id="agassi", display_name="Andre Agassi")
    assert (
        client.post(f"/v1/members/{agassi['id']}/faces", files=upload(lfw_photo("Andre_Agassi", 2))).status_code == 201
    )

    impostor = create(client, external_id="not-agassi", display_name="Someone Else")
    url = f"/v1/members/{impostor['id']}/faces"
    response = client.post(url, files=upload(lfw_photo("Andre_Agassi", 3)))
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "duplicate_face" and error["details"]["member"]["id"] == agassi["id"]
    assert (
        admin.post(url, files=upload(lfw_photo("Andre_Agassi", 3)), params={"allow_duplicate": True}).status_code == 201
    )


@pytest.mark.models
def test_remove_face_and_delete_member_erase_faces_and_blacklist(client, admin):
    member = create(client)
    url = f"/v1/members/{member['id']}/faces"
    first = client.post(url, files=upload(lfw_photo("Bill_Gates", 1))).json()
    client.post(url, files=upload(lfw_photo("Bill_Gates", 2)))
    assert client.delete(f"{url}/{first['id']}").status_code == 204
    assert client.delete(f"{url}/{first['id']}").json()["error"]["code"] == "face_not_found"
    assert count(Face) == 1

    with session_scope() as session:
        session.add(BlacklistEntry(member_id=member["id"], probe_embedding=[0.0] * 127 + [1.0]))
    assert admin.delete(f"/v1/members/{member['id']}").status_code == 204
    assert count(Face) == 0 and count(BlacklistEntry) == 0 and count(Member) == 0


def batch(client, members, files=(), **params):
    """POST /v1/members/batch: `members` as the JSON field, `files` as (field name, photo bytes) pairs."""
    parts = [(name, (f"{name}.jpg", data, "image/jpeg")) for name, data in files]
    return client.post("/v1/members/batch", data={"members": json.dumps(members)}, files=parts or None, params=params)


def statuses(response) -> list[tuple[str, str]]:
    assert response.status_code == 200, response.text
    return [(item["external_id"], item["status"]) for item in response.json()["items"]]


@pytest.mark.models
def test_batch_signup_creates_each_member_and_a_resend_finds_them(client):
    members = [
        {"external_id": "agassi", "display_name": "Andre Agassi", "metadata": {"sport": "tennis"},
         "photos": ["a1", "a2"]},
        {"external_id": "gates", "display_name": "Bill Gates", "photos": ["g1"]},
        {"external_id": "jolie", "display_name": "Angelina Jolie", "photos": ["j1", "j2"]},
        {"external_id": "no-photos", "display_name": "Nobody Yet"},
    ]  # fmt: skip
    files = [
        ("a1", lfw_photo("Andre_Agassi", 2)),
        ("a2", lfw_photo("Andre_Agassi", 3)),
        ("g1", lfw_photo("Bill_Gates", 1)),
        ("j1", lfw_photo("Angelina_Jolie", 1)),
        ("j2", lfw_photo("Angelina_Jolie", 2)),
    ]
    passes = embed_passes()
    response = batch(client, members, files)
    assert statuses(response) == [(m["external_id"], "created") for m in members]
    assert embed_passes() == passes + 1  # the five photos of the batch embedded together
    body = response.json()
    assert [item["faces"] for item in body["items"]] == [2, 1, 2, 0]
    assert (body["created"], body["exists"], body["errors"]) == (4, 0, 0)
    agassi = client.get(f"/v1/members/{body['items'][0]['member_id']}").json()
    assert agassi["metadata"] == {"sport": "tennis"} and agassi["template_faces"] == 2
    assert count(Member) == 4 and count(Face) == 5

    again = batch(client, members, files)  # as a client interrupted before reading the answer would
    assert statuses(again) == [(m["external_id"], "exists") for m in members]
    assert [(i["member_id"], i["faces"]) for i in again.json()["items"]] == [
        (i["member_id"], i["faces"]) for i in body["items"]
    ]
    assert count(Member) == 4 and count(Face) == 5


@pytest.mark.models
def test_batch_items_fail_alone_and_leave_nothing_half_written(client):
    powell = create(client, external_id="powell", display_name="Colin Powell")
    blank = jpeg(np.full((200, 200, 3), 128, dtype=np.uint8))
    members = [
        {"external_id": "agassi", "display_name": "Andre Agassi", "photos": ["a2"]},
        {"external_id": "blank", "display_name": "No Face", "photos": ["g1", "blank"]},
        {"external_id": "agassi", "display_name": "Second Agassi", "photos": ["g2"]},
        {"external_id": "powell", "display_name": "Colin Powell", "photos": ["p1"]},
        {"external_id": "not-agassi", "display_name": "Someone Else", "photos": ["a3"]},
        {"external_id": "gates", "display_name": "Bill Gates", "photos": ["g1", "g2"]},
    ]
    files = [
        ("a2", lfw_photo("Andre_Agassi", 2)),
        ("a3", lfw_photo("Andre_Agassi", 3)),
        ("g1", lfw_photo("Bill_Gates", 1)),
        ("g2", lfw_photo("Bill_Gates", 2)),
        ("blank", blank),
        ("p1", lfw_photo("Colin_Powell", 1)),
    ]
    response = batch(client, members, files)
    assert statuses(response) == [
        ("agassi", "created"),
        ("blank", "error"),
        ("agassi", "error"),
        ("powell", "exists"),
        ("not-agassi", "error"),
        ("gates", "created"),
    ]
    items = response.json()["items"]
    # The codes and details a single signup of each would have answered.
    no_face, repeat, duplicate = items[1]["error"], items[2]["error"], items[4]["error"]
    assert no_face["code"] == "no_face" and no_face["details"]["photo_index"] == 1
    assert repeat["code"] == "duplicate_external_id"
    assert duplicate["code"] == "duplicate_face" and duplicate["details"]["member"]["id"] == items[0]["member_id"]
    assert items[3]["member_id"] == powell["id"] and items[3]["faces"] == 0
    with session_scope() as session:
        stored = session.execute(
            select(Member.external_id, func.count(Face.id)).outerjoin(Face).group_by(Member.id)
        ).all()
    assert sorted(stored) == [("agassi", 1), ("gates", 2), ("powell", 0)]


def test_batch_request_problems_are_refused_whole(client, monkeypatch):
    from core.settings import get_settings

    one = {"external_id": "m-1", "display_name": "One", "photos": ["p"]}
    photo = [("p", b"not read")]
    monkeypatch.setattr(get_settings(), "max_batch_members", 2)

    def refused(response, status, code):
        assert response.status_code == status, response.text
        assert response.json()["error"]["code"] == code

    refused(batch(client, [one, {**one, "external_id": "m-2"}, {**one, "external_id": "m-3"}], photo), 422,
            "too_many_members")  # fmt: skip
    refused(client.post("/v1/members/batch", data={"members": "[{"}, files=photo), 422, "validation_error")
    refused(batch(client, {"external_id": "m-1"}, photo), 422, "validation_error")
    refused(batch(client, [{"display_name": "No id"}], photo), 422, "missing_field")
    refused(batch(client, [], photo), 422, "validation_error")
    refused(client.post("/v1/members/batch", files=photo), 422, "missing_field")
    refused(batch(client, [{**one, "photos": ["p", "q"]}], photo), 422, "missing_file")
    refused(client.post("/v1/members/batch", json=[one]), 415, "unsupported_content_type")
    assert count(Member) == 0


def test_batch_photo_over_the_size_limit_fails_only_its_member(client, monkeypatch):
    from core.settings import get_settings

    monkeypatch.setattr(get_settings(), "max_upload_bytes", 100)
    members = [
        {"external_id": "big", "display_name": "Big Photo", "photos": ["p"]},
        {"external_id": "none", "display_name": "No Photo"},
    ]
    response = batch(client, members, [("p", b"x" * 101)])
    assert statuses(response) == [("big", "error"), ("none", "created")]
    error = response.json()["items"][0]["error"]
    assert error["code"] == "file_too_large" and error["details"]["photo_index"] == 0
    assert count(Member) == 1
