import shutil
from datetime import UTC, datetime

import numpy as np
import pytest
from sqlalchemy import select

from cli import main
from core.settings import get_settings
from db.models import AuditEntry, Member
from db.session import session_scope
from tests.support import LFW_IMAGES, SHARED

pytestmark = pytest.mark.models


def people_folder(folder, people: tuple[str, ...], photos: int):
    """FOLDER/<person>/ with each person's first `photos` LFW photos: enroll-folder's layout."""
    for person in people:
        (folder / person).mkdir(parents=True)
        for n in range(1, photos + 1):
            shutil.copy(LFW_IMAGES / person / f"{person}_{n:04d}.jpg", folder / person)
    return folder


def faces_per_member() -> list[tuple[str, int]]:
    with session_scope() as session:
        members = session.scalars(select(Member).order_by(Member.external_id)).all()
        return [(m.external_id, len(m.faces)) for m in members]


@pytest.mark.parametrize("where", ["here", "remote"])
def test_enroll_folder_reports_rejects(client, tmp_path, capsys, where, request, monkeypatch):
    """Into the local database, or (--url) through the API of a running service: the same outcome."""
    people_folder(tmp_path, ("Bill_Gates", "Angelina_Jolie"), 2)
    # Sorted first among Bill Gates's photos: the remote signup must not leave a member behind for it.
    (tmp_path / "Bill_Gates" / "Bill_Gates_0000.jpg").write_bytes(b"not an image")
    if where == "remote":
        monkeypatch.setenv("FACEGATE_API_KEY", request.getfixturevalue("service_key"))
        main(["enroll-folder", str(tmp_path), "--url", request.getfixturevalue("live_server")])
    else:
        main(["enroll-folder", str(tmp_path)])
    out = capsys.readouterr().out
    assert "enrolled 4 of 5 photos of 2 people; 1 rejected" in out and "unsupported_media_type: 1" in out
    assert faces_per_member() == [("Angelina_Jolie", 2), ("Bill_Gates", 2)]


@pytest.mark.parametrize("where", ["here", "remote"])
def test_enroll_folder_refuses_another_persons_photo_in_a_person_folder(
    client, tmp_path, capsys, where, request, monkeypatch
):
    people_folder(tmp_path, ("Bill_Gates",), 2)
    shutil.copy(LFW_IMAGES / "Tony_Blair" / "Tony_Blair_0001.jpg", tmp_path / "Bill_Gates")  # sorted last
    if where == "remote":
        monkeypatch.setenv("FACEGATE_API_KEY", request.getfixturevalue("service_key"))
        main(["enroll-folder", str(tmp_path), "--url", request.getfixturevalue("live_server")])
    else:
        main(["enroll-folder", str(tmp_path)])
    out = capsys.readouterr().out
    assert "enrolled 2 of 3 photos of 1 people; 1 rejected" in out and "face_mismatch: 1" in out, out
    assert faces_per_member() == [("Bill_Gates", 2)]


def test_enroll_folder_resumes_from_its_journal(client, tmp_path, capsys):
    """A second run skips the photos the first one finished (as after an interruption) and reports its rate."""
    folder = people_folder(tmp_path / "people", ("Bill_Gates", "Angelina_Jolie"), 2)
    journal = tmp_path / "journal"
    main(["enroll-folder", str(folder), "--per-person", "1", "--journal", str(journal)])
    assert "enrolled 2 of 2 photos" in capsys.readouterr().out
    main(["enroll-folder", str(folder), "--journal", str(journal)])
    out = capsys.readouterr().out
    assert "resuming: 2 photos already done" in out and "enrolled 2 of 2 photos" in out and "photos/s" in out
    assert len(journal.read_text().splitlines()) == 4
    assert faces_per_member() == [("Angelina_Jolie", 2), ("Bill_Gates", 2)]


