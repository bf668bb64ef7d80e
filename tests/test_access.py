"""Who is the operator: the listening address, the configured sign-in, and the password's limits."""

from __future__ import annotations

import pytest

from facemask import access
from facemask.access import Mode, PasswordGate, SessionAttempts


@pytest.mark.parametrize(
    ("address", "local"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("", False),  # Streamlit's default: every interface
        (None, False),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.20", False),
        ("example.org", False),
    ],
)
def test_only_loopback_addresses_are_local(address, local) -> None:
    assert access.is_loopback(address) is local


def test_the_mode_follows_the_address_and_what_is_configured() -> None:
    mode = access.access_mode
    assert (
        mode("127.0.0.1", oidc_configured=True, password="x", require_sign_in=False) is Mode.LOCAL
    )
    assert mode("127.0.0.1", False, "x", require_sign_in=True) is Mode.PASSWORD  # behind a proxy
    assert mode("0.0.0.0", True, "x", require_sign_in=False) is Mode.OIDC
    assert mode("0.0.0.0", False, "secret", require_sign_in=False) is Mode.PASSWORD
    assert mode("0.0.0.0", False, "", require_sign_in=False) is Mode.CLOSED
    assert mode(None, False, "", require_sign_in=False) is Mode.CLOSED


def test_the_environment_sets_the_password_and_the_proxy_switch(monkeypatch) -> None:
    monkeypatch.setenv(access.PASSWORD_ENV, "pw")
    monkeypatch.setenv(access.REQUIRE_SIGN_IN_ENV, "1")
    assert access.access_mode("127.0.0.1", False) is Mode.PASSWORD
    monkeypatch.delenv(access.PASSWORD_ENV)
    assert access.access_mode("127.0.0.1", False) is Mode.CLOSED


def test_oidc_operators_are_listed_verified_addresses_or_nobody_is(monkeypatch) -> None:
    def user(email, verified=True, allowed="x@y.org, a@b.org"):
        claims = {"sub": "123", "email": email, "email_verified": verified}
        return access.oidc_user(claims, allowed=allowed)

    assert user("A@B.org").ok
    assert user("A@B.org").message == "Signed in as A@B.org: operator."
    assert user("a@b.org", verified="true").ok  # some providers send a string
    assert not user("a@b.org", allowed="").ok
    assert "lists no operators (FACEMASK_OPERATOR_EMAILS)" in user("a@b.org", allowed="").message
    other = user("c@b.org")
    assert not other.ok
    assert other.message == "Signed in as c@b.org, who is not an operator here: " + (
        "you may look, not change anything."
    )
    assert not user(None).ok
    assert "gave no e-mail address" in user(None).message
    for unverified in (False, "false", None):  # a listed address nobody verified is anyone's
        refused = user("a@b.org", verified=unverified)
        assert not refused.ok
        assert "not verified" in refused.message
    assert access.oidc_user({"sub": "anyone"}, allowed="*").ok
    monkeypatch.setenv(access.OPERATORS_ENV, "a@b.org")
    assert access.oidc_user({"email": "a@b.org", "email_verified": True}).ok


def test_the_providers_st_login_can_use_come_from_the_auth_section() -> None:
    keys = {"client_id": "id", "client_secret": "s", "server_metadata_url": "https://x/"}
    top = {"redirect_uri": "http://h:8501/oauth2callback", "cookie_secret": "c", **keys}
    assert access.oidc_providers(top) == ["default"]
    named = {"redirect_uri": "u", "cookie_secret": "c", "google": keys, "okta": keys}
    assert access.oidc_providers(named) == ["google", "okta"]
    assert access.oidc_providers({**named, "default": keys}) == ["default", "google", "okta"]
    assert access.oidc_providers({"redirect_uri": "u", "client_kwargs": {"prompt": "x"}}) == []


@pytest.mark.parametrize(
    ("uri", "problem"),
    [
        ("http://192.168.1.20:8501/oauth2callback", None),
        ("https://masks.example.org/app/oauth2callback", None),
        (None, None),  # missing: Streamlit's own check says so
        ("http://192.168.1.20:8501/", "must end with /oauth2callback"),
        ("/oauth2callback", "is not an absolute http(s) URL"),
        ("ftp://h/oauth2callback", "is not an absolute http(s) URL"),
    ],
)
def test_the_redirect_uri_must_reach_streamlits_callback(uri, problem) -> None:
    found = access.redirect_uri_problem(uri)
    assert (found is None) if problem is None else (problem in found)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_right_password_signs_in_and_a_wrong_one_is_counted() -> None:
    gate = PasswordGate("correct horse", clock=Clock())
    session = SessionAttempts()
    wrong = gate.try_password("wrong", session)
    assert not wrong.ok and "4 tries left" in wrong.message and session.failures == 1
    assert gate.try_password("correct horse", session).ok
    assert not gate.try_password("", SessionAttempts()).ok
    assert not gate.try_password("correct horse\x00", SessionAttempts()).ok
    assert not gate.try_password("\udcff", SessionAttempts()).ok  # undecodable input is no crash


