"""A person's rights over their data: the export of everything held about one member, consent recorded at signup
(and required when the service says so), and apparent expression that can be turned off (issue 25, finding 10)."""

import base64
import json

import pytest
from prometheus_client import REGISTRY

from core.settings import get_settings
from tests.api.test_templates import signup
from tests.support import client_with_key, lfw_photo, upload

pytestmark = pytest.mark.models


def test_export_holds_everything_about_one_person_and_nothing_of_others(anonymous, client, admin):
    photos = [("file", (f"{n}.jpg", lfw_photo("Bill_Gates", n), "image/jpeg")) for n in (1, 2)]
    consent = {"consent_text_version": "2026-12", "consent_given_at": "2026-12-01T09:30:00+01:00"}
    created = client.post("/v1/members", data={"external_id": "gates", "display_name": "Bill", **consent}, files=photos)
    assert created.status_code == 201, created.text
    gates = created.json()
    signup(client, "Angelina_Jolie", (1, 2))
    (matched,) = client.post("/v1/identify", files=upload(lfw_photo("Bill_Gates", 3))).json()["faces"]
    tight = {"threshold": 0.2}  # unknown, Gates nearest: most likely him all the same
    (near,) = client.post("/v1/identify", files=upload(lfw_photo("Bill_Gates", 4)), params=tight).json()["faces"]
    verified = client.post("/v1/verify", data={"member_id": gates["id"]}, files=upload(lfw_photo("Bill_Gates", 5)))
    (other,) = client.post("/v1/identify", files=upload(lfw_photo("Angelina_Jolie", 3))).json()["faces"]
    verdict = admin.post(f"/v1/review/attempts/{matched['attempt_id']}/verdict", json={"verdict": "false_match"})
    assert verdict.status_code == 200, verdict.text

    door = admin.post("/v1/keys", json={"name": "door", "role": "identify"}).json()["key"]
    assert client_with_key(anonymous.app, door).get(f"/v1/members/{gates['id']}/export").status_code == 403
    response = client.get(f"/v1/members/{gates['id']}/export")
    assert response.status_code == 200, response.text
    assert response.headers["content-disposition"] == f'attachment; filename="facegate-member-{gates["id"]}.json"'
    export = response.json()

    assert export["member"]["id"] == gates["id"]
    assert export["member"]["consent"] == {"text_version": "2026-12", "given_at": "2026-12-01T08:30:00Z"}
    now = client.get(f"/v1/members/{gates['id']}").json()  # with any face learned from the confident match
    assert [f["id"] for f in export["faces"]] == [f["id"] for f in now["faces"]]
    assert {f["id"] for f in gates["faces"]} <= {f["id"] for f in export["faces"]}
    for face in export["faces"]:
        assert len(face["embedding"]) == 128 and base64.b64decode(face["crop_jpeg_base64"])[:2] == b"\xff\xd8"
    attempts = {a["attempt"]["id"]: a for a in export["attempts"]}
    assert set(attempts) == {matched["attempt_id"], near["attempt_id"], verified.json()["attempt_id"]}
    assert other["attempt_id"] not in response.text
    assert attempts[matched["attempt_id"]]["attempt"]["review_status"] == "false_match"
    for attempt in attempts.values():
        assert len(attempt["probe_embedding"]) == 128
        assert base64.b64decode(attempt["probe_crop_jpeg_base64"])[:2] == b"\xff\xd8"
    (entry,) = export["blacklist"]
    assert entry["attempt_id"] == matched["attempt_id"] and len(entry["probe_embedding"]) == 128
    actions = {(e["action"], e["target_id"]) for e in export["audit"]}
    assert ("member.consent", gates["id"]) in actions and ("review.verdict", matched["attempt_id"]) in actions
    assert "Angelina" not in response.text

    (audited,) = admin.get("/v1/audit", params={"action": "member.export"}).json()
    assert audited["target_id"] == gates["id"] and audited["actor_name"] == "tests"


def test_consent_is_recorded_audited_and_required_when_the_service_says_so(client, admin, monkeypatch):
    member = client.post(
        "/v1/members", json={"external_id": "ada", "display_name": "Ada", "consent_text_version": "v1"}
    ).json()
    assert member["consent"]["text_version"] == "v1" and member["consent"]["given_at"]
    (entry,) = admin.get("/v1/audit", params={"action": "member.consent"}).json()
    assert entry["target_id"] == member["id"] and entry["details"]["text_version"] == "v1"
    assert client.post("/v1/members", json={"external_id": "bob", "display_name": "Bob"}).json()["consent"] is None

    monkeypatch.setattr(get_settings(), "require_consent", True)
    refused = client.post("/v1/members", json={"external_id": "cy", "display_name": "Cy"})
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "consent_required"
    members = [
        {"external_id": "dee", "display_name": "Dee", "photos": []},
        {"external_id": "eve", "display_name": "Eve", "photos": [], "consent_text_version": "v1"},
    ]
    batch = client.post("/v1/members/batch", data={"members": json.dumps(members)})
    assert batch.status_code == 200, batch.text
    dee, eve = batch.json()["items"]
    assert dee["status"] == "error" and dee["error"]["code"] == "consent_required"
    assert eve["status"] == "created"
    assert (
        client.get("/v1/members", params={"external_id": "eve"}).json()["items"][0]["consent"]["text_version"] == "v1"
    )
    assert client.get("/v1/members", params={"external_id": "cy"}).json()["total"] == 0


def _expression_passes() -> float:
    """How many times the expression model ran (its stage's histogram count, core/metrics.py)."""
    return REGISTRY.get_sample_value("facegate_model_stage_seconds_count", {"stage": "expression"}) or 0


def test_expression_turned_off_is_neither_computed_stored_nor_shown(client, admin, pipeline, monkeypatch):
    signup(client, "Bill_Gates", (1, 2))
    monkeypatch.setattr(pipeline.settings, "expression_enabled", False)
    before = _expression_passes()
    (detected,) = client.post("/v1/detect", files=upload(lfw_photo("Bill_Gates", 3))).json()["faces"]
    assert detected["apparent_expression"] is None
    (found,) = client.post("/v1/identify", files=upload(lfw_photo("Bill_Gates", 4))).json()["faces"]
    assert found["decision"] == "match" and found["apparent_expression"] is None
    assert admin.get(f"/v1/review/attempts/{found['attempt_id']}").json()["attempt"]["apparent_expression"] is None
    assert _expression_passes() == before  # the model never ran

    monkeypatch.setattr(pipeline.settings, "expression_enabled", True)
    (detected,) = client.post("/v1/detect", files=upload(lfw_photo("Bill_Gates", 3))).json()["faces"]
    assert detected["apparent_expression"]["dominant_emotion"]
    assert _expression_passes() > before