def test_enroll_folder_cut_off_before_its_journal_line_adds_no_face_twice(client, tmp_path, capsys):
    """A run killed between a photo's commit and its journal line: the next run finds that photo stored (for a
    member created by it, and for one that had faces before) and counts it as enrolled before."""
    folder = people_folder(tmp_path / "people", ("Bill_Gates", "Angelina_Jolie"), 2)
    journal = tmp_path / "journal"
    main(["enroll-folder", str(folder), "--journal", str(journal)])
    assert "enrolled 4 of 4 photos" in capsys.readouterr().out
    kept = [line for line in journal.read_text().splitlines() if not line.endswith(("_0002.jpg", "Gates_0001.jpg"))]
    journal.write_text("".join(f"{line}\n" for line in kept))
    main(["enroll-folder", str(folder), "--journal", str(journal)])
    out = capsys.readouterr().out
    assert "resuming: 1 photos already done" in out
    assert "enrolled 0 of 3 photos of 2 people; 0 rejected; 3 enrolled before, by an interrupted run;" in out
    assert faces_per_member() == [("Angelina_Jolie", 2), ("Bill_Gates", 2)]


def test_enroll_folder_through_the_api_in_batches_resumes(
    client, service_key, live_server, tmp_path, capsys, monkeypatch
):
    """--url sends --batch people per request. A run cut off after the service stored a batch but before the
    journal recorded it finds those members `exists` when run again and adds nothing twice; people whose first
    photos were done get the rest added."""
    monkeypatch.setenv("FACEGATE_API_KEY", service_key)
    folder = people_folder(tmp_path / "people", ("Bill_Gates", "Angelina_Jolie", "Colin_Powell"), 3)
    journal = tmp_path / "journal"
    run = ["enroll-folder", str(folder), "--url", live_server, "--batch", "2", "--journal", str(journal)]
    main([*run, "--per-person", "2"])
    assert "enrolled 6 of 6 photos of 3 people; 0 rejected;" in capsys.readouterr().out
    # Cut off: Colin Powell's batch reached the service, his journal lines did not.
    kept = [line for line in journal.read_text().splitlines() if "Colin_Powell" not in line]
    journal.write_text("".join(f"{line}\n" for line in kept))
    main([*run, "--per-person", "2"])
    out = capsys.readouterr().out
    assert "resuming: 4 photos already done" in out
    assert "enrolled 0 of 2 photos of 3 people; 0 rejected; 2 enrolled before, by an interrupted run;" in out
    main(run)
    out = capsys.readouterr().out
    assert "resuming: 6 photos already done" in out and "enrolled 3 of 3 photos of 3 people; 0 rejected;" in out
    assert "photos/s" in out and len(journal.read_text().splitlines()) == 9
    assert faces_per_member() == [("Angelina_Jolie", 3), ("Bill_Gates", 3), ("Colin_Powell", 3)]


def test_enroll_folder_keeps_a_journal_per_target_and_says_when_it_has_nothing_to_send(
    client, admin, service_key, live_server, tmp_path, capsys, monkeypatch
):
    """The default journal is keyed by the absolute folder and the target: done here is not done in a running
    service. A run the journal leaves nothing to send for says so and exits non-zero (issue 25)."""
    monkeypatch.setenv("FACEGATE_API_KEY", service_key)
    folder = people_folder(tmp_path / "people", ("Bill_Gates", "Angelina_Jolie"), 2)
    main(["enroll-folder", str(folder)])
    assert "enrolled 4 of 4 photos" in capsys.readouterr().out
    with pytest.raises(SystemExit) as again:
        main(["enroll-folder", str(folder)])
    assert again.value.code not in (0, None) and "nothing to send" in str(again.value)
    assert str(folder) in str(again.value) and "this machine's database" in str(again.value)

    for member in admin.get("/v1/members").json()["items"]:  # the service starts empty
        assert admin.delete(f"/v1/members/{member['id']}").status_code == 204
    main(["enroll-folder", str(folder), "--url", live_server])
    assert "enrolled 4 of 4 photos" in capsys.readouterr().out
    assert faces_per_member() == [("Angelina_Jolie", 2), ("Bill_Gates", 2)]
    with pytest.raises(SystemExit) as remote_again:
        main(["enroll-folder", str(folder), "--url", live_server])
    assert "nothing to send" in str(remote_again.value) and live_server in str(remote_again.value)


