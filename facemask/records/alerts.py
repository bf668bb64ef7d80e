"""Alerts: rules per camera that the watcher checks as people are counted, snapshots of alert
moments, and a webhook.

Two rules, set by the operator (the cameras TOML's `[alerts]` table, a camera's own `alerts`
table, or `facemask watch` flags): "a person without a mask" (a tracked person whose voted label
is not `with_mask`) and "unmasked share above X% over Y minutes" (of the people first seen in
the last Y minutes, once at least `min_people` were). Each alert is recorded in the database;
with a webhook URL it is also POSTed as JSON by a `WebhookSender`: its own thread and a bounded
queue (the analysis never waits), retries with a doubling back-off, a rate limit. Webhook URLs
may carry secrets, so only their origin is ever logged.
"""

from __future__ import annotations

import base64
import json
import logging
import queue
import threading
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from facemask.cameras import redact
from facemask.errors import FacemaskError
from facemask.records.store import AlertEvent, PersonRecord

log = logging.getLogger(__name__)

MASKED = "with_mask"
UNMASKED_PERSON = "unmasked_person"
UNMASKED_SHARE = "unmasked_share"
SNAPSHOT_DAYS = 7
"""Snapshots older than this many days are deleted (when snapshots are on)."""


class AlertConfigError(FacemaskError):
    """Alert settings the watcher cannot use (one sentence)."""


@dataclass(frozen=True)
class AlertRules:
    """The rules of one camera. A share rule needs `unmasked_share` (a percentage)."""

    unmasked_person: bool = False
    unmasked_share: float | None = None  # percent of people not masked, above which to alert
    share_minutes: float = 10.0  # ... over the people first seen in this many minutes
    min_people: int = 5  # ... once at least this many were seen in them
    cooldown_s: float = 60.0  # one rule of one camera fires at most once in this many seconds

    @property
    def active(self) -> bool:
        return self.unmasked_person or self.unmasked_share is not None


RULE_KEYS = {f.name for f in fields(AlertRules)}


@dataclass(frozen=True)
class AlertConfig:
    """Rules for every camera (`default`) and per camera, the webhook and the snapshots."""

    default: AlertRules = AlertRules()
    cameras: dict[str, AlertRules] = field(default_factory=dict)
    webhook: str | None = None
    webhook_per_minute: int = 6
    snapshots: Path | None = None
    snapshot_days: int = SNAPSHOT_DAYS

    def rules(self, camera: str) -> AlertRules:
        return self.cameras.get(camera, self.default)


def _rules(table: dict, base: AlertRules, where: str) -> AlertRules:
    """`base` with the rule keys of a TOML table (or flags) applied, checked."""
    given = {k: v for k, v in table.items() if k in RULE_KEYS and v is not None}
    try:
        rules = replace(base, **given)
        share = None if rules.unmasked_share is None else float(rules.unmasked_share)
        ok = (share is None or 0 <= share < 100) and float(rules.share_minutes) > 0
        ok = ok and int(rules.min_people) >= 1 and float(rules.cooldown_s) >= 0
    except (TypeError, ValueError):
        ok = False
    if not ok or not isinstance(rules.unmasked_person, bool):
        raise AlertConfigError(
            f"The alerts of {where} are not valid: unmasked_person is true or false, "
            "unmasked_share a percentage from 0 to below 100, share_minutes above 0, "
            "min_people at least 1, cooldown_s at least 0."
        )
    return rules


def _webhook(url: object) -> str | None:
    if url is None or url == "":
        return None
    if (
        not isinstance(url, str)
        or urlsplit(url).scheme not in ("http", "https")
        or not urlsplit(url).hostname
    ):
        raise AlertConfigError(f"The webhook {webhook_origin(str(url))} is not an http(s):// URL.")
    return url


