"""The expression accuracy the README promises, on the FER2013 test split."""

import pytest

from services.evaluation.expression import evaluate_expressions
from tests.support import SHARED

pytestmark = pytest.mark.models


def test_expression_accuracy_on_fer2013_test(pipeline):
    report = evaluate_expressions(pipeline, SHARED / "data" / "fer2013_test")
    assert report.images == 7178
    assert report.accuracy >= 0.65
    assert sum(map(sum, report.confusion)) == 7178
