"""`facegate backup` and `facegate restore` round-trip the whole database of the running (embedded) server:
members, faces, templates, attempts, keys, the audit trail and the schema version, row for row."""

import pytest
from sqlalchemy import text

from cli import main
from db.models import Base
from db.session import session_scope
from tests.support import lfw_photo, upload

pytestmark = pytest.mark.models


def fingerprint() -> dict[str, tuple[int, str]]:
    """Every table's row count and a digest of all its rows (vectors included, as text)."""
    tables = [table.name for table in Base.metadata.sorted_tables] + ["alembic_version"]
    with session_scope() as session:
        return {
            name: tuple(
                session.execute(
                    text(f"SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {name} t")
                ).one()
            )
            for name in tables
        }


def signup(client, person: str, photos: list[int]) -> dict:
    files = [("file", (f"{n}.jpg", lfw_photo(person, n), "image/jpeg")) for n in photos]
    response = client.post("/v1/members", data={"external_id": person, "display_name": person}, files=files)
    assert response.status_code == 201, response.text
    return response.json()


def test_backup_and_restore_round_trip_every_table(admin, client, tmp_path, capsys):
    gates = signup(client, "Bill_Gates", [1, 2])
    signup(client, "Tony_Blair", [1, 2])
    (face,) = client.post("/v1/identify", files=upload(lfw_photo("Bill_Gates", 3))).json()["faces"]
    assert face["match"]["external_id"] == "Bill_Gates"
    key = admin.post("/v1/keys", json={"name": "backup test", "role": "service"}).json()
    saved = fingerprint()
    for table in ("members", "faces", "attempts", "api_keys", "audit_log"):
        assert saved[table][0] > 0, table

    backup_file = tmp_path / "facegate.dump"
    main(["backup", str(backup_file)])
    assert "database written to" in capsys.readouterr().out and backup_file.stat().st_size > 0

    # Changes after the backup: a member gone, another added, a key revoked, more attempts.
    assert admin.delete(f"/v1/members/{gates['id']}").status_code == 204
    signup(client, "Colin_Powell", [1, 2])
    assert admin.delete(f"/v1/keys/{key['id']}").status_code == 200
    client.post("/v1/identify", files=upload(lfw_photo("Colin_Powell", 3)))
    assert fingerprint() != saved

    # Over a database that holds FaceGate's tables only when asked to, and then exactly as it was.
    with pytest.raises(SystemExit) as refused:
        main(["restore", str(backup_file)])
    assert refused.value.code == 2 and "--replace" in capsys.readouterr().err
    main(["restore", str(backup_file), "--replace"])
    assert fingerprint() == saved
    # The restored database serves: the member is found again, with its template.
    (face,) = client.post("/v1/identify", files=upload(lfw_photo("Bill_Gates", 4))).json()["faces"]
    assert face["match"]["external_id"] == "Bill_Gates"


def test_restore_refuses_what_is_not_a_backup_and_changes_nothing(client, tmp_path, capsys):
    signup(client, "Tony_Blair", [1])
    before = fingerprint()
    not_a_backup = tmp_path / "notes.txt"
    not_a_backup.write_text("members: Tony Blair\n")
    for argv in (["restore", str(not_a_backup), "--replace"], ["restore", str(tmp_path / "missing.dump")]):
        with pytest.raises(SystemExit) as refused:
            main(argv)
        assert refused.value.code == 2
    err = capsys.readouterr().err
    assert "is not a FaceGate backup" in err and "no backup file" in err
    assert fingerprint() == before
