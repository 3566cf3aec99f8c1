"""The open-set evaluator runs the service's own enroll and identify path on a small LFW folder."""

import pytest

from core.settings import get_settings
from services.evaluation.identification import det_plot, evaluate_identification
from tests.support import LFW_IMAGES

pytestmark = pytest.mark.models

MEMBERS = ("Bill_Gates", "Angelina_Jolie", "Alvaro_Uribe")
STRANGERS = ("Abdel_Madi_Shabneh", "Afton_Smith")


def test_eval_identify_reports_by_gallery_size(pipeline, client, tmp_path):
    for person in MEMBERS + STRANGERS:
        (tmp_path / person).mkdir()
        for photo in sorted((LFW_IMAGES / person).iterdir())[:5]:
            (tmp_path / person / photo.name).symlink_to(photo)
    reports = evaluate_identification(
        pipeline, get_settings(), tmp_path, enroll=[3, 1], member_min_photos=4, gallery_sizes=[2, None]
    )
    assert [r.enroll_per_member for r in reports] == [3, 1]
    three = reports[0]
    assert three.members_available == 3 and three.strangers == 2
    small, full = three.galleries
    assert (small.members, full.members) == (2, 3)
    assert full.genuine_probes == 6  # photos 4 and 5 of each member
    # a member left out of the small gallery is neither genuine nor a stranger there
    assert small.genuine_probes == 4 and small.stranger_probes == full.stranger_probes
    assert full.dir >= 0.5 and full.fpir == 0.0 and full.det
    det_plot(three, tmp_path / "det.png")
    assert (tmp_path / "det.png").read_bytes()[:4] == b"\x89PNG"
