"""Property-based fuzzing of every operation in the OpenAPI schema (schemathesis): valid and invalid inputs alike,
as an admin, must never produce a server error."""

import requests
import schemathesis
from hypothesis import HealthCheck, reject, settings

from api.main import app

schema = schemathesis.openapi.from_dict(app.openapi())  # from the app object: no request, no start-up
REQUEST_FIELDS = ("method", "url", "params", "headers", "data", "files", "json", "cookies")


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_operation_answers_with_a_server_error(case, admin):
    kwargs = case.as_transport_kwargs(base_url=str(admin.base_url))
    try:  # encoded as bytes on the wire, as any HTTP client would send them
        wire = requests.Request(**{k: v for k, v in kwargs.items() if k in REQUEST_FIELDS}).prepare()
    except (TypeError, ValueError, AttributeError):
        reject()  # no HTTP client could send this example
    headers = {k: v for k, v in wire.headers.items() if k.lower() not in {"authorization", "x-api-key"}}
    # Sent through the suite's client: the app it started (database, models) serves the generated requests.
    response = admin.request(wire.method or "GET", wire.url or "", content=wire.body, headers=headers)
    assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.text}"
