"""Training survives `kill -9`: a run killed mid-epoch is never listed as finished, `facemask
train --resume` completes it, and at most the epoch that was running is trained again."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import has_imagenet_weights
from test_train import _wait_for

from facemask import history
from facemask.events import EpochBegin, read_events
from facemask.files import STATE_FILE, read_json
from facemask.runs import RunStore

EPOCHS = 5
WEIGHTS = "imagenet" if has_imagenet_weights() else "none"
"""A frozen ImageNet base trains fastest (the head only); from scratch where it is absent."""


def test_sigkill_mid_epoch_loses_at_most_that_epoch(tmp_path: Path, mini_dataset: Path) -> None:
    store = RunStore(tmp_path / "runs", tmp_path / "models")
    args = ["--data", str(mini_dataset), "--input-size", "64", "--epochs-head", str(EPOCHS),
            "--epochs-fine", "0", "--weights", WEIGHTS, "--batch-size", "4", "--no-tfjs",
            "--runs-dir", str(store.root)]  # fmt: skip
    pid = store.launch(args, "killed")  # as the Training page starts one
    partial = store.partial_dir("killed")

    def in_epoch(n: int) -> bool:
        return any(isinstance(e, EpochBegin) and e.epoch >= n for e in read_events(partial))

    _wait_for(lambda: in_epoch(2), 900, "the second epoch to begin")
    time.sleep(0.3)  # into the epoch: between its checkpoints
    os.kill(pid, signal.SIGKILL)
    _wait_for(lambda: not Path(f"/proc/{pid}").exists(), 30, "the killed training to be reaped")

    # Nothing half-written is listed; the run waits in runs/.partial, resumable.
    assert store.finished() == [] and store.models() == []
    assert [p.name for p in store.in_progress()] == ["killed"] and store.active() is None
    state = read_json(partial / STATE_FILE)
    done = int(state["epoch"])
    begun = max(e.epoch for e in read_events(partial) if isinstance(e, EpochBegin))
    assert done >= begun - 1 >= 1  # only the epoch that was running is lost
    assert done < EPOCHS, "the kill came too late to test anything"
    rows = [int(row["epoch"]) for row in history.read(partial)]
    assert rows == list(range(1, done + 1))

    resumed = subprocess.run(
        [sys.executable, "-m", "facemask", "train", "--resume", "--run-id", "killed",
         "--runs-dir", str(store.root)],
        capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]

    run_dir = store.root / "killed"
    assert store.finished() == [run_dir] and store.in_progress() == []
    assert [m.name for m in store.models()] == ["killed"]
    assert [int(row["epoch"]) for row in history.read(run_dir)] == list(range(1, EPOCHS + 1))
    begins = collections.Counter(e.epoch for e in read_events(run_dir) if isinstance(e, EpochBegin))
    assert set(begins) == set(range(1, EPOCHS + 1))
    assert sum(n - 1 for n in begins.values()) <= 1  # one epoch trained twice, at most
    assert (run_dir / "model.tflite").is_file() and not (run_dir / STATE_FILE).exists()
