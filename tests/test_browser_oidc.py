"""Signing in with an OpenID Connect provider (`st.login`), in a real headless Chromium.

The app listens on every interface (0.0.0.0: reachable from a network) with an [auth] provider
in its secrets file: tests/oidc_provider.py, a real provider on 127.0.0.1 whose keys, codes
and RS256 id_tokens the app's Authlib verifies itself. FACEMASK_OPERATOR_EMAILS names
op@example.org. One browser is a visitor who cannot touch the trainings, signs in at the
provider as op@example.org, cancels a training, signs out and is a visitor again; another signs
in as someone@else.org and stays read-only, as does a listed address the provider did not verify.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
import test_browser_e2e as e2e
from oidc_provider import Provider
from test_browser_operator import (
    RUNNING,
    TRAIN_TAB_TEXT,
    buttons,
    no_error,
    open_training,
    partial_run,
    stand_in_trainer,
)

from harness import browser as harness

pytestmark = pytest.mark.browser
launch_browser = e2e.launch_browser
OPERATOR, OTHER = "op@example.org", "someone@else.org"
LOOK_ONLY = "you may look, not change anything."


def write_secrets(path: Path, provider: Provider) -> Path:
    """The operator's .streamlit/secrets.toml for this provider; `{port}` is the app's port."""
    path.write_text(
        "[auth]\n"
        'redirect_uri = "http://127.0.0.1:{port}/oauth2callback"\n'
        f'cookie_secret = "{secrets.token_urlsafe(32)}"\n'
        f'client_id = "{provider.client_id}"\n'
        f'client_secret = "{provider.client_secret}"\n'
        f'server_metadata_url = "{provider.metadata_url}"\n'
    )
    return path


def sidebar(page):
    return page.locator('[data-testid="stSidebar"]')


def sign_in(page, base: str, email: str) -> None:
    """Sign in from the sidebar: the provider's page, its one field, back to the app."""
    sidebar(page).get_by_role("button", name="Sign in", exact=True).click()
    page.get_by_label("E-mail address").fill(email)  # the provider's own page
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(f"{base}/**")
    e2e._wait_until_idle(page)


def test_the_operator_signs_in_with_the_provider_and_nobody_else_is_one(
    tmp_path: Path, launch_browser
) -> None:
    trainer = stand_in_trainer(RUNNING)
    partial_run(tmp_path / "app" / "runs", RUNNING, trainer.pid)
    env = {
        "FACEMASK_OPERATOR_EMAILS": OPERATOR,
        "FACEMASK_OPERATOR_PASSWORD": "",
        "NO_PROXY": "127.0.0.1",
        "no_proxy": "127.0.0.1",
    }
    try:
        with Provider() as provider:
            options = ("--secrets.files", str(write_secrets(tmp_path / "secrets.toml", provider)))
            work = tmp_path / "app"
            model = e2e.SHIPPED_MODEL
            with harness.start_app(work, model, address="0.0.0.0", options=options, **env) as app:
                provider.redirect_uris.add(f"{app.base}/oauth2callback")
                page = launch_browser(None)

                # (a) a visitor: a Sign in button, no training controls
                open_training(page, app.base)
                sidebar(page).get_by_text(
                    "Reachable from a network: the operator signs in."
                ).wait_for()
                assert buttons(page, "Sign in") == 1
                assert page.get_by_label("Operator password").count() == 0
                assert page.get_by_text(TRAIN_TAB_TEXT).count() >= 1
                for name in ("Cancel the training", "Start training"):
                    assert buttons(page, name) == 0, name

                # (b) op@example.org signs in at the provider: this session is the operator
                sign_in(page, app.base, OPERATOR)
                assert provider.sign_ins == [OPERATOR]
                sidebar(page).get_by_text(f"Signed in as {OPERATOR}: operator.").wait_for()
                open_training(page, app.base)
                page.get_by_role("button", name="Cancel the training").click()
                e2e._wait_for("the training to get SIGTERM", lambda: trainer.poll() is not None, 30)
                assert trainer.returncode == -15
                start = page.get_by_role("button", name="Start training", exact=True)
                e2e._wait_for("the training form", lambda: start.count() == 1, 30)
                no_error(page)
                sidebar(page).get_by_text(
                    f"Signed in as {OPERATOR}: operator."
                ).scroll_into_view_if_needed()
                e2e._screenshot(page, "oidc-operator")

                # (d) signing out: a visitor again (and signed out at the provider too)
                sidebar(page).get_by_role("button", name="Sign out").click()
                sidebar(page).get_by_role("button", name="Sign in", exact=True).wait_for()
                assert provider.sign_outs == 1
                open_training(page, app.base)
                assert buttons(page, "Start training") == 0
                assert page.get_by_text(TRAIN_TAB_TEXT).count() >= 1

                # (c) someone the provider knows but the server does not list: read-only
                other = launch_browser(None)
                other.goto(app.base, wait_until="domcontentloaded")
                e2e._wait_until_idle(other)
                sign_in(other, app.base, OTHER)
                told = f"Signed in as {OTHER}, who is not an operator here: {LOOK_ONLY}"
                sidebar(other).get_by_text(told).wait_for()
                open_training(other, app.base)
                assert buttons(other, "Start training") == 0
                assert other.get_by_text(told).count() == 2  # the sidebar and the Train tab
                sidebar(other).get_by_text(told).scroll_into_view_if_needed()
                e2e._screenshot(other, "oidc-not-operator")

                # ... and the operator's address, when the provider did not verify it
                provider.unverified.add(OPERATOR)
                sidebar(other).get_by_role("button", name="Sign out").click()
                sign_in(other, app.base, OPERATOR)
                told = f"Signed in as {OPERATOR}, an address the provider has not verified"
                sidebar(other).get_by_text(told).wait_for()
                open_training(other, app.base)
                assert buttons(other, "Start training") == 0
                no_error(other)
    finally:
        trainer.kill()
        trainer.wait()