def webhook_origin(url: str) -> str:
    """What may be logged of a webhook URL: scheme, host and port (paths often hold tokens)."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.hostname:
        return "(not a URL)"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}/..."


def alert_config(cameras_file: str | Path | None = None, **flags) -> AlertConfig:
    """The alerts of a cameras TOML file (`[alerts]`, each camera's `alerts` table, `webhook`,
    `snapshots`) with `facemask watch` flags on top (flags that are None are not given)."""
    data: dict = {}
    if cameras_file:
        path = Path(cameras_file)
        try:  # load_cameras has already read and checked the file
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise AlertConfigError(f"The cameras file {path} could not be read again.") from exc
    table = data.get("alerts", {})
    if not isinstance(table, dict):
        raise AlertConfigError("[alerts] in the cameras file must be a table.")
    settings = {**table, **{k: v for k, v in flags.items() if v is not None}}
    unknown = set(settings) - RULE_KEYS - {"webhook", "webhook_per_minute", "snapshots",
                                          "snapshot_days"}  # fmt: skip
    if unknown:
        raise AlertConfigError(f"Unknown alert settings: {', '.join(sorted(unknown))}.")
    default = _rules(settings, AlertRules(), "all cameras")
    cameras = {}
    for name, value in (data.get("cameras") or {}).items():
        own = value.get("alerts") if isinstance(value, dict) else None
        if own is None:
            continue
        if not isinstance(own, dict) or set(own) - RULE_KEYS:
            raise AlertConfigError(
                f"The alerts of camera {name} must be a table of {', '.join(sorted(RULE_KEYS))}."
            )
        cameras[name] = _rules(own, default, f"camera {name}")
    per_minute = settings.get("webhook_per_minute", 6)
    days = settings.get("snapshot_days", SNAPSHOT_DAYS)
    if not isinstance(per_minute, int) or per_minute < 1:
        raise AlertConfigError("webhook_per_minute must be a whole number of at least 1.")
    if not isinstance(days, int) or days < 1:
        raise AlertConfigError("snapshot_days must be a whole number of days, at least 1.")
    snapshots = settings.get("snapshots")
    if snapshots is not None and cameras_file and not Path(snapshots).is_absolute():
        snapshots = Path(cameras_file).parent / snapshots
    return AlertConfig(
        default=default,
        cameras=cameras,
        webhook=_webhook(settings.get("webhook")),
        webhook_per_minute=per_minute,
        snapshots=Path(snapshots) if snapshots else None,
        snapshot_days=days,
    )


class CameraAlerts:
    """The rules of one camera, checked against the people the watcher counts."""

    def __init__(self, camera: str, rules: AlertRules) -> None:
        self.camera, self.rules = camera, rules
        self._alerted: dict[str, datetime] = {}  # person key -> last seen, once alerted
        self._seen: dict[str, tuple[datetime, str]] = {}  # person key -> (first seen, label)
        self._last: dict[str, datetime] = {}  # rule -> when it last fired
        self._over = False  # the share is above the threshold (fires again only after a dip)

    def update(self, at: datetime, people: Sequence[PersonRecord]) -> list[AlertEvent]:
        """The alerts these people's records (as `PersonVotes.update` gives them) raise now."""
        if not self.rules.active:
            return []
        events = []
        if self.rules.unmasked_person:
            for p in people:
                if p.label != MASKED and p.key not in self._alerted and self._ready(
                    UNMASKED_PERSON, at
                ):  # fmt: skip
                    self._alerted[p.key] = p.last_seen
                    said = f"Camera {self.camera}: a person {p.label.replace('_', ' ')}."
                    events.append(self._fire(UNMASKED_PERSON, at, 1.0, said))
                elif p.key in self._alerted:
                    self._alerted[p.key] = p.last_seen
            for key, last in list(self._alerted.items()):
                if at - last > timedelta(minutes=10):
                    del self._alerted[key]
        if self.rules.unmasked_share is not None:
            for p in people:
                self._seen[p.key] = (p.first_seen, p.label)
            window = timedelta(minutes=self.rules.share_minutes)
            self._seen = {k: v for k, v in self._seen.items() if at - v[0] <= window}
            total = len(self._seen)
            unmasked = sum(label != MASKED for _, label in self._seen.values())
            share = unmasked / total if total else 0.0
            above = total >= self.rules.min_people and share * 100 > self.rules.unmasked_share
            if above and not self._over and self._ready(UNMASKED_SHARE, at):
                self._over = True
                events.append(self._fire(
                    UNMASKED_SHARE, at, round(share, 4),
                    f"Camera {self.camera}: {share:.0%} of {total} people in the last "
                    f"{self.rules.share_minutes:g} minutes wore no mask (above "
                    f"{self.rules.unmasked_share:g}%).",
                ))  # fmt: skip
            elif not above:
                self._over = False
        return events

    def _ready(self, rule: str, at: datetime) -> bool:
        last = self._last.get(rule)
        return last is None or (at - last).total_seconds() >= self.rules.cooldown_s

    def _fire(self, rule: str, at: datetime, value: float, message: str) -> AlertEvent:
        self._last[rule] = at
        return AlertEvent(self.camera, at, rule, message, value)


