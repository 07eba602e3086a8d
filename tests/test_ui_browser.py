"""The web UI in Debian's Chromium against the real API, worker, Redis, engine and registry."""

from __future__ import annotations

import os
import re
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import docker
import httpx
import pytest
import uvicorn
from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright
from redis import Redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests import testbed
from tests.engine_helpers import inspect, run_app, served_version
from tests.stack import REPO, Stack
from worker.joblog import JobLog

pytestmark = [pytest.mark.browser, pytest.mark.docker]

ARTIFACTS = REPO / "test-artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--headless", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PHONE = {"width": 375, "height": 812}
DESKTOP = {"width": 1280, "height": 800}
UPDATE_TIMEOUT_MS = 90_000


@dataclass
class FakeGitHub:
    """GitHub's commit list for the updater's repository, newest first."""

    commits: list[str] = field(default_factory=list)
    url: str = ""

    async def list_commits(self, request: Request) -> JSONResponse:
        return JSONResponse([{"sha": sha} for sha in self.commits])


@pytest.fixture
def github(images: testbed.TestImages) -> Iterator[FakeGitHub]:
    """The newest commit on main is the one v2 was built from, so v2 is the newest image."""
    fake = FakeGitHub(commits=[images.tags["v2"].removeprefix("main-") + "0" * 33])
    app = Starlette(routes=[Route("/repos/{owner}/{repo}/commits", fake.list_commits)])
    port = testbed.free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", lifespan="off",
                                           ws="none"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    testbed.wait_for(lambda: server.started, what="fake GitHub")
    fake.url = f"http://127.0.0.1:{port}"
    yield fake
    server.should_exit = True
    thread.join(10)


@dataclass
class App:
    name: str
    port: int


@pytest.fixture
def target(docker_client: docker.DockerClient, images: testbed.TestImages, docker_names: testbed.Names) -> App:
    name = docker_names("hmm-local")
    _, port = run_app(docker_client, images.ref("v1"), name, docker_names.labels)
    return App(name, port)


@pytest.fixture
def stack(redis_url: str, tmp_path: Path, target: App, github: FakeGitHub) -> Iterator[Stack]:
    s = Stack(redis_url, tmp_path, env={"TARGET_CONTAINER": target.name, "GITHUB_API_URL": github.url})
    yield s
    s.stop()


def start(stack: Stack, *names: str, **worker_env: str) -> None:
    stack.start_api()
    stack.start_worker(**worker_env)
    token = stack.env.get("UPDATER_API_TOKEN")
    auth = {"Authorization": f"Bearer {token}"} if token else {}

    def listed() -> set[str]:
        return {c["name"] for c in httpx.get(f"{stack.url}/containers", headers=auth).json()["containers"]}

    testbed.wait_for(lambda: stack.get("/health").json()["workers"] == 1, what="a live worker")
    testbed.wait_for(lambda: listed() >= set(names), what="the containers in the inventory")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@dataclass
class Console:
    errors: list[str] = field(default_factory=list)

    def __call__(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)


@pytest.fixture
def console() -> Console:
    return Console()


def open_page(browser: Browser, console: Console, url: str, viewport: dict[str, int]) -> Page:
    page = browser.new_page(viewport=viewport)  # type: ignore[arg-type]
    page.on("console", console)
    page.on("pageerror", lambda error: console.errors.append(f"uncaught: {error}"))
    page.goto(url)
    expect(page.locator("#log-state")).to_have_text("Live")
    return page


def screenshot(page: Page, name: str, full_page: bool = True) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.mouse.move(0, 0)  # no hover highlight in the picture
    page.screenshot(path=str(ARTIFACTS / name), full_page=full_page, animations="disabled")


def log_lines(page: Page, text: str) -> int:
    return page.locator("#log .log-line", has_text=text).count()


def logged(redis_url: str, text: str) -> bool:
    """Whether the worker has published a log line containing `text`, whether or not anyone relayed it."""
    client = Redis.from_url(redis_url)
    try:
        return any(text in entry["message"] for entry in JobLog(client, echo=False).history(limit=1000))
    finally:
        client.close()


