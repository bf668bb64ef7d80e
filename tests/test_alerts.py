"""facemask.records.alerts: the two rules, their settings from the cameras file and flags,
snapshots and their retention, and the webhook sender against a real HTTP receiver on 127.0.0.1
(one that fails first, then succeeds; the rate limit; no secret in the logs)."""

from __future__ import annotations

import base64
import logging
import os
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from camera_clips import wait_for, webhook_receiver

from facemask.records import AlertEvent, PersonRecord
from facemask.records.alerts import (
    UNMASKED_PERSON,
    UNMASKED_SHARE,
    AlertConfigError,
    AlertRules,
    CameraAlerts,
    WebhookSender,
    alert_config,
    prune_snapshots,
    save_snapshot,
    webhook_origin,
)

T0 = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


def person(key: str, label: str, at: datetime) -> PersonRecord:
    return PersonRecord("door", key, at, at, label, {label: 4}, 4)


def test_a_person_without_a_mask_alerts_once_and_the_cooldown_holds() -> None:
    alerts = CameraAlerts("door", AlertRules(unmasked_person=True, cooldown_s=30))
    assert alerts.update(T0, [person("r:1", "with_mask", T0)]) == []
    (event,) = alerts.update(T0, [person("r:2", "without_mask", T0)])
    assert (event.rule, event.camera, event.value) == (UNMASKED_PERSON, "door", 1.0)
    assert event.message == "Camera door: a person without mask."
    later = T0 + timedelta(seconds=5)
    assert alerts.update(later, [person("r:2", "without_mask", later)]) == []  # same person
    assert alerts.update(later, [person("r:3", "mask_worn_incorrectly", later)]) == []  # cooldown
    after = T0 + timedelta(seconds=31)
    (event,) = alerts.update(after, [person("r:4", "mask_worn_incorrectly", after)])
    assert event.message == "Camera door: a person mask worn incorrectly."


def test_unmasked_share_alerts_when_it_crosses_the_threshold() -> None:
    rules = AlertRules(unmasked_share=40, share_minutes=5, min_people=4, cooldown_s=0)
    alerts = CameraAlerts("door", rules)
    seen = [("a", "with_mask"), ("b", "without_mask"), ("c", "with_mask")]
    for i, (key, label) in enumerate(seen):
        at = T0 + timedelta(minutes=i)
        assert alerts.update(at, [person(key, label, at)]) == []
    # 2 of 4 unmasked = 50% > 40%, now that 4 people were seen
    at = T0 + timedelta(minutes=3)
    (event,) = alerts.update(at, [person("d", "without_mask", at)])
    assert event.rule == UNMASKED_SHARE and event.value == 0.5
    assert "50% of 4 people in the last 5 minutes" in event.message
    at = T0 + timedelta(minutes=4)
    assert alerts.update(at, [person("e", "without_mask", at)]) == []  # still above: no repeat
    # a, b, c leave the 5-minute window; masked people bring it down, then it rises again
    at = T0 + timedelta(minutes=9)
    masked = [person(k, "with_mask", at) for k in "fghij"]
    assert alerts.update(at, masked) == []
    at = T0 + timedelta(minutes=9, seconds=30)
    unmasked = [person(k, "without_mask", at) for k in "klmnop"]
    (event,) = alerts.update(at, unmasked)
    assert event.rule == UNMASKED_SHARE


