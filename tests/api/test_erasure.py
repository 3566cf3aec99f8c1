"""Deleting a member erases that person everywhere, and a delete racing a request for the member is a 404, not a
500."""

import threading
import time

import pytest
from sqlalchemy import String, cast, func, select

from db.models import Attempt, AuditEntry, Face
from db.session import session_scope
from tests.api.test_templates import signup
from tests.support import lfw_photo, upload

pytestmark = pytest.mark.models


def test_deleting_a_member_erases_their_probes_and_their_name(client, admin):
    gates = signup(client, "Bill_Gates", (1, 2, 3))
    jolie = signup(client, "Angelina_Jolie", (1, 2))
    matched = client.post("/v1/identify", files=upload(lfw_photo("Bill_Gates", 4))).json()
    assert matched["faces"][0]["match"]["member_id"] == gates["id"]
    claimed = client.post("/v1/verify", data={"member_id": gates["id"]}, files=upload(lfw_photo("Bill_Gates", 5)))
    assert claimed.status_code == 200
    other = client.post("/v1/identify", files=upload(lfw_photo("Angelina_Jolie", 3))).json()
    assert {c["member_id"] for c in other["faces"][0]["candidates"]} == {gates["id"], jolie["id"]}
    # A reviewer says Jolie's probe was really Gates: that names him too.
    named = client.post("/v1/identify", files=upload(lfw_photo("Angelina_Jolie", 4))).json()["faces"][0]
    verdict = admin.post(
        f"/v1/review/attempts/{named['attempt_id']}/verdict",
        json={"verdict": "false_non_match", "member_id": gates["id"]},
    )
    assert verdict.status_code == 200, verdict.text

    assert admin.delete(f"/v1/members/{gates['id']}").status_code == 204

    for attempt_id in (matched["faces"][0]["attempt_id"], claimed.json()["attempt_id"], named["attempt_id"]):
        assert admin.get(f"/v1/review/attempts/{attempt_id}").status_code == 404
        assert admin.get(f"/v1/review/attempts/{attempt_id}/crop").status_code == 404
    kept = admin.get(f"/v1/review/attempts/{other['faces'][0]['attempt_id']}").json()
    assert "Bill_Gates" not in str(kept) and gates["id"] not in str(kept)
    with session_scope() as session:
        assert session.scalar(select(func.count()).select_from(Face).where(Face.member_id == gates["id"])) == 0
        leftovers = select(func.count()).where(cast(Attempt.candidates, String).contains(gates["id"]))
        assert session.scalar(leftovers.select_from(Attempt)) == 0
        (entry,) = session.scalars(select(AuditEntry).where(AuditEntry.action == "member.delete")).all()
        assert entry.details == {"external_id": "Bill_Gates", "erased_attempts": 3}


def test_a_member_deleted_while_requests_are_in_flight(client, admin):
    """Verify, enroll and identify for a member race its deletion: each ends 2xx or 404, never 500."""
    statuses: list[int] = []

    def call(method, *args, **kwargs):
        statuses.append(getattr(client, method)(*args, **kwargs).status_code)

    for round_ in range(3):
        gates = client.post(
            "/v1/members",
            data={"external_id": f"gates-{round_}", "display_name": "Bill Gates"},
            files=[("file", ("1.jpg", lfw_photo("Bill_Gates", 1), "image/jpeg"))],
        ).json()
        threads = [
            threading.Thread(
                target=call,
                args=("post", "/v1/verify"),
                kwargs={"data": {"member_id": gates["id"]}, "files": upload(lfw_photo("Bill_Gates", 2))},
            ),  # fmt: skip
            threading.Thread(
                target=call,
                args=("post", f"/v1/members/{gates['id']}/faces"),
                kwargs={"files": upload(lfw_photo("Bill_Gates", 3))},
            ),  # fmt: skip
            threading.Thread(
                target=call, args=("post", "/v1/identify"), kwargs={"files": upload(lfw_photo("Bill_Gates", 4))}
            ),  # fmt: skip
        ]
        for thread in threads:
            thread.start()
        time.sleep(0.05 * round_)  # the delete lands before, during or after the requests' inference
        statuses.append(admin.delete(f"/v1/members/{gates['id']}").status_code)
        for thread in threads:
            thread.join()
    assert statuses and set(statuses) <= {200, 201, 204, 404}, statuses
