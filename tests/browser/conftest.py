"""The browser tests: the web app in real headless Chromium (Debian's, tests/support/chromium.py),
driven by Playwright's Python package, against the stack `make run` starts (the front door on
PORT: the app and the API on one origin). axe-core and oidc-provider come from npm
(tests/browser/package-lock.json; `make test` runs npm ci here)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Page, sync_playwright

from dueflow.config import DEV_JWT_SECRET
from tests.conftest import ROOT, token
from tests.support.chromium import ensure_chromium
from tests.support.local_stack import running_stack

HERE = Path(__file__).resolve().parent
NODE_MODULES = HERE / "node_modules"
# Every run takes the screenshots; they replace the README's (docs/screenshots/, tracked) only
# when asked (DUEFLOW_UPDATE_SCREENSHOTS=1), so a test run leaves the tree as it found it.
SCREENSHOTS = (
    ROOT / "docs" / "screenshots"
    if os.environ.get("DUEFLOW_UPDATE_SCREENSHOTS") == "1"
    else ROOT / ".dueflow" / "screenshots"
)


def pytest_collection_modifyitems(items):
    for item in items:
        if Path(str(item.fspath)).parent == HERE:
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.e2e)


def _need_npm_tools() -> None:
    if not (NODE_MODULES / "axe-core" / "axe.min.js").is_file():
        pytest.fail(
            "tests/browser/node_modules is missing: run `make browser-tools` (make test does)"
        )


# Package scope: Playwright's sync API keeps an event loop running in this thread while it is
# open, and the e2e tests after this package call asyncio.run (the MCP client).
@pytest.fixture(scope="package")
def browser():
    _need_npm_tools()
    executable = ensure_chromium()
    with sync_playwright() as playwright:
        # --no-sandbox: Chromium's sandbox needs user namespaces, which containers (and root)
        # often lack; the pages are our own.
        chromium = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """The `make run` stack; yields the one origin's base URL (the front door on PORT)."""
    tmp = tmp_path_factory.mktemp("browser")
    with running_stack(tmp, DUEFLOW_REMINDER_TICK="1", DUEFLOW_METRICS_PORT="0") as (base, _, _):
        page = requests.get(f"{base}/", timeout=10)
        assert page.status_code == 200 and "text/html" in page.headers["Content-Type"], (
            "the front door serves the web app at /"
        )
        yield base


@pytest.fixture
def page(browser, request):
    """A fresh browser context (its own sessionStorage) at 1000 x 900; console errors and page
    errors other than failed network requests fail the test."""
    context = browser.new_context(viewport={"width": 1000, "height": 900})
    context.set_default_timeout(20_000)
    tab = context.new_page()
    errors = _collect_errors(tab)
    yield tab
    context.close()
    assert not errors, errors


def _collect_errors(tab: Page) -> list[str]:
    errors: list[str] = []
    tab.on("pageerror", lambda e: errors.append(f"page error: {e}"))

    def console(message) -> None:
        # a failed request (404 of /live/tickets without a live function, 422 shown to the user)
        # is logged by the browser itself; anything else logged as an error is the app's fault
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            errors.append(f"console: {message.text}")

    tab.on("console", console)
    return errors


def bearer(user: str) -> dict:
    return {
        "Authorization": f"Bearer {token(user, email=f'{user}@example.com', secret=DEV_JWT_SECRET)}"
    }


def api(base: str, user: str, method: str, path: str, body: object = None) -> dict | None:
    response = requests.request(
        method, f"{base}{path}", json=body, headers=bearer(user), timeout=30
    )
    assert response.status_code < 300, (response.status_code, response.text)
    return response.json() if response.content else None


def sign_in(page: Page, base: str, user: str) -> None:
    page.goto(f"{base}/")
    page.get_by_label("User name").fill(user)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.get_by_label("Quick add").wait_for()


def screenshot(page: Page, name: str, **options) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / name, animations="disabled", caret="hide", **options)


def axe_violations(page: Page, *impacts: str) -> list[dict]:
    """axe-core's violations of the page as it is now, of the given impacts."""
    # evaluated through the DevTools protocol: the page's CSP (no inline script) stays on
    page.evaluate((NODE_MODULES / "axe-core" / "axe.min.js").read_text())
    result = page.evaluate("async () => await axe.run(document)")
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in result["violations"]
        if v["impact"] in impacts
    ]


def dump(value: object) -> str:
    return json.dumps(value, indent=1)[:4000]
