"""Bad records hide nothing: a byte or line of a run's files that cannot be read skips that
record (or that run) with a note, and every other run stays listed on the Training page."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from facemask import events, history
from facemask.data import CROP_STORE_SIZE, extract_crops, scan_dataset
from facemask.detect import TRAINING as TRAINING_DETECTOR
from facemask.detect import FaceDetector
from facemask.runs import RunStore

APP = Path(__file__).resolve().parent.parent / "app.py"
PAGE = "app_pages/training.py"
GOOD_STAGE = json.dumps({"time": 1.0, "type": "stage", "stage": "data", "message": "Checking"})


@pytest.fixture
def store(tmp_path: Path, monkeypatch, shipped_model_dir: Path) -> RunStore:
    """A store with one good finished run and runs whose records are damaged in every way the
    issue measured (non-UTF-8 bytes, JSON that is not an object, wrong field types, a card that
    is not JSON or not an object, a history with bad bytes)."""
    runs, models = tmp_path / "runs", tmp_path / "models"
    models.mkdir()
    keep = shutil.ignore_patterns("tfjs*", "model.keras")
    for name in ("good", "bad-history", "bad-card-bytes", "bad-card-list"):
        shutil.copytree(shipped_model_dir, runs / name, ignore=keep)
    history = (runs / "bad-history" / "history.csv").read_bytes()
    (runs / "bad-history" / "history.csv").write_bytes(history + b"\xff\xfe,\x00oops\n7,x,y\n")
    (runs / "bad-card-bytes" / "card.json").write_bytes(b"\xff\xfe{not json")
    (runs / "bad-card-list" / "card.json").write_text("[1, 2, 3]\n")
    partial = runs / ".partial"
    damaged = {
        "bytes": b"\xff\xfe\xfa not utf-8\n" + GOOD_STAGE.encode() + b"\n",
        "not-object": b'[1, 2]\n"text"\n42\nnull\n' + GOOD_STAGE.encode() + b"\n",
        "wrong-types": (
            b'{"type": "batch", "phase": "head", "epoch": "1", "epochs": 2, "batch": "x", '
            b'"batches": null, "eta_s": "soon", "logs": [1]}\n'
            b'{"type": "progress", "stage": "data", "done": 1, "total": {}}\n'
            + GOOD_STAGE.encode()
            + b"\n"
        ),
    }
    for name, data in damaged.items():
        (partial / name).mkdir(parents=True)
        (partial / name / "events.jsonl").write_bytes(data)
        (partial / name / "config.json").write_bytes(b"\xff not json")
    (partial / "pid-garbage").mkdir()
    (partial / "pid-garbage" / "train.pid").write_bytes(b"\xff\x00{")
    monkeypatch.setenv("FACEMASK_RUNS_DIR", str(runs))
    monkeypatch.setenv("FACEMASK_MODELS_DIR", str(models))
    return RunStore(runs, models)


def test_unreadable_event_lines_are_skipped_and_counted(store: RunStore) -> None:
    for name in ("bytes", "not-object", "wrong-types"):
        found, skipped = events.read_events_counted(store.partial_dir(name))
        assert [type(e) for e in found] == [events.Stage]
        assert skipped >= 1
        view = events.status_view(store.status(name))
        assert view.note and "unreadable line" in view.note
        assert view.stage == "Checking"
    assert store.active() is None  # a pid file of garbage names no training


def test_history_with_bad_bytes_keeps_its_good_rows(store: RunStore) -> None:
    good, damaged = history.read(store.root / "good"), history.read(store.root / "bad-history")
    assert good and damaged == good


def test_a_bad_card_hides_only_its_own_run(store: RunStore) -> None:
    assert sorted(m.name for m in store.models()) == ["bad-history", "good"]
    assert sorted(p.name for p in store.compared_runs()) == ["bad-history", "good"]
    assert sorted(name for name, _ in store.unreadable()) == ["bad-card-bytes", "bad-card-list"]


def test_training_page_lists_every_readable_run_despite_bad_records(store: RunStore) -> None:
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.switch_page(PAGE).run()
    assert not at.exception, [e.value for e in at.exception]
    errors = [e.value for e in at.error]
    assert not any("Something went wrong" in e for e in errors), errors
    text = " ".join(m.value for m in at.markdown)
    for name in ("bytes", "not-object", "wrong-types", "pid-garbage"):
        assert f"`{name}`" in text  # every unfinished run is listed
    captions = " ".join(c.value for c in at.caption)
    assert "unreadable line(s) of events.jsonl were skipped" in captions
    assert "bad-card-bytes" in captions and "bad-card-list" in captions  # said, not hidden
    assert len(at.multiselect(key="compare_models").options) == 2  # good and bad-history


def test_a_damaged_crop_cache_entry_is_recomputed(tmp_path: Path, mini_dataset: Path) -> None:
    scan = scan_dataset(mini_dataset, limit_per_class=1)
    detector = FaceDetector(TRAINING_DETECTOR)
    first = extract_crops(scan.items, detector, cache_dir=tmp_path)
    cache = tmp_path / "crops"
    for meta in cache.glob("*.json"):
        meta.write_bytes(b"\xff\xfe[")
    for png in cache.glob("*.png"):
        png.write_bytes(b"not a png")
    again = extract_crops(scan.items, detector, cache_dir=tmp_path)
    assert again.crops.shape == (2, CROP_STORE_SIZE, CROP_STORE_SIZE, 3)
    assert (again.crops == first.crops).all() and (again.face_found == first.face_found).all()
    assert all(
        json.loads(m.read_text())["face_found"] in (True, False) for m in cache.glob("*.json")
    )
