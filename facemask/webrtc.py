"""The live page's WebRTC connection: its ICE servers, and workarounds in the WebRTC libraries.

- `rtc_configuration()`: the ICE servers (STUN/TURN) from the environment, checked.
- `fix_stale_state_reset()`: a streamlit-webrtc bug that stops a stream right after it connects.
- `set_loopback_only()` / `apply_loopback_mode()`: a test-only mode in which the server's ICE
  uses 127.0.0.1 alone, so a browser on the same machine connects without any network.

The workarounds patch module attributes, once and reversibly; nothing here imports streamlit itself.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from facemask.errors import FacemaskError

log = logging.getLogger(__name__)

ICE_SERVERS_ENV = "FACEMASK_ICE_SERVERS"
"""JSON list of RTCIceServer objects, e.g. [{"urls": "turn:host:3478", "username": ..., ...}]."""
ICE_SERVERS_FILE_ENV = "FACEMASK_ICE_SERVERS_FILE"
"""Path of a JSON file holding that list (or {"iceServers": [...]}); for secrets kept on disk."""
_ICE_SCHEMES = ("stun:", "stuns:", "turn:", "turns:")
LOOPBACK_ENV = "FACEMASK_WEBRTC_LOOPBACK_ONLY"
"""Set to 1 to make the server offer and accept only 127.0.0.1 ICE candidates (tests)."""
LOOPBACK_ADDRESS = "127.0.0.1"

STALE_RESET_AFFECTED = ((0, 76, 3), (0, 79, 0))
"""streamlit-webrtc versions (inclusive) whose stale-state reset misfires; checked at runtime."""

_MARK = "_facemask_patch"
_originals: dict[str, Any] = {}


def _version(dist: str) -> tuple[int, ...]:
    parts = []
    for piece in importlib.metadata.version(dist).split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def fix_stale_state_reset() -> bool:
    """Stop streamlit-webrtc (0.76.3-0.79.0) from resetting a streamer it has just connected.

    Why: before each render the library compares Streamlit's `script_run_count` with the count
    at its previous render and, when the gap exceeds one run, decides the page was left and
    tears down the worker ("Context for key=... was not rendered for 1 script runs; resetting
    stale state"). But Streamlit increments that count asynchronously (when a finished-run
    message is sent) and while START is negotiated the reruns come in a burst, so the count
    can jump by more than one although the component rendered in every run: the worker is then
    stopped right after connecting and no frame arrives.
    Making `component.get_script_run_count` answer None disables that comparison (and the
    snapshot restore that only matters with several streamers on one page). Leaving the page
    is still handled: the library's SessionShutdownObserver stops the worker on a page change.

    Applied once (idempotent); returns whether the patch is in place. Versions outside the
    affected range are left alone.
    """
    from streamlit_webrtc import component

    if getattr(component.get_script_run_count, _MARK, False):
        return True
    low, high = STALE_RESET_AFFECTED
    version = _version("streamlit-webrtc")
    if not low <= version <= high:
        log.info("streamlit-webrtc %s: stale-state reset fix not needed", version)
        return False

    def no_run_count(session_info: object) -> None:
        """Stands in for get_script_run_count: 'unknown', so no stale-state reset happens."""
        return None

    setattr(no_run_count, _MARK, True)
    _originals.setdefault("get_script_run_count", component.get_script_run_count)
    component.get_script_run_count = no_run_count
    return True


def undo_stale_state_fix() -> None:
    """Put streamlit-webrtc's own get_script_run_count back (tests)."""
    from streamlit_webrtc import component

    original = _originals.pop("get_script_run_count", None)
    if original is not None:
        component.get_script_run_count = original


def loopback_only() -> bool:
    """Whether the loopback-only ICE mode is in place."""
    import aioice.ice

    return bool(getattr(aioice.ice.get_host_addresses, _MARK, False))


