"""/docs and /redoc render in headless Chromium with no network beyond the service (the `page` fixture refuses
every other request and fails the test if one is tried): their assets come from the service itself. Leaves
screenshots in test-artifacts/."""

import pytest
from playwright.sync_api import expect

from tests.support import REPO

pytestmark = pytest.mark.browser

ARTIFACTS = REPO / "test-artifacts"


def test_swagger_ui_lists_the_operations_offline(live_server, page):
    page.goto(f"{live_server}/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("FaceGate")
    identify = page.locator("#operations-recognition-identify")
    expect(identify).to_contain_text("/v1/identify")
    expect(page.locator("#operations-members-members-create")).to_contain_text("/v1/members")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "docs-swagger-ui.png"))


def test_redoc_lists_the_operations_offline(live_server, page):
    page.goto(f"{live_server}/redoc")
    expect(page.locator("h1")).to_contain_text("FaceGate")
    expect(page.locator("[data-section-id='operation/identify']")).to_contain_text("/v1/identify")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "docs-redoc.png"))
