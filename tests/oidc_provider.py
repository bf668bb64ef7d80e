"""A real OpenID Connect provider on 127.0.0.1 for the sign-in tests (tests/test_browser_oidc.py).

It speaks the authorization-code flow the way Streamlit's `st.login` (through Authlib) drives it:

- `/.well-known/openid-configuration`: the discovery document (issuer, endpoints, RS256, PKCE S256);
- `/jwks`: the public half of an RSA key made when the provider starts;
- `/authorize`: checks the client, the registered redirect URI, the scope and PKCE (S256,
  required), then shows a one-field form (the e-mail address to sign in as, as a provider's
  login page would); submitting it redirects back to the app with a single-use code and the
  app's `state`;
- `/token`: exchanges the code (client secret by HTTP Basic or in the form, the PKCE verifier, the
  same redirect URI) for an access token and an RS256-signed id_token with iss, aud, sub, email,
  email_verified, nonce, iat, exp;
- `/userinfo` (bearer token) and `/logout` (RP-initiated logout back to a registered URI).

Nothing is faked on the app's side: the app fetches the discovery document, the keys and the
token from here over loopback HTTP and verifies them itself.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote_plus, urlencode, urlparse

from joserfc import jwt
from joserfc.jwk import RSAKey

CODE_TTL_S = 60
TOKEN_TTL_S = 3600


@dataclass
class _Grant:
    """What an authorization code stands for until the app exchanges it."""

    email: str
    redirect_uri: str
    nonce: str | None
    challenge: str
    issued: float = field(default_factory=time.monotonic)


class Provider:
    """The provider: `client_id` / `client_secret` of its one client, `redirect_uris` that
    client registered (add the app's `<base>/oauth2callback` once its port is known), and
    `unverified`, addresses whose id_token says `email_verified: false`. `sign_ins` and
    `sign_outs` record what it served. Use as a context manager (it serves on a thread)."""

    def __init__(self, client_id: str = "facemask-tests", client_secret: str | None = None):
        self.client_id = client_id
        self.client_secret = client_secret or secrets.token_urlsafe(24)
        self.redirect_uris: set[str] = set()
        self.unverified: set[str] = set()
        self.sign_ins: list[str] = []
        self.sign_outs = 0
        self._key = RSAKey.generate_key(
            2048, parameters={"kid": secrets.token_hex(8), "use": "sig", "alg": "RS256"}
        )
        self._lock = threading.Lock()
        self._pending: dict[str, dict[str, str]] = {}  # form id -> the authorize request
        self._codes: dict[str, _Grant] = {}
        self._access: dict[str, str] = {}  # access token -> e-mail
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def metadata_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    def __enter__(self) -> Provider:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)

    def metadata(self) -> dict:
        base = self.issuer
        return {
            "issuer": base,
            "authorization_endpoint": f"{base}/authorize",
            "token_endpoint": f"{base}/token",
            "userinfo_endpoint": f"{base}/userinfo",
            "jwks_uri": f"{base}/jwks",
            "end_session_endpoint": f"{base}/logout",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "profile"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": ["iss", "aud", "sub", "email", "email_verified", "nonce"],
        }

    def jwks(self) -> dict:
        return {"keys": [self._key.as_dict(private=False)]}

    def claims(self, email: str) -> dict:
        """The user's claims: `sub` is stable per address, as a provider's account id is."""
        return {
            "sub": hashlib.sha256(email.encode()).hexdigest()[:24],
            "email": email,
            "email_verified": email not in self.unverified,
            "name": email.split("@")[0],
        }

    # -- the endpoints (each returns status, headers, body) -----------------------------
    def authorize(self, query: dict[str, str]) -> tuple[int, dict, bytes]:
        if query.get("client_id") != self.client_id:
            return _text(400, "unknown client_id")
        redirect_uri = query.get("redirect_uri", "")
        if redirect_uri not in self.redirect_uris:
            return _text(400, f"redirect_uri {redirect_uri!r} is not registered")
        error = None
        if query.get("response_type") != "code":
            error = "unsupported_response_type"
        elif "openid" not in query.get("scope", "").split():
            error = "invalid_scope"
        elif not query.get("code_challenge") or query.get("code_challenge_method") != "S256":
            error = "invalid_request"  # PKCE required, as a careful provider may do
        if error:
            return _redirect(redirect_uri, error=error, state=query.get("state", ""))
        form_id = secrets.token_urlsafe(16)
        with self._lock:
            self._pending[form_id] = query
        page = (
            "<!doctype html><title>Test provider: sign in</title><h1>Sign in</h1>"
            '<form method="post" action="/authorize">'
            f'<input type="hidden" name="request" value="{html.escape(form_id)}">'
            '<label>E-mail address <input name="email" type="email" required></label>'
            '<button type="submit">Continue</button></form>'
        )
        return 200, {"Content-Type": "text/html; charset=utf-8"}, page.encode()

    def consent(self, form: dict[str, str]) -> tuple[int, dict, bytes]:
        with self._lock:
            query = self._pending.pop(form.get("request", ""), None)
        email = form.get("email", "").strip()
        if query is None or "@" not in email:
            return _text(400, "unknown sign-in request or no e-mail address")
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = _Grant(
                email, query["redirect_uri"], query.get("nonce"), query["code_challenge"]
            )
            self.sign_ins.append(email)
        return _redirect(query["redirect_uri"], code=code, state=query.get("state", ""))

    def token(self, form: dict[str, str], authorization: str) -> tuple[int, dict, bytes]:
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        if authorization.startswith("Basic "):
            decoded = base64.b64decode(authorization[6:]).decode()
            client_id, client_secret = (unquote_plus(p) for p in decoded.partition(":")[::2])
        if client_id != self.client_id or not hmac.compare_digest(
            client_secret or "", self.client_secret
        ):
            return _json(401, {"error": "invalid_client"})
        if form.get("grant_type") != "authorization_code":
            return _json(400, {"error": "unsupported_grant_type"})
        with self._lock:
            grant = self._codes.pop(form.get("code", ""), None)  # single use
        if grant is None or time.monotonic() - grant.issued > CODE_TTL_S:
            return _json(400, {"error": "invalid_grant"})
        if form.get("redirect_uri") != grant.redirect_uri:
            return _json(400, {"error": "invalid_grant", "error_description": "redirect_uri"})
        verifier = form.get("code_verifier", "").encode()
        digest = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()).rstrip(b"=")
        if not hmac.compare_digest(digest.decode(), grant.challenge):
            return _json(400, {"error": "invalid_grant", "error_description": "PKCE"})
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": self.client_id,
            "iat": now,
            "exp": now + TOKEN_TTL_S,
            **self.claims(grant.email),
        }
        if grant.nonce:
            claims["nonce"] = grant.nonce
        header = {"alg": "RS256", "kid": self._key.kid, "typ": "JWT"}
        access = secrets.token_urlsafe(24)
        with self._lock:
            self._access[access] = grant.email
        return _json(
            200,
            {
                "access_token": access,
                "token_type": "Bearer",
                "expires_in": TOKEN_TTL_S,
                "scope": "openid email profile",
                "id_token": jwt.encode(header, claims, self._key),
            },
        )

    def userinfo(self, authorization: str) -> tuple[int, dict, bytes]:
        with self._lock:
            email = self._access.get(authorization.removeprefix("Bearer "))
        if email is None:
            return _json(401, {"error": "invalid_token"})
        return _json(200, self.claims(email))

    def logout(self, query: dict[str, str]) -> tuple[int, dict, bytes]:
        with self._lock:
            self.sign_outs += 1
        back = query.get("post_logout_redirect_uri", "")
        if back in self.redirect_uris:
            return 302, {"Location": back}, b""
        return _text(200, "Signed out.")


def _text(status: int, text: str) -> tuple[int, dict, bytes]:
    return status, {"Content-Type": "text/plain; charset=utf-8"}, text.encode()


def _json(status: int, body: dict) -> tuple[int, dict, bytes]:
    headers = {"Content-Type": "application/json", "Cache-Control": "no-store"}
    return status, headers, json.dumps(body).encode()


def _redirect(uri: str, **params: str) -> tuple[int, dict, bytes]:
    separator = "&" if urlparse(uri).query else "?"
    return 302, {"Location": f"{uri}{separator}{urlencode(params)}"}, b""


def _single(values: dict[str, list[str]]) -> dict[str, str]:
    return {name: items[0] for name, items in values.items()}


def _handler(provider: Provider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 -- http.server's name
            url = urlparse(self.path)
            query = _single(parse_qs(url.query))
            if url.path == "/.well-known/openid-configuration":
                self._send(*_json(200, provider.metadata()))
            elif url.path == "/jwks":
                self._send(*_json(200, provider.jwks()))
            elif url.path == "/authorize":
                self._send(*provider.authorize(query))
            elif url.path == "/userinfo":
                self._send(*provider.userinfo(self.headers.get("Authorization", "")))
            elif url.path == "/logout":
                self._send(*provider.logout(query))
            else:
                self._send(*_text(404, "not found"))

        def do_POST(self) -> None:  # noqa: N802 -- http.server's name
            length = int(self.headers.get("Content-Length") or 0)
            form = _single(parse_qs(self.rfile.read(length).decode()))
            path = urlparse(self.path).path
            if path == "/authorize":
                self._send(*provider.consent(form))
            elif path == "/token":
                self._send(*provider.token(form, self.headers.get("Authorization", "")))
            else:
                self._send(*_text(404, "not found"))

        def _send(self, status: int, headers: dict, body: bytes) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass  # quiet: pytest shows the app's log on failure

    return Handler
