import shutil

import pytest
from sqlalchemy import select

from cli import main
from db.models import Member
from db.session import session_scope
from tests.support import LFW_IMAGES, SHARED

pytestmark = pytest.mark.models


def test_enroll_folder_reports_rejects(client, tmp_path, capsys):
    for person in ("Bill_Gates", "Angelina_Jolie"):
        (tmp_path / person).mkdir()
        for n in (1, 2):
            shutil.copy(LFW_IMAGES / person / f"{person}_{n:04d}.jpg", tmp_path / person)
    (tmp_path / "Bill_Gates" / "notes.jpg").write_bytes(b"not an image")
    main(["enroll-folder", str(tmp_path)])
    out = capsys.readouterr().out
    assert "enrolled 4 of 5 photos of 2 people; 1 rejected" in out and "unsupported_media_type: 1" in out
    with session_scope() as session:
        members = session.scalars(select(Member).order_by(Member.external_id)).all()
        assert [(m.external_id, len(m.faces)) for m in members] == [("Angelina_Jolie", 2), ("Bill_Gates", 2)]


def test_eval_emotion_prints_accuracy_and_confusion_matrix(client, tmp_path, capsys):
    for label_dir in sorted((SHARED / "data" / "fer2013_test").iterdir()):
        (tmp_path / label_dir.name).mkdir()
        for path in sorted(label_dir.iterdir())[:5]:
            shutil.copy(path, tmp_path / label_dir.name)
    main(["eval-expression", str(tmp_path)])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("35 images, accuracy ")
    assert len(lines) == 9 and lines[2].split()[0] == "angry"
