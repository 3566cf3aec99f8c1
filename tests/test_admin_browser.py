"""A person's walk through /admin in headless Chromium: sign in, open a false match, mark it, and the impostor
no longer matches that member. Leaves a screenshot of the review page in test-artifacts/."""

import socket
import threading
import time

import pytest
import uvicorn
from playwright.sync_api import expect, sync_playwright

from tests.conftest import REPO, lfw_photo, upload

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = REPO / "test-artifacts"


@pytest.fixture
def live_server(anonymous):
    """The same application over real HTTP for the browser (its models and database are already set up)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(anonymous.app, host="127.0.0.1", port=port, lifespan="off",
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started:
        assert time.time() < deadline, "the server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.fixture
def browser_page():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 1000})
        yield page
        browser.close()


def identify_impostor(client) -> dict:
    response = client.post("/v1/identify", files=upload(lfw_photo("Arnold_Schwarzenegger", 1)),
                           params={"threshold": 1.6})
    (face,) = response.json()["faces"]
    return face


def test_reviewer_marks_a_false_match_in_the_browser(client, admin_key, live_server, browser_page):
    for person in ("Bill_Gates", "Angelina_Jolie"):
        response = client.post("/v1/members", data={"external_id": person, "display_name": person.replace("_", " ")},
                               files=[("file", (f"{n}.jpg", lfw_photo(person, n), "image/jpeg")) for n in (1, 2)])
        assert response.status_code == 201, response.text
    face = identify_impostor(client)
    victim = face["match"]
    assert victim is not None

    page = browser_page
    page.goto(f"{live_server}/admin")
    expect(page).to_have_url(f"{live_server}/admin/login")
    page.fill("#api_key", "fg_wrong")
    page.click("button[type=submit]")
    expect(page.locator(".error")).to_contain_text("not an active admin API key")

    page.fill("#api_key", admin_key)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Review queue")
    row = page.locator("tr", has_text=victim["display_name"])
    expect(row).to_contain_text("match")
    row.get_by_role("link", name="Open").click()

    expect(page.locator("figure.probe img")).to_be_visible()
    expect(page.locator("figure img")).to_have_count(3)  # the probe beside the member's two enrolled faces
    page.check("input[name=verdict][value=false_match]")
    page.fill("input[name=note]", "a different man")
    page.click("text=Save verdict")
    expect(page.locator(".notice")).to_have_text("Verdict saved: false_match.")
    expect(page.locator("h1")).to_contain_text("false_match")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "review-page.png"), full_page=True)

    page.click("text=Blacklist")
    expect(page.locator("table")).to_contain_text(victim["display_name"])
    expect(page.locator("table")).to_contain_text("a different man")

    again = identify_impostor(client)
    assert again["match"] is None or again["match"]["member_id"] != victim["member_id"]
    assert next(c for c in again["candidates"] if c["member_id"] == victim["member_id"])["blacklisted"]
