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


def test_oidc_operators_are_listed_or_nobody_is() -> None:
    assert not access.oidc_operator("a@b.org", allowed="")
    assert access.oidc_operator("A@B.org", allowed="x@y.org, a@b.org")
    assert not access.oidc_operator("c@b.org", allowed="x@y.org, a@b.org")
    assert not access.oidc_operator(None, allowed="a@b.org")
    assert access.oidc_operator("anyone@else.org", allowed="*")


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
