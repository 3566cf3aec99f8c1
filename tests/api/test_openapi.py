"""The published API description: stable operation ids and tags, the committed docs/openapi.json, and docs pages
that load nothing from outside the service."""

import re

from cli import main
from tests.support import REPO

COMMITTED = REPO / "docs" / "openapi.json"
OPERATION_ID = re.compile(r"^[a-z]+(-[a-z]+)*$")


def test_committed_openapi_json_is_the_apps(tmp_path):
    exported = tmp_path / "openapi.json"
    main(["openapi", "--out", str(exported)])
    assert exported.read_text() == COMMITTED.read_text(), (
        "docs/openapi.json differs from the app's schema: run `facegate openapi` and commit the result"
    )


def test_every_operation_has_a_readable_id_and_one_tag(anonymous):
    schema = anonymous.get("/openapi.json").json()
    operations = [op for path in schema["paths"].values() for op in path.values()]
    ids = [op["operationId"] for op in operations]
    assert all(OPERATION_ID.match(i) for i in ids), ids
    assert len(set(ids)) == len(ids)
    assert all(len(op["tags"]) == 1 for op in operations), [(op["operationId"], op["tags"]) for op in operations]
    assert {"members-create", "members-list", "faces-add", "identify", "verify", "detect", "review-verdict"} <= set(ids)


def test_docs_pages_use_only_the_services_own_assets(anonymous):
    for page in ("/docs", "/redoc"):
        html = anonymous.get(page).text
        linked = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert linked and all(url.startswith("/docs/assets/") for url in linked), (page, linked)
        assert "fonts.googleapis" not in html and "cdn" not in html
        for url in linked:
            asset = anonymous.get(url)
            assert asset.status_code == 200 and len(asset.content) > 1000, url