def test_a_session_gets_a_few_tries_then_none() -> None:
    clock = Clock()
    gate = PasswordGate("pw", clock=clock)
    session = SessionAttempts()
    for _ in range(access.SESSION_ATTEMPTS):
        clock.now += access.MAX_BACKOFF_S + 1  # no server-wide wait: only the session limit
        assert not gate.try_password("nope", session).ok
    clock.now += access.MAX_BACKOFF_S + 1
    closed = gate.try_password("pw", session)  # even the right one: this session is done
    assert not closed.ok and "sign-in is closed" in closed.message
    assert gate.try_password("pw", SessionAttempts()).ok


def test_failures_across_sessions_make_the_whole_server_wait_longer() -> None:
    clock = Clock()
    gate = PasswordGate("pw", clock=clock)
    for _ in range(access.FREE_FAILURES):  # new sessions, as an attacker would open
        assert "tries left" in gate.try_password("guess", SessionAttempts()).message
    assert gate.wait_s() == pytest.approx(access.BACKOFF_S)
    refused = gate.try_password("pw", SessionAttempts())  # even the right one waits
    assert not refused.ok and "try again in" in refused.message
    clock.now += access.BACKOFF_S
    assert not gate.try_password("guess", SessionAttempts()).ok
    assert gate.wait_s() == pytest.approx(2 * access.BACKOFF_S)  # doubled
    for _ in range(20):
        clock.now += gate.wait_s()
        gate.try_password("guess", SessionAttempts())
    assert gate.wait_s() == pytest.approx(access.MAX_BACKOFF_S)  # capped
    clock.now += access.FORGET_AFTER_S + 1
    assert gate.wait_s() == 0 and gate.try_password("pw", SessionAttempts()).ok


# -- the [auth] section as the app reads it (ui._oidc, Streamlit's own secrets loader) ------
AUTH = """[auth]
redirect_uri = "http://192.168.1.20:8501/oauth2callback"
cookie_secret = "a long random string, not this one"
"""
PROVIDER_KEYS = """client_id = "facemask"
client_secret = "s3cret"
server_metadata_url = "https://id.example.org/.well-known/openid-configuration"
"""


@pytest.fixture
def secrets_toml(tmp_path):
    """`read(text)`: ui._oidc() with `text` as the app's only secrets file."""
    from streamlit import config
    from streamlit.runtime.secrets import secrets_singleton

    import ui

    path = tmp_path / "secrets.toml"
    saved = config.get_option("secrets.files")
    config.set_option("secrets.files", [str(path)])

    def read(text: str | None):
        if text is None:
            path.unlink(missing_ok=True)
        else:
            path.write_text(text)
        secrets_singleton._reset()
        return ui._oidc()

    yield read
    config.set_option("secrets.files", saved)
    secrets_singleton._reset()


def test_the_app_finds_its_providers_or_says_why_it_cannot(secrets_toml, monkeypatch) -> None:
    assert secrets_toml(None) == ([], None)  # no secrets file: no provider, nothing to say
    assert secrets_toml('[other]\nkey = "x"\n') == ([], None)
    assert secrets_toml(AUTH + PROVIDER_KEYS) == (["default"], None)  # Authlib is installed
    assert secrets_toml(AUTH + "[auth.google]\n" + PROVIDER_KEYS) == (["google"], None)

    providers, problem = secrets_toml(AUTH + 'client_id = "facemask"\n')
    assert providers == []
    assert "missing the following keys: ['client_secret', 'server_metadata_url']" in problem
    wrong = AUTH.replace("/oauth2callback", "/") + PROVIDER_KEYS
    assert secrets_toml(wrong) == (
        [],
        "[auth] redirect_uri 'http://192.168.1.20:8501/' must end with /oauth2callback.",
    )
    monkeypatch.setattr("streamlit.auth_util.is_authlib_installed", lambda: False)
    assert secrets_toml(AUTH + PROVIDER_KEYS) == ([], access.NO_AUTHLIB_TEXT)


def test_a_providers_claims_are_shown_as_written_not_as_markdown() -> None:
    import ui

    claims = {"email": "[x](javascript:alert(1))@evil.org", "email_verified": True}
    shown = ui._plain(access.oidc_user(claims, allowed="op@example.org").message)
    assert shown.startswith(r"Signed in as \[x\]\(javascript\:alert\(1\)\)\@evil\.org\,")
    assert ui._plain("a b") == "a b"
    assert len(access.oidc_user({"name": "n" * 5000}, allowed="").message) < 250
