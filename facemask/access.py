"""Who may change the server's state: the operator, and how a visitor becomes one.

Looking is open to every visitor; starting, cancelling, resuming and discarding trainings (and
anything else that writes on the server) is the operator's. How a visitor is judged:

- The app listens only on the loopback interface (`--server.address 127.0.0.1`, what `make run`
  does): only the machine's own user can reach it, so that user is the operator.
- The app is reachable from a network (any other address, or FACEMASK_REQUIRE_SIGN_IN=1, for a
  reverse proxy on the same machine): the operator signs in, with Streamlit's `st.login` (OIDC)
  when the operator configured a provider in `.streamlit/secrets.toml`, else with the password
  in FACEMASK_OPERATOR_PASSWORD. With neither, nobody is the operator (read-only). A provider's
  user is the operator when their verified e-mail address is in FACEMASK_OPERATOR_EMAILS.

Passwords are compared in constant time, and attempts are limited per session and, with a
growing back-off, across the whole server (a new session does not buy new tries).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any
from urllib.parse import urlparse

PASSWORD_ENV = "FACEMASK_OPERATOR_PASSWORD"
OPERATORS_ENV = "FACEMASK_OPERATOR_EMAILS"
REQUIRE_SIGN_IN_ENV = "FACEMASK_REQUIRE_SIGN_IN"
SESSION_ATTEMPTS = 5
"""Failed passwords one session may try; then it is refused for good."""
FREE_FAILURES = 3
"""Failed passwords, server-wide, before each further try must wait."""
BACKOFF_S = 2.0
"""The first server-wide wait; it doubles with each further failure, up to MAX_BACKOFF_S."""
MAX_BACKOFF_S = 300.0
FORGET_AFTER_S = 3600.0
"""Server-wide failures older than this are forgotten."""


class Mode(Enum):
    """How the operator is recognised on this server."""

    LOCAL = "local"  # loopback only: the machine's user is the operator
    OIDC = "oidc"  # st.login with the provider configured in secrets.toml
    PASSWORD = "password"  # FACEMASK_OPERATOR_PASSWORD
    CLOSED = "closed"  # reachable from a network, no way to sign in: read-only for all


MODE_TEXT = {
    Mode.LOCAL: "This app listens only on this machine (loopback): you are its operator.",
    Mode.OIDC: "Reachable from a network: the operator signs in.",
    Mode.PASSWORD: "Reachable from a network: the operator signs in with the operator password.",
    Mode.CLOSED: (
        "Reachable from a network and no sign-in is configured: nobody may start, cancel, "
        f"resume or discard trainings here (read-only). The operator sets {PASSWORD_ENV} or an "
        "[auth] provider in .streamlit/secrets.toml and restarts the app."
    ),
}
READ_ONLY_TEXT = "Only the operator may do this: sign in as the operator (sidebar)."
NO_AUTHLIB_TEXT = "Authlib, which st.login needs, is not installed (`make setup` installs it)."


def is_loopback(address: str | None) -> bool:
    """True when a listening address can be reached only from this machine.

    Streamlit's `server.address` unset or empty means every interface; `localhost` and any
    address in 127.0.0.0/8 or ::1 are loopback. Anything else (0.0.0.0, ::, a LAN address, a
    host name) is taken as reachable from a network.
    """
    text = (address or "").strip().strip("[]")
    if text.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(text).is_loopback
    except ValueError:
        return False


def access_mode(
    server_address: str | None,
    oidc_configured: bool,
    password: str | None = None,
    require_sign_in: bool | None = None,
) -> Mode:
    """How the operator is recognised, from where the server listens and what is configured.

    `password` and `require_sign_in` default to the environment (PASSWORD_ENV,
    REQUIRE_SIGN_IN_ENV).
    """
    if password is None:
        password = os.environ.get(PASSWORD_ENV, "")
    if require_sign_in is None:
        require_sign_in = os.environ.get(REQUIRE_SIGN_IN_ENV, "") not in ("", "0", "false")
    if is_loopback(server_address) and not require_sign_in:
        return Mode.LOCAL
    if oidc_configured:
        return Mode.OIDC
    return Mode.PASSWORD if password else Mode.CLOSED


def oidc_providers(auth: Mapping[str, Any]) -> list[str]:
    """The providers `st.login` can sign in with, from secrets.toml's [auth] section.

    `"default"` when the provider's keys (client_id, ...) sit in [auth] itself, then every
    [auth.NAME] section that holds a client_id, in the file's order.
    """
    names = ["default"] if "client_id" in auth else []
    names += [
        name
        for name, value in auth.items()
        if isinstance(value, Mapping) and "client_id" in value and name != "default"
    ]
    if isinstance(auth.get("default"), Mapping) and "default" not in names:
        names.insert(0, "default")
    return names


def redirect_uri_problem(uri: object) -> str | None:
    """Why [auth]'s redirect_uri cannot bring a provider's answer back to the app, or None.

    Streamlit receives the answer at `/oauth2callback`; the URI must be absolute, as the
    provider redirects the browser there.
    """
    if not isinstance(uri, str) or not uri:
        return None  # Streamlit's own check names the missing key
    parsed = urlparse(uri)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        return f"[auth] redirect_uri {uri!r} is not an absolute http(s) URL."
    if not parsed.path.endswith("/oauth2callback"):
        return f"[auth] redirect_uri {uri!r} must end with /oauth2callback."
    return None


def _verified(value: object) -> bool:
    """An `email_verified` claim: true as JSON, or as the string some providers send."""
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def oidc_user(claims: Mapping[str, Any], allowed: str | None = None) -> SignIn:
    """Whether a user signed in with OIDC is an operator, and the sentence that says so.

    `claims` are the id_token's (`st.user`). `allowed` (default: FACEMASK_OPERATOR_EMAILS) is
    a comma-separated list of e-mail addresses, or `*` for anyone the provider signs in.
    Unset, nobody is: a public provider would otherwise make every one of its users an
    operator. A listed address counts only when the provider says it verified it
    (`email_verified`): an unverified address is anyone's to type.
    """
    if allowed is None:
        allowed = os.environ.get(OPERATORS_ENV, "")
    names = {part.strip().lower() for part in allowed.split(",") if part.strip()}
    raw_email = claims.get("email")
    email = raw_email.strip() if isinstance(raw_email, str) else ""
    who = (email or str(claims.get("name") or claims.get("sub") or "an unnamed user"))[:120]
    look = "you may look, not change anything."
    if "*" in names:
        return SignIn(True, f"Signed in as {who}: operator.")
    if not names:
        return SignIn(
            False, f"Signed in as {who}; this server lists no operators ({OPERATORS_ENV}): {look}"
        )
    if not email:
        return SignIn(False, f"Signed in, but the provider gave no e-mail address: {look}")
    if email.lower() not in names:
        return SignIn(False, f"Signed in as {who}, who is not an operator here: {look}")
    if not _verified(claims.get("email_verified")):
        return SignIn(
            False, f"Signed in as {who}, an address the provider has not verified: {look}"
        )
    return SignIn(True, f"Signed in as {who}: operator.")


@dataclass
class SessionAttempts:
    """One session's failed passwords (kept in that session's state)."""

    failures: int = 0


@dataclass(frozen=True)
class SignIn:
    """The outcome of a sign-in (a password try, an OIDC user): `ok`, and the sentence to show."""

    ok: bool
    message: str = ""


class PasswordGate:
    """The operator password: constant-time comparison, per-session and server-wide limits.

    One instance serves the whole server (thread-safe). The password is kept only as its
    SHA-256 digest, so the comparison takes the same time whatever its length.
    """

    def __init__(self, password: str, clock=time.monotonic) -> None:
        if not password:
            raise ValueError("the operator password is empty")
        self._digest = hashlib.sha256(password.encode()).digest()
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._last_failure = 0.0

    def wait_s(self) -> float:
        """Seconds before the server takes another try (0 when it takes one now)."""
        with self._lock:
            return self._wait(self._clock())

    def _wait(self, now: float) -> float:
        if self._failures and now - self._last_failure > FORGET_AFTER_S:
            self._failures = 0
        if self._failures < FREE_FAILURES:
            return 0.0
        backoff = min(MAX_BACKOFF_S, BACKOFF_S * 2 ** (self._failures - FREE_FAILURES))
        return max(0.0, self._last_failure + backoff - now)

    def try_password(self, given: str, session: SessionAttempts) -> SignIn:
        """Check one try; counts failures for the session and the server."""
        if session.failures >= SESSION_ATTEMPTS:
            return SignIn(False, "Too many wrong passwords in this session; sign-in is closed.")
        with self._lock:
            now = self._clock()
            wait = self._wait(now)
            if wait > 0:
                return SignIn(False, f"Too many wrong passwords; try again in {wait:.0f} s.")
            given_digest = hashlib.sha256(given.encode(errors="replace")).digest()
            if hmac.compare_digest(given_digest, self._digest):
                self._failures = 0
                return SignIn(True)
            self._failures += 1
            self._last_failure = now
        session.failures += 1
        left = SESSION_ATTEMPTS - session.failures
        return SignIn(False, f"Wrong password ({left} tries left in this session).")