def test_update_the_target_from_the_page(browser: Browser, console: Console, stack: Stack, target: App,
                                         images: testbed.TestImages, docker_client: docker.DockerClient) -> None:
    start(stack, target.name)
    page = open_page(browser, console, stack.url, DESKTOP)
    expect(page.locator("#target-title")).to_have_text(target.name)
    expect(page.locator("#target-latest")).to_contain_text(f"Newer image available: {images.tags['v2']}")

    update = page.get_by_role("button", name="Update HMM-Local Container")
    update.focus()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name=f"Update {target.name}?")
    expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()  # the safe choice is the default
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(update).to_be_enabled()

    update.click()
    expect(dialog).to_contain_text(images.ref("v1"))
    expect(dialog).to_contain_text(images.ref("v2"))
    dialog.get_by_role("button", name="Recreate container").click()

    expect(page.locator("#target-progress")).to_be_visible()
    banner = page.locator("#banner")
    expect(banner).to_contain_text(f"{target.name} updated", timeout=UPDATE_TIMEOUT_MS)
    for step in ("Pulling", "Stopping", "Creating", "Checking health", "Update completed successfully"):
        expect(page.locator("#log .log-line", has_text=step).first).to_be_visible()
    new_id = inspect(docker_client, target.name)["Id"]
    expect(banner).to_contain_text(new_id[:12])
    expect(banner).to_contain_text(images.ref("v2"))
    assert served_version(target.port) == "2"
    expect(page.locator("#target-latest")).to_contain_text("Up to date", timeout=30_000)
    expect(page.locator("#target-tag")).to_have_text(images.tags["v2"])
    job_row = page.locator("#jobs .job-row").first
    expect(job_row).to_contain_text("Succeeded")
    expect(job_row).to_contain_text(f"{images.tags['v1']} → {images.tags['v2']}")
    screenshot(page, "desktop-success.png")
    page.emulate_media(color_scheme="dark")
    screenshot(page, "desktop-success-dark.png")
    page.emulate_media(color_scheme="light")

    job_row.click()
    job_dialog = page.get_by_role("dialog", name=f"Succeeded: {target.name}")
    expect(job_dialog.locator(".log-line", has_text="Pulling")).to_be_visible()
    expect(job_dialog).to_contain_text(new_id[:12])
    screenshot(page, "desktop-job-log.png", full_page=False)
    job_dialog.get_by_role("button", name="Close").click()
    expect(job_dialog).to_be_hidden()
    assert console.errors == []


def test_a_failed_update_shows_the_error_and_the_rollback_on_a_phone(
        browser: Browser, console: Console, stack: Stack, target: App, images: testbed.TestImages,
        docker_client: docker.DockerClient, docker_names: testbed.Names) -> None:
    other = App(docker_names("other"), 0)
    _, other.port = run_app(docker_client, images.ref("v1"), other.name, docker_names.labels)
    start(stack, target.name, other.name)
    page = open_page(browser, console, stack.url, PHONE)
    screenshot(page, "phone-idle.png")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    page.get_by_role("button", name=f"Update {other.name}").click()
    dialog = page.get_by_role("dialog", name=f"Update {other.name}?")
    dialog.get_by_label("Image override").fill(images.ref("broken"))
    expect(dialog.locator("#confirm-new")).to_have_text(images.ref("broken"))
    screenshot(page, "phone-confirm.png", full_page=False)
    dialog.get_by_role("button", name="Recreate container").click()

    banner = page.locator("#banner")
    expect(banner).to_contain_text(f"Update of {other.name} failed", timeout=UPDATE_TIMEOUT_MS)
    expect(banner).to_contain_text(f"rolled back to {images.ref('v1')}")
    expect(banner.locator(".banner-rollback")).to_contain_text(f"{other.name} runs {images.ref('v1')} again")
    expect(page.locator("#log .log-line[data-level=ERROR]").first).to_be_visible()
    expect(page.locator("#log .log-line[data-level=WARNING]", has_text="Rolling back")).to_be_visible()
    expect(page.locator("#jobs .job-row").first).to_contain_text("Failed")
    assert served_version(other.port) == "1"
    assert inspect(docker_client, other.name)["Config"]["Image"] == images.ref("v1")
    assert inspect(docker_client, target.name)["Config"]["Image"] == images.ref("v1")
    banner.scroll_into_view_if_needed()
    screenshot(page, "phone-failure.png")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert console.errors == []


