"""The Monitor page through the real app (AppTest): what it says with no cameras, and what it
shows from a watcher's live folder and a records database."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from camera_clips import jpeg
from streamlit.testing.v1 import AppTest

from facemask.records import AlertEvent, PersonRecord, RecordStore, StatusChange
from facemask.records.alerts import save_snapshot
from facemask.records.store import Batch, minute_of
from harness.clips import face_canvas

APP = Path(__file__).resolve().parent.parent / "app.py"
PAGE = "app_pages/monitor.py"


@pytest.fixture
def places(tmp_path: Path, monkeypatch) -> dict[str, Path]:
    paths = {"db": tmp_path / "records.db", "live": tmp_path / "live", "shots": tmp_path / "s"}
    monkeypatch.setenv("FACEMASK_DB", f"sqlite:///{paths['db']}")
    monkeypatch.setenv("FACEMASK_LIVE_DIR", str(paths["live"]))
    monkeypatch.setenv("FACEMASK_SNAPSHOTS", str(paths["shots"]))
    return paths


def open_page() -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.switch_page(PAGE).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_with_no_cameras_the_page_says_how_to_add_one(places) -> None:
    at = open_page()
    (info,) = at.info
    assert "facemask watch --camera" in info.value and "--cameras cameras.toml" in info.value
    assert not places["db"].exists()  # looking does not create a database


def test_page_shows_live_cameras_share_people_and_events(places) -> None:
    now = datetime.now(UTC)
    store = RecordStore(f"sqlite:///{places['db']}")
    batch = Batch()
    for i, label in enumerate(["with_mask", "with_mask", "with_mask", "without_mask"]):
        at = now - timedelta(minutes=2, seconds=i)
        batch.people[("door", f"r:{i}")] = PersonRecord("door", f"r:{i}", at, at, label,
                                                        {label: 4}, 4)  # fmt: skip
        batch.faces[("door", minute_of(at), label)] += 4
    batch.statuses.append(StatusChange("door", now - timedelta(minutes=3), "online"))
    alert = AlertEvent("door", now - timedelta(minutes=2), "unmasked_person",
                       "Camera door: a person without mask.", 1.0)  # fmt: skip
    shot = save_snapshot(places["shots"], alert, jpeg(face_canvas("without_mask_00597.jpg")))
    batch.alerts += [replace(alert, snapshot=shot),
                     AlertEvent("door", now - timedelta(minutes=9), "unmasked_share",
                                "Camera door: 60% of 5 people ...", 0.6)]  # fmt: skip
    store.write(batch)
    store.close()
    places["live"].mkdir()
    (places["live"] / "door.jpg").write_bytes(jpeg(face_canvas("with_mask_00002.jpg")))
    status = {"camera": "door", "state": "online", "detail": "", "analysed_fps": 4.9,
              "frame_age_s": 0.12, "reconnects": 1, "frames": 900, "rejected": 0,
              "analysed": 300, "updated": time.time()}  # fmt: skip
    (places["live"] / "door.json").write_text(json.dumps(status))
    (places["live"] / "hall.json").write_text(json.dumps({**status, "updated": time.time() - 60}))
    (places["live"] / "dock.json").write_text(json.dumps({
        **status, "records_error": "The records database x refused a write: database is locked."
    }))  # fmt: skip

    at = open_page()
    markdown = " ".join(m.value for m in at.main.get("markdown"))
    assert "**door** :green[● online]" in markdown and "**hall** :gray[● no watcher]" in markdown
    assert len(at.main.get("image")) == 2  # door's frame (hall, dock have none), the snapshot
    assert [w.value for w in at.warning] == [
        "The records database x refused a write: database is locked. "
        "The watcher keeps the counts and retries."
    ]
    captions = " ".join(c.value for c in at.main.get("caption"))
    assert "4.9 FPS analysed · frame age 0.12 s · 1 reconnects" in captions
    people, alerts, events = (d.value for d in at.dataframe)
    assert alerts["rule"].tolist() == ["unmasked person", "unmasked share"]
    assert alerts["message"][0] == "Camera door: a person without mask."
    assert people.loc["door"].to_dict() == {"with_mask": 3, "without_mask": 1}
    assert events["event"].tolist().count("person: with_mask") == 3
    assert "online" in events["event"].tolist()
    assert len(at.main.get("plotly_chart")) == 1
    assert [b.label for b in at.main.get("download_button")] == [
        "Counts per minute (CSV)", "Counts per minute (Parquet)"
    ]  # fmt: skip
