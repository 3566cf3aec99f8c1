"""The client's typed bodies name exactly the fields of the service's response schemas (docs/openapi.json is
checked against the app in tests/api/test_openapi.py)."""

import json
import typing

import pytest

from facegate_client import types
from tests.support import REPO

SCHEMAS = json.loads((REPO / "docs" / "openapi.json").read_text())["components"]["schemas"]
PAIRS = [
    (types.Face, "FaceOut"),
    (types.Member, "MemberOut"),
    (types.MemberPage, "MemberPage"),
    (types.BatchItem, "BatchItemOut"),
    (types.MemberBatch, "MemberBatchOut"),
    (types.ErrorBody, "ErrorOut"),
    (types.DetectedFace, "DetectedFaceOut"),
    (types.DetectResult, "DetectResponse"),
    (types.Candidate, "CandidateOut"),
    (types.Match, "MatchOut"),
    (types.IdentifiedFace, "IdentifiedFaceOut"),
    (types.IdentifyResult, "IdentifyResponse"),
    (types.VerifyResult, "VerifyResponse"),
    (types.MemberRef, "MemberRef"),
    (types.Attempt, "AttemptOut"),
    (types.AttemptPage, "AttemptPage"),
    (types.MemberFaceDistance, "MemberFaceDistance"),
    (types.ReviewItem, "ReviewItemOut"),
    (types.VerdictEffect, "VerdictOut"),
    (types.BlacklistEntry, "BlacklistEntryOut"),
    (types.Box, "Box"),
    (types.ApparentExpression, "ApparentExpression"),
]


@pytest.mark.parametrize("typed,schema", PAIRS, ids=[schema for _, schema in PAIRS])
def test_typed_body_has_the_schemas_fields(typed, schema):
    assert set(typing.get_type_hints(typed)) == set(SCHEMAS[schema]["properties"])


@pytest.mark.parametrize(
    "literal,schema",
    [
        (types.Decision, "Decision"),
        (types.AttemptKind, "AttemptKind"),
        (types.ReviewStatus, "ReviewStatus"),
        (types.Verdict, "Verdict"),
    ],
)
def test_vocabularies_match(literal, schema):
    assert set(typing.get_args(literal)) == set(SCHEMAS[schema]["enum"])
