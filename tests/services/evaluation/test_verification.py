"""The accuracy the README promises, measured on the real data through the full pipeline."""

import pytest

from core.settings import get_settings
from services.evaluation.verification import lfw_embeddings, read_lfw_pairs, verification_report
from tests.support import SHARED

pytestmark = pytest.mark.models

LFW = SHARED / "data" / "lfw"


def test_lfw_pairs_file_parses_into_balanced_folds():
    pairs = read_lfw_pairs(LFW / "pairs.txt", [1, 2])
    assert len(pairs) == 1200 and sum(p.same for p in pairs) == 600
    assert pairs[0].left == "Abel_Pacheco/Abel_Pacheco_0001.jpg" and pairs[0].same


def test_lfw_fold_1_accuracy_of_the_full_pipeline(pipeline):
    pairs = read_lfw_pairs(LFW / "pairs.txt", [1])
    embeddings, missed = lfw_embeddings(pipeline, LFW / "images", [p.left for p in pairs] + [p.right for p in pairs])
    report = verification_report(pairs, embeddings, missed, get_settings().match_threshold)
    assert report.cv_accuracy >= 0.99
    assert report.accuracy >= 0.985
    assert report.false_accept_rate <= 0.02