def test_settings_come_from_the_cameras_file_with_flags_on_top(tmp_path: Path) -> None:
    file = tmp_path / "cameras.toml"
    file.write_text(
        '[alerts]\nunmasked_person = true\nwebhook = "https://hooks.example.com/T1/s3cret"\n'
        'snapshots = "shots"\n'
        '[cameras]\nhall = "rtsp://cam/1"\n'
        'door = { url = "rtsp://cam/2", alerts = { unmasked_share = 20, share_minutes = 5 } }\n'
    )
    config = alert_config(file, share_minutes=15)
    assert config.rules("hall") == AlertRules(unmasked_person=True, share_minutes=15)
    assert config.rules("door") == AlertRules(
        unmasked_person=True, unmasked_share=20, share_minutes=5
    )
    assert config.webhook == "https://hooks.example.com/T1/s3cret"
    assert config.snapshots == tmp_path / "shots" and config.snapshot_days == 7
    assert webhook_origin(config.webhook) == "https://hooks.example.com/..."
    assert alert_config().rules("any") == AlertRules() and not AlertRules().active
    for flags, words in [
        ({"unmasked_share": 120}, "unmasked_share a percentage"),
        ({"webhook": "ftp://user:pw@host/x"}, "not an http(s):// URL"),
        ({"snapshot_days": 0}, "snapshot_days"),
        ({"loudness": 3}, "Unknown alert settings: loudness"),
    ]:
        with pytest.raises(AlertConfigError, match=re.escape(words)) as error:
            alert_config(**flags)
        assert "pw" not in str(error.value)


def test_snapshots_are_kept_per_camera_and_pruned_after_their_retention(tmp_path: Path) -> None:
    event = AlertEvent("door", T0, UNMASKED_PERSON, "Camera door: a person without mask.", 1.0)
    name = save_snapshot(tmp_path, event, b"\xff\xd8jpeg")
    assert name == "door/20261203T090000000000-unmasked_person.jpg"
    assert (tmp_path / name).read_bytes() == b"\xff\xd8jpeg"
    old = save_snapshot(tmp_path, AlertEvent("hall", T0 - timedelta(days=9), "x", "", 1.0), b"x")
    ten_days = time.time() - 10 * 86400
    os.utime(tmp_path / old, (ten_days, ten_days))
    assert prune_snapshots(tmp_path, days=7) == 1
    assert not (tmp_path / old).exists() and (tmp_path / name).exists()


def event(i: int) -> AlertEvent:
    return AlertEvent("door", T0 + timedelta(seconds=i), UNMASKED_PERSON, f"alert {i}", 1.0)


def test_webhook_retries_with_back_off_until_the_receiver_takes_it(caplog) -> None:
    caplog.set_level(logging.INFO, "facemask.records.alerts")
    with webhook_receiver(fail_first=2, path="/hook/s3cretToken") as receiver:
        url = receiver.url.replace("http://", "http://bot:pa55@")
        sender = WebhookSender(url, retries=3, backoff=(0.1, 1.0)).start()
        started = time.monotonic()
        assert sender.send(event(1))  # returns at once: the thread delivers
        assert time.monotonic() - started < 0.05
        assert wait_for(lambda: sender.sent == 1, 10)
        sender.close()
    assert [status for status, _ in receiver.requests] == [503, 503, 200]
    body = receiver.delivered[0]
    assert body == {"camera": "door", "at": "2026-12-03T09:00:01Z", "rule": UNMASKED_PERSON,
                    "message": "alert 1", "value": 1.0, "snapshot": ""}  # fmt: skip
    assert receiver.auth[-1] == "Basic " + base64.b64encode(b"bot:pa55").decode()
    assert sender.failed == 0 and "retrying" in caplog.text
    assert "s3cretToken" not in caplog.text and "pa55" not in caplog.text


def test_webhook_gives_up_after_its_retries_and_rate_limits() -> None:
    with webhook_receiver(fail_first=100) as receiver:
        sender = WebhookSender(receiver.url, retries=1, backoff=(0.05, 0.1)).start()
        sender.send(event(1))
        assert wait_for(lambda: sender.failed == 1, 10)
        assert len(receiver.requests) == 2  # one try and one retry
        sender.close()
    with webhook_receiver() as receiver:
        sender = WebhookSender(receiver.url, per_minute=3).start()
        sent = [sender.send(event(i)) for i in range(7)]
        assert sent == [True] * 3 + [False] * 4 and sender.limited == 4
        assert wait_for(lambda: sender.sent == 3, 10)
        sender.close()
    assert [b["message"] for b in receiver.delivered] == ["alert 0", "alert 1", "alert 2"]