def test_eval_emotion_prints_accuracy_and_confusion_matrix(client, tmp_path, capsys):
    for label_dir in sorted((SHARED / "data" / "fer2013_test").iterdir()):
        (tmp_path / label_dir.name).mkdir()
        for path in sorted(label_dir.iterdir())[:5]:
            shutil.copy(path, tmp_path / label_dir.name)
    main(["eval-expression", str(tmp_path)])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("35 images, accuracy ")
    assert len(lines) == 9 and lines[2].split()[0] == "angry"


def test_eval_identify_runs_on_a_new_database_of_its_own(tmp_path):
    """Its own process, as a user runs it: it starts a private, empty database (the one command besides migrate
    and serve allowed to), writes its report, and removes that database."""
    import json
    import os
    import re
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    folder = tmp_path / "people"
    for person in ("Bill_Gates", "Angelina_Jolie", "Abdel_Madi_Shabneh"):
        (folder / person).mkdir(parents=True)
        for photo in sorted((LFW_IMAGES / person).iterdir())[:4]:
            (folder / person / photo.name).symlink_to(photo)
    run = subprocess.run(
        [sys.executable, "-m", "cli", "eval-identify", str(folder), "--enroll", "1", "--gallery-sizes", "0",
         "--out", str(tmp_path / "out"), "-v"],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(root)}, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "1 photo(s) per member: 2 members, 1 strangers" in run.stdout
    (report,) = json.loads((tmp_path / "out" / "eval-identify.json").read_text())
    assert report["galleries"][0]["members"] == 2
    (database,) = re.findall(r"temporary database in (\S+) ", run.stderr)
    assert not Path(database).exists()  # gone with the run


@pytest.mark.parametrize("where", ["here", "remote"])
def test_enroll_folder_records_the_consent_the_operator_holds(client, tmp_path, where, request, monkeypatch):
    people_folder(tmp_path, ("Bill_Gates",), 1)
    command = ["enroll-folder", str(tmp_path), "--consent-text-version", "gym-2026-12"]
    if where == "remote":
        monkeypatch.setenv("FACEGATE_API_KEY", request.getfixturevalue("service_key"))
        command += ["--url", request.getfixturevalue("live_server")]
    main(command)
    with session_scope() as session:
        member = session.scalars(select(Member)).one()
        assert member.consent_text_version == "gym-2026-12" and member.consent_given_at is not None
        audited = session.scalars(select(AuditEntry).where(AuditEntry.action == "member.consent")).one()
        assert audited.target_id == str(member.id) and audited.details["text_version"] == "gym-2026-12"


def test_imports_stop_without_consent_when_the_service_requires_it(client, tmp_path, monkeypatch, capsys):
    people_folder(tmp_path / "photos", ("Bill_Gates",), 1)
    np.savez(tmp_path / "embeddings.npz", external_id=np.array(["m-1"]), embedding=unit_rows(1))
    monkeypatch.setattr(get_settings(), "require_consent", True)
    for command in (
        ["enroll-folder", str(tmp_path / "photos")],
        ["import-embeddings", str(tmp_path / "embeddings.npz")],
    ):
        with pytest.raises(SystemExit, match="FACEGATE_REQUIRE_CONSENT is on: pass --consent-text-version"):
            main(command)
        with pytest.raises(SystemExit, match="at most 64 characters"):
            main([*command, "--consent-text-version", "v" * 65])
    assert faces_per_member() == []


def test_import_embeddings_records_consent_with_each_member(client, tmp_path):
    np.savez(tmp_path / "embeddings.npz", external_id=np.array(["m-1", "m-2"]), embedding=unit_rows(2))
    main(["import-embeddings", str(tmp_path / "embeddings.npz"), "--consent-text-version", "v3"])
    with session_scope() as session:
        members = session.scalars(select(Member).order_by(Member.external_id)).all()
        assert [m.consent_text_version for m in members] == ["v3", "v3"]
        given = {m.consent_given_at for m in members}
        assert len(given) == 1 and abs((given.pop() - datetime.now(UTC)).total_seconds()) < 60
        imported = session.scalars(select(AuditEntry).where(AuditEntry.action == "member.import")).one()
        assert imported.details["count"] == 2 and imported.details["consent_text_version"] == "v3"


def unit_rows(count: int) -> np.ndarray:
    rows = np.random.default_rng(count).normal(size=(count, 128)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)
