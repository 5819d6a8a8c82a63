"""Sign-in with OpenID Connect in Chromium: the app as a public client of a real OpenID provider
(npm oidc-provider, started here), authorization code with PKCE, against a `make run` stack whose
API verifies the provider's access tokens (its JWKS, issuer and audience) and has no development
secret at all."""

from __future__ import annotations

import shutil
import time
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import HERE, _collect_errors
from tests.support import processes
from tests.support.http import free_port as _free_port
from tests.support.local_stack import running_stack

AUDIENCE = "https://api.dueflow.test"  # a resource indicator: an absolute URI


@pytest.fixture(scope="module")
def oidc_stack(tmp_path_factory):
    """(app base URL, issuer): the stack, then the provider redirecting back to the stack's app."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is needed for the OpenID provider (make test installs Debian's npm)")
    tmp = tmp_path_factory.mktemp("oidc")
    issuer = f"http://127.0.0.1:{_free_port()}"
    env = {
        "DUEFLOW_METRICS_PORT": "0",
        "DUEFLOW_JWKS_URL": f"{issuer}/jwks",
        "DUEFLOW_JWT_ISSUER": issuer,
        "DUEFLOW_JWT_AUDIENCE": AUDIENCE,
        "DUEFLOW_OIDC_ISSUER": issuer,
        "DUEFLOW_OIDC_CLIENT_ID": "dueflow-web",
        "DUEFLOW_OIDC_SCOPE": "openid email tasks",
    }
    with running_stack(tmp, **env) as (base, _, _):
        log = tmp / "oidc-provider.log"
        with open(log, "wb") as out:
            provider = processes.start(
                [
                    node,
                    str(HERE / "oidc_provider.mjs"),
                    issuer.rsplit(":", 1)[1],
                    f"{base}/",
                    AUDIENCE,
                ],
                stdout=out,
                stderr=out,
            )
        try:
            deadline = time.monotonic() + 60
            while b"ready" not in log.read_bytes():
                if provider.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"oidc-provider did not start:\n{log.read_text()}")
                time.sleep(0.2)
            yield base, issuer
        finally:
            processes.stop(provider)


def test_sign_in_with_openid_connect_code_and_pkce(oidc_stack, browser):
    base, issuer = oidc_stack
    context = browser.new_context()
    page = context.new_page()
    errors = _collect_errors(page)
    page.goto(f"{base}/")
    expect(page.get_by_label("User name")).to_be_hidden()  # no development sign-in here
    with page.expect_request(lambda r: r.url.startswith(f"{issuer}/auth")) as authorize:
        page.get_by_role("button", name="Sign in with OpenID Connect").click()
    query = parse_qs(urlsplit(authorize.value.url).query)
    assert query["response_type"] == ["code"] and query["code_challenge_method"] == ["S256"]
    assert query["client_id"] == ["dueflow-web"] and query["redirect_uri"] == [f"{base}/"]
    page.locator("input[name=login]").fill("olivia")
    page.locator("input[name=password]").fill("any")
    page.get_by_role("button", name="Sign-in").click()
    page.get_by_role("button", name="Continue").click()  # the provider's consent page

    page.wait_for_url(f"{base}/")
    expect(page.get_by_text("Signed in as olivia@example.com")).to_be_visible()
    assert "code=" not in page.url, "the code leaves the address bar"
    page.get_by_label("Quick add").fill("Renew passport next month #admin")
    page.get_by_role("button", name="Add", exact=True).click()
    expect(page.get_by_role("button", name="Edit Renew passport")).to_be_visible()
    assert page.evaluate("localStorage.length") == 0, "tokens stay out of localStorage"
    token = page.evaluate("sessionStorage.getItem('dueflow.token')")
    assert token and token.count(".") == 2, "the provider's JWT access token, for this tab"
    assert not errors, errors
    context.close()