def set_loopback_only(enabled: bool) -> None:
    """Make the server's ICE (aioice) use 127.0.0.1 alone, or undo it.

    aioice leaves 127.0.0.1 out of its host candidates, and a browser on the same host also
    offers its other interfaces, whose checks would reach our loopback socket and form
    peer-reflexive pairs to addresses we cannot answer on. In this mode aioice gathers only
    127.0.0.1, ignores remote candidates elsewhere and does not answer checks from elsewhere.
    The browser side needs --allow-loopback-in-peer-connection. For tests on one machine
    only: remote browsers cannot connect while it is on.
    """
    import aioice.ice

    if enabled == loopback_only():
        return
    connection = aioice.ice.Connection
    if not enabled:
        aioice.ice.get_host_addresses = _originals.pop("get_host_addresses")
        connection.add_remote_candidate = _originals.pop("add_remote_candidate")
        connection.request_received = _originals.pop("request_received")
        log.info("WebRTC loopback-only mode off")
        return

    original_add: Callable[..., Any] = connection.add_remote_candidate
    original_request: Callable[..., Any] = connection.request_received

    def loopback_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [LOOPBACK_ADDRESS] if use_ipv4 else []

    async def add_loopback_candidate(self: Any, remote_candidate: Any) -> None:
        if remote_candidate is not None and remote_candidate.host != LOOPBACK_ADDRESS:
            return
        await original_add(self, remote_candidate)

    def loopback_request_received(self: Any, message: Any, addr: Any, protocol: Any) -> None:
        if addr[0] != LOOPBACK_ADDRESS:
            return
        original_request(self, message, addr, protocol)

    setattr(loopback_host_addresses, _MARK, True)
    _originals["get_host_addresses"] = aioice.ice.get_host_addresses
    _originals["add_remote_candidate"] = original_add
    _originals["request_received"] = original_request
    aioice.ice.get_host_addresses = loopback_host_addresses
    connection.add_remote_candidate = add_loopback_candidate
    connection.request_received = loopback_request_received
    log.warning(
        "WebRTC loopback-only mode on (%s=1): only browsers on this machine can connect",
        LOOPBACK_ENV,
    )


def apply_loopback_mode(environ: Mapping[str, str] = os.environ) -> bool:
    """Turn the loopback-only mode on or off from FACEMASK_WEBRTC_LOOPBACK_ONLY; return it."""
    enabled = environ.get(LOOPBACK_ENV, "").strip().lower() in {"1", "true", "yes", "on"}
    set_loopback_only(enabled)
    return enabled


# -- ICE servers ----------------------------------------------------------------------
def rtc_configuration(environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """The WebRTC configuration for both browser and server: {"iceServers": [...]}.

    Empty by default: enough on the same machine or a LAN, and nothing is contacted. Behind NAT
    (a hosted app) set FACEMASK_ICE_SERVERS to a JSON list of servers, usually one TURN server
    with a username and credential, or FACEMASK_ICE_SERVERS_FILE to a file holding it. The key
    is always present: without it streamlit-webrtc would look servers up on the network.
    Raises FacemaskError when the setting is not a valid list of servers.
    """
    text = environ.get(ICE_SERVERS_ENV, "").strip()
    source = ICE_SERVERS_ENV
    file_name = environ.get(ICE_SERVERS_FILE_ENV, "").strip()
    if not text and file_name:
        source = file_name
        try:
            text = Path(file_name).read_text()
        except OSError as exc:
            raise FacemaskError(
                f"{ICE_SERVERS_FILE_ENV} names {file_name}, which could not be read: "
                f"{exc.strerror or exc}."
            ) from exc
    if not text:
        return {"iceServers": []}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise FacemaskError(f"The ICE servers in {source} are not valid JSON: {exc}.") from exc
    if isinstance(value, dict) and set(value) == {"iceServers"}:
        value = value["iceServers"]
    return {"iceServers": [_ice_server(server, source) for server in _as_list(value, source)]}


def _as_list(value: Any, source: str) -> list[Any]:
    if not isinstance(value, list):
        raise FacemaskError(
            f'The ICE servers in {source} must be a JSON list of objects with "urls".'
        )
    return value


def _ice_server(server: Any, source: str) -> dict[str, Any]:
    """Check one RTCIceServer dict: urls (string or list) and optional username/credential."""
    if not isinstance(server, dict) or "urls" not in server:
        raise FacemaskError(f'Every ICE server in {source} must be an object with "urls".')
    urls = server["urls"]
    url_list = [urls] if isinstance(urls, str) else urls
    if (
        not isinstance(url_list, list)
        or not url_list
        or not all(isinstance(u, str) and u.startswith(_ICE_SCHEMES) for u in url_list)
    ):
        raise FacemaskError(
            f"ICE server urls in {source} must start with stun:, stuns:, turn: or turns:."
        )
    unknown = set(server) - {"urls", "username", "credential"}
    if unknown:
        raise FacemaskError(
            f"Unknown ICE server field(s) in {source}: {', '.join(sorted(unknown))}."
        )
    for field in ("username", "credential"):
        if field in server and not isinstance(server[field], str):
            raise FacemaskError(f"The ICE server {field} in {source} must be a string.")
    return {k: server[k] for k in ("urls", "username", "credential") if k in server}
