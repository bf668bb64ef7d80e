"""How the server hands out the files a visitor downloads once: compressed, and cached for good.

Streamlit 1.67 serves its own content-hashed bundles (`/static/`) uncompressed (about 2.5 MB for
a first visit) and a component's files with `Cache-Control: public` and no lifetime, so a browser
fetches the in-browser page's models and WebAssembly again on every visit. `AssetMiddleware`
(installed by serve.py through `st.App`) fixes both for files whose URL changes with their
content: Streamlit's `/static/` bundles, the component's hashed build files (build.mjs) and the
model folders served under a hash of their content (browser_live.serve_model). Each such file is
compressed once and kept in memory (a fixed set of files, not per visitor), then served with
`Cache-Control: public, max-age=31536000, immutable`. `MovedPages` sends old bookmarks to
where their page lives now.
"""

from __future__ import annotations

import asyncio
import gzip
import re
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[
    [Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]
]

IMMUTABLE = b"public, max-age=31536000, immutable"
COMPONENT = "browser_live.browser_live"
MODEL_PREFIX = "browser_live.model_"
HASHED_NAME = re.compile(r"-[0-9A-Za-z]{8,}\.(js|css|wasm|tflite)$")
"""A build file whose name carries its content's hash (build.mjs, esbuild)."""
COMPRESSIBLE = (".js", ".css", ".wasm", ".tflite", ".json", ".bin", ".svg", ".map", ".txt")
CACHE_LIMIT_BYTES = 96 * 1024 * 1024
"""Compressed copies kept at most (the files a visit loads compress to a few MB)."""


def is_immutable(path: str, base: str = "") -> bool:
    """Whether a request path (under the server's base URL path) names a file whose content
    never changes under that URL."""
    prefix = "/" + base.strip("/") if base.strip("/") else ""
    if not path.startswith(prefix + "/"):
        return False
    path = path[len(prefix) :]
    if re.fullmatch(r"/static/(js|css|media)/[^/]+", path):
        return True
    if path.startswith(f"/component/{MODEL_PREFIX}"):
        return True
    return path.startswith(f"/component/{COMPONENT}/") and bool(HASHED_NAME.search(path))


class AssetMiddleware:
    """ASGI middleware: immutable files compressed once, kept, and cached by browsers for good."""

    def __init__(self, app: ASGIApp, base: str | None = None) -> None:
        if base is None:
            from streamlit import config

            base = config.get_option("server.baseUrlPath") or ""
        self.app, self.base = app, base
        self._cache: dict[str, tuple[list[tuple[bytes, bytes]], bytes, bool]] = {}
        self._bytes = 0
        self._lock = threading.Lock()

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if (
            scope["type"] != "http"
            or scope.get("method") != "GET"
            or not is_immutable(path, self.base)
        ):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        gzip_ok = b"gzip" in headers.get(b"accept-encoding", b"")
        cached = self._cache.get(path)
        if cached is None:
            cached = await self._fetch(scope, receive)
            if cached is None:  # not a plain 200: let the app answer as it would
                await self.app(scope, receive, send)
                return
        base, body, compressed = cached
        if compressed and not gzip_ok:
            body = gzip.decompress(body)
            compressed = False
        out = [
            (k, v)
            for k, v in base
            if k not in (b"content-length", b"content-encoding", b"accept-ranges")
        ]
        out += [(b"content-length", str(len(body)).encode()), (b"cache-control", IMMUTABLE)]
        out += [(b"vary", b"Accept-Encoding")]
        if compressed:
            out.append((b"content-encoding", b"gzip"))
        await send({"type": "http.response.start", "status": 200, "headers": out})
        await send({"type": "http.response.body", "body": body})

    async def _fetch(self, scope: Scope, receive: Any) -> tuple | None:
        """Run the app for `scope` without compression and keep its 200 answer, compressed."""
        inner = dict(scope)
        inner["headers"] = [
            (k, v)
            for k, v in scope.get("headers") or []
            if k not in (b"accept-encoding", b"if-none-match", b"if-modified-since", b"range")
        ]
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def collect(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(inner, receive, collect)
        if start.get("status") != 200:
            return None
        base = [
            (k.lower(), v)
            for k, v in start.get("headers", [])
            if k.lower() not in (b"cache-control", b"vary", b"etag", b"last-modified")
        ]
        body = b"".join(chunks)
        compressed = scope["path"].endswith(COMPRESSIBLE) and len(body) > 1024
        if compressed:
            packed = await asyncio.to_thread(gzip.compress, body, compresslevel=9, mtime=0)
            compressed = len(packed) < len(body)
            body = packed if compressed else body
        entry = (base, body, compressed)
        with self._lock:
            if self._bytes + len(body) <= CACHE_LIMIT_BYTES and scope["path"] not in self._cache:
                self._cache[scope["path"]] = entry
                self._bytes += len(body)
        return entry


MOVED_PAGES = {"/browser": "/"}
"""Old page paths and where the page is now: the in-browser page was at /browser before it
became the landing page, and Streamlit says "page not found" for a default page's own path."""


class MovedPages:
    """ASGI middleware: a GET of an old page path is redirected (308) to the page's new path,
    under the server's base URL path, with its query string."""

    def __init__(self, app: ASGIApp, base: str | None = None) -> None:
        if base is None:
            from streamlit import config

            base = config.get_option("server.baseUrlPath") or ""
        self.app = app
        self.prefix = "/" + base.strip("/") if base.strip("/") else ""

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        old = path[len(self.prefix) :].rstrip("/") if path.startswith(self.prefix) else None
        if (
            scope["type"] != "http"
            or scope.get("method") not in ("GET", "HEAD")
            or (old not in MOVED_PAGES)
        ):
            await self.app(scope, receive, send)
            return
        target = (self.prefix + MOVED_PAGES[old]).encode()
        if scope.get("query_string"):
            target += b"?" + scope["query_string"]
        headers = [(b"location", target), (b"content-length", b"0")]
        await send({"type": "http.response.start", "status": 308, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