def save_snapshot(folder: Path, event: AlertEvent, jpeg: bytes) -> str:
    """Keep an alert moment's annotated JPEG as CAMERA/TIME-RULE.jpg; its path under folder."""
    name = f"{event.camera}/{event.at:%Y%m%dT%H%M%S%f}-{event.rule}.jpg"
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part")
    tmp.write_bytes(jpeg)
    tmp.replace(path)
    return name


def prune_snapshots(folder: Path, days: int, now: float | None = None) -> int:
    """Delete snapshots older than `days` days; how many were deleted."""
    cutoff = (time.time() if now is None else now) - days * 86400
    gone = 0
    for path in folder.glob("*/*.jpg") if folder.is_dir() else []:
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
                gone += 1
        except OSError:
            continue
    return gone


class WebhookSender:
    """POSTs alert events as JSON from its own thread: at most `per_minute` a minute (a token
    bucket; more are counted as `limited`), each retried with a doubling back-off, queued in a
    bounded queue (a full queue drops and counts). `send` never blocks."""

    def __init__(
        self,
        url: str,
        *,
        per_minute: int = 6,
        retries: int = 4,
        backoff: tuple[float, float] = (1.0, 30.0),
        timeout: float = 5.0,
        queue_size: int = 100,
    ) -> None:
        self.url, self.origin = url, webhook_origin(url)
        self._headers = {"Content-Type": "application/json"}
        parts = urlsplit(url)
        if parts.username is not None:  # user:password@ becomes HTTP Basic authentication
            secret = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
            self._headers["Authorization"] = "Basic " + base64.b64encode(secret).decode()
            netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
            self._target = urlunsplit(parts._replace(netloc=netloc))
        else:
            self._target = url
        self.per_minute, self.retries, self.backoff, self.timeout = (
            per_minute, retries, backoff, timeout
        )  # fmt: skip
        self.sent = self.failed = self.limited = self.dropped = 0
        self._tokens, self._refilled = float(per_minute), time.monotonic()
        self._queue: queue.Queue[AlertEvent] = queue.Queue(queue_size)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="alert-webhook", daemon=True)

    def start(self) -> WebhookSender:
        self._thread.start()
        return self

    def send(self, event: AlertEvent) -> bool:
        """Queue an event for the webhook; False when the rate limit or a full queue refused it."""
        now = time.monotonic()
        self._tokens = min(
            self.per_minute, self._tokens + (now - self._refilled) * self.per_minute / 60
        )  # fmt: skip
        self._refilled = now
        if self._tokens < 1:
            self.limited += 1
            log.warning("Alert not sent to the webhook %s: over %d a minute.", self.origin,
                        self.per_minute)  # fmt: skip
            return False
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            self.dropped += 1
            return False
        self._tokens -= 1
        return True

    def _run(self) -> None:
        while not (self._stop.is_set() and self._queue.empty()):
            try:
                event = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            self._deliver(event)

    def _deliver(self, event: AlertEvent) -> None:
        body = json.dumps(event.payload()).encode()
        delay = self.backoff[0]
        for attempt in range(self.retries + 1):
            request = urllib.request.Request(self._target, body, self._headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as reply:
                    reply.read(1024)
                self.sent += 1
                return
            except (urllib.error.URLError, OSError, ValueError) as exc:
                reason = exc.code if isinstance(exc, urllib.error.HTTPError) else (
                    getattr(exc, "reason", None) or exc
                )  # fmt: skip
                reason = redact(str(reason)).replace(self._target, self.origin)
                if attempt == self.retries:
                    break
                log.info("The webhook %s refused an alert (%s); retrying in %.1f s.",
                         self.origin, reason, delay)  # fmt: skip
                if self._stop.wait(delay) and attempt >= 1:
                    break  # closing: one more try, not the whole back-off
                delay = min(delay * 2, self.backoff[1])
        self.failed += 1
        log.warning("The webhook %s did not take an alert of camera %s (%s).", self.origin,
                    event.camera, reason)  # fmt: skip

    def close(self, timeout: float = 10.0) -> None:
        """Send what is queued (within timeout), then stop the thread."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
