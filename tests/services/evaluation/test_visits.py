"""The visits evaluator (`eval-identify --visits`) runs the service's own signup and identify path on a small LFW
folder, learning off and then on."""

import pytest

from core.settings import get_settings
from services.evaluation.visits import evaluate_visits
from tests.support import LFW_IMAGES

pytestmark = pytest.mark.models

REGULARS = ("Bill_Gates", "Colin_Powell", "Tony_Blair")
STRANGERS = ("Abdel_Madi_Shabneh", "Afton_Smith")


def test_eval_visits_compares_learning_off_and_on(pipeline, client, tmp_path):
    for person, photos in [*((p, 4) for p in REGULARS), *((p, 1) for p in STRANGERS)]:
        (tmp_path / person).mkdir()
        for photo in sorted((LFW_IMAGES / person).iterdir())[:photos]:
            (tmp_path / person / photo.name).symlink_to(photo)
    off, on = evaluate_visits(pipeline, get_settings(), tmp_path, visits=2)
    assert (off.learning, on.learning) == (False, True)
    assert (on.members, on.regulars, on.strangers, on.visits) == (3, 3, 2, 2)
    assert off.faces_learned == 0 and on.faces_learned >= 1 and on.wrongly_learned == 0
    assert on.dir >= off.dir and on.wrongly_named == 0.0
