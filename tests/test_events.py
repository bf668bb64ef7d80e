"""The training progress events: one schema for the trainer, the run store and the page."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import pytest

from facemask import events
from facemask.events import (
    Batch,
    Cancelled,
    Done,
    Epoch,
    EpochBegin,
    Error,
    EventLog,
    RunStatus,
    Stage,
    StageProgress,
    fold,
    parse,
    read_events,
    status_view,
    to_record,
)

EXAMPLES = [
    Stage("data", "Checking the images in mini-dataset"),
    StageProgress("data", 12, 48),
    EpochBegin("head", 1, 6),
    Batch("head", 1, 6, 10, 40, eta_s=65.0, logs={"loss": 0.3, "accuracy": 0.9}),
    Epoch("head", 1, 6, {"loss": 0.5, "val_loss": 0.4}, seconds=40.0, images_per_s=60.0),
    Done("20260101-000000-mobilenetv2", 691.9),
    Cancelled("Stopped; resume it to continue from the last epoch."),
    Error("Class without_mask has no image files."),
]


def test_every_kind_round_trips_through_json(tmp_path: Path) -> None:
    assert {e.kind for e in EXAMPLES} == set(events.KINDS)
    log = EventLog(tmp_path)
    for event in EXAMPLES:
        log.emit(event)
    assert read_events(tmp_path) == EXAMPLES
    first = json.loads((tmp_path / "events.jsonl").read_text().splitlines()[0])
    assert first["type"] == "stage" and isinstance(first["time"], float)


def test_a_record_missing_a_field_is_refused_and_skipped(tmp_path: Path) -> None:
    record = to_record(Batch("head", 1, 6, 10, 40, eta_s=1.0, logs={}))
    record["eta_seconds"] = record.pop("eta_s")  # a renamed field
    with pytest.raises(ValueError, match="batch event without eta_s"):
        parse(record)
    with pytest.raises(ValueError, match="unknown event type"):
        parse({"type": "finished"})
    good = json.dumps(to_record(EXAMPLES[0]))
    torn = json.dumps(to_record(EXAMPLES[1]))[:20]
    (tmp_path / "events.jsonl").write_text(f"{good}\n{json.dumps(record)}\n{torn}")
    assert read_events(tmp_path) == [EXAMPLES[0]]


def test_a_real_run_writes_only_events_of_the_schema(tiny_model_dir: Path) -> None:
    lines = (tiny_model_dir / "events.jsonl").read_text().splitlines()
    parsed = read_events(tiny_model_dir)
    assert len(parsed) == len(lines) > 5  # every line the trainer wrote parses
    kinds = [e.kind for e in parsed]
    assert kinds[0] == "stage" and kinds[-1] == "done"
    assert {"progress", "epoch_begin", "batch", "epoch"} <= set(kinds)
    for record in map(json.loads, lines):  # no field the schema does not know
        cls = events.KINDS[record["type"]]
        assert set(record) == {"time", "type"} | {f.name for f in fields(cls)}


def test_fold_keeps_the_latest_of_each_kind_and_words_it() -> None:
    in_order = [EXAMPLES[i] for i in (0, 1, 2, 4, 3)]  # stage, progress, epoch 1, its batch
    status = fold("run", Path("run"), False, in_order)
    status.running = True
    assert status.events == 5 and status.last == EXAMPLES[3] and status.fitting
    assert (status.stage, status.progress, status.epoch) == tuple(EXAMPLES[i] for i in (0, 1, 4))
    view = status_view(status)
    assert view.stage == "Training the new head (base frozen)"
    assert view.bar == (0.25, "Phase head · epoch 1/6 · batch 10/40 · ETA of the epoch 1 min 05 s")
    assert view.now == "Now: loss 0.3000 · accuracy 0.9000"
    assert view.last_epoch == (
        "Last finished epoch: head 1/6 in 40 s (60 images/s) · loss 0.5000 · val loss 0.4000"
    )
    assert view.warning is None


def test_a_run_that_stopped_says_why_without_progress_bars() -> None:
    cancelled = fold("run", Path("run"), False, [*EXAMPLES[:4], EXAMPLES[6]])
    view = status_view(cancelled)
    assert view.warning == EXAMPLES[6].message and view.bar is None and view.now is None
    killed = status_view(fold("run", Path("run"), False, EXAMPLES[:2]))
    assert killed.stage == EXAMPLES[0].message and killed.bar is None
    assert killed.warning == "The training process ended without finishing (killed or crashed)."
    cropping = fold("run", Path("run"), False, EXAMPLES[:2])
    cropping.running = True
    assert status_view(cropping).bar == (0.25, "data: 12 of 48")
    assert status_view(RunStatus("new", Path("new"), False)).stage == (
        "stopped before its first step"
    )


def test_eta_text() -> None:
    assert [events.eta_text(s) for s in (None, 5.9, 65, 3600)] == [
        "—", "5 s", "1 min 05 s", "60 min 00 s"
    ]  # fmt: skip