def test_the_page_reconnects_after_an_api_restart_and_shows_what_it_missed(
        browser: Browser, console: Console, stack: Stack, target: App, images: testbed.TestImages) -> None:
    # A longer health gate leaves time to take the API down in the middle of the update.
    start(stack, target.name, UPDATER_SETTLE_SECONDS="5")
    api = stack.processes[0]
    page = open_page(browser, console, stack.url, PHONE)
    page.get_by_role("button", name="Update HMM-Local Container").click()
    page.get_by_role("dialog").get_by_role("button", name="Recreate container").click()
    expect(page.locator("#log .log-line", has_text="Checking health")).to_be_visible(timeout=UPDATE_TIMEOUT_MS)

    os.killpg(api.pid, signal.SIGKILL)
    api.wait()
    expect(page.locator("#log-state")).to_contain_text("Reconnecting")
    testbed.wait_for(lambda: logged(stack.redis_url, "Update completed successfully"), timeout=60,
                     what="the update to finish")
    assert served_version(target.port) == "2"
    assert log_lines(page, "Update completed successfully") == 0, "the API was down: the page cannot know yet"
    log = page.locator("#log")
    log.evaluate("list => { list.scrollTop = 0; }")  # the reader scrolls up: the log must stay there

    stack._spawn("api", "api-restarted", {})  # same port: the page reconnects to where it was
    expect(page.locator("#log-state")).to_have_text("Live", timeout=30_000)
    expect(page.locator("#log .log-line", has_text="Update completed successfully")).to_have_count(1)
    expect(page.locator("#log .log-divider")).to_contain_text("Reconnected")
    assert log_lines(page, "Checking health") == 1, "replayed lines must not show twice"
    assert log_lines(page, "Pulling") == 1
    expect(page.locator("#banner")).to_contain_text(f"{target.name} updated", timeout=30_000)
    follow = page.get_by_role("button", name=re.compile(r"\d+ new lines?"))
    expect(follow).to_be_visible()
    assert log.evaluate("list => list.scrollTop") == 0
    follow.click()
    expect(follow).to_be_hidden()
    assert log.evaluate("list => list.scrollHeight - list.scrollTop - list.clientHeight") < 24
    screenshot(page, "phone-reconnected.png")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    # While the API was down the browser reported refused connections; nothing else may go wrong.
    unexpected = [e for e in console.errors if not re.search(r"ERR_CONNECTION_REFUSED|WebSocket connection", e)]
    assert unexpected == []


def test_the_page_asks_for_the_token_once_and_keeps_it(browser: Browser, console: Console, stack: Stack,
                                                       target: App, images: testbed.TestImages) -> None:
    stack.env["UPDATER_API_TOKEN"] = token = "s3cret-for-the-browser-test"
    start(stack, target.name)
    assert httpx.get(f"{stack.url}/containers").status_code == 401
    page = browser.new_page(viewport=DESKTOP)
    page.on("console", console)
    page.goto(stack.url)

    prompt = page.get_by_role("dialog", name="Access token")
    prompt.get_by_label("Token").fill("wrong")
    prompt.get_by_role("button", name="Save token").click()
    expect(prompt.get_by_role("alert")).to_have_text("That token was not accepted.")
    prompt.get_by_label("Token").fill(token)
    prompt.get_by_role("button", name="Save token").click()

    expect(prompt).to_be_hidden()
    expect(page.locator("#log-state")).to_have_text("Live")
    expect(page.locator("#target-tag")).to_have_text(images.tags["v1"])
    assert page.evaluate("localStorage.getItem('hmm-updater-token')") == token
    page.reload()
    expect(page.locator("#target-tag")).to_have_text(images.tags["v1"])
    expect(page.locator("#log-state")).to_have_text("Live")
    expect(prompt).to_be_hidden()
    # The refusals of the wrong token: 401 answers, and the WebSocket handshake refused
    # ("HTTP Authentication failed" in Chromium's words).
    assert [e for e in console.errors if "401" not in e and "token=wrong" not in e] == []
