"""One training at a time, for real: the launch is atomic across threads and processes, run ids
are unique, a pid file names a training only when its process is that training, and finished
children are reaped."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from facemask.errors import RunError
from facemask.files import PID_FILE
from facemask.runs import RunStore, pid_record

DEADLINE_S = 30


def _args(store: RunStore, mini_dataset: Path) -> list[str]:
    return ["--data", str(mini_dataset), "--input-size", "32", "--epochs-head", "50",
            "--epochs-fine", "0", "--weights", "none", "--no-tfjs",
            "--runs-dir", str(store.root)]  # fmt: skip


def _state(pid: int) -> str | None:
    """The process's state letter in /proc (None once it is gone: reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2]


def _wait_gone(pid: int) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while _state(pid) is not None:
        assert time.monotonic() < deadline, f"process {pid} is still {_state(pid)}"
        time.sleep(0.1)


def _stop(store: RunStore) -> None:
    running = store.active()
    if running:
        os.kill(running[1], signal.SIGKILL)
        _wait_gone(running[1])


def _launch_in_process(root: str, models: str, args: list[str], out) -> None:
    try:
        out.put(("ok", RunStore(root, models).launch(args, None, "mobilenetv2")))
    except RunError as exc:
        out.put(("refused", str(exc)))


def test_concurrent_launches_start_one_training(tmp_path: Path, mini_dataset: Path) -> None:
    """Four threads of one server and two other processes press Start together."""
    store = RunStore(tmp_path / "runs", tmp_path / "models")
    args = _args(store, mini_dataset)
    results: list[tuple[str, object]] = []
    barrier = threading.Barrier(4)

    def press_start() -> None:
        barrier.wait()
        try:
            results.append(("ok", store.launch(args, None, "mobilenetv2")))
        except RunError as exc:
            results.append(("refused", str(exc)))

    queue = multiprocessing.get_context("fork").Queue()
    others = [
        multiprocessing.get_context("fork").Process(
            target=_launch_in_process, args=(str(store.root), str(store.models_dir), args, queue)
        )
        for _ in range(2)
    ]
    threads = [threading.Thread(target=press_start) for _ in range(4)]
    try:
        for worker in (*others, *threads):
            worker.start()
        for thread in threads:
            thread.join(DEADLINE_S)
        for process in others:
            process.join(DEADLINE_S)
            results.append(queue.get(timeout=DEADLINE_S))
        started = [r for r in results if r[0] == "ok"]
        assert len(results) == 6 and len(started) == 1, results
        assert all("one training at a time" in str(r[1]) for r in results if r[0] == "refused")
        assert len(store.in_progress()) == 1  # one run folder, one id
        assert store.active() is not None
    finally:
        _stop(store)


def test_run_ids_are_unique_within_one_second(tmp_path: Path, mini_dataset: Path) -> None:
    store = RunStore(tmp_path / "runs", tmp_path / "models")
    args = _args(store, mini_dataset)
    pids = []
    try:
        for _ in range(3):
            pids.append(store.launch(args, None, "mobilenetv2"))
            _stop(store)
    finally:
        _stop(store)
    names = [p.name for p in store.in_progress()]
    assert len(set(names)) == 3, names


def test_a_cancelled_training_is_reaped_not_left_a_zombie(
    tmp_path: Path, mini_dataset: Path
) -> None:
    store = RunStore(tmp_path / "runs", tmp_path / "models")
    pid = store.launch(_args(store, mini_dataset), "cancel-me")
    record = json.loads((store.partial_dir("cancel-me") / PID_FILE).read_text())
    assert record["pid"] == pid and "train" in record["command"] and record["start"]
    assert store.active() == ("cancel-me", pid)
    assert store.cancel("cancel-me")
    _wait_gone(pid)  # not a zombie ("Z") waiting for the next launch
    assert store.active() is None


@pytest.fixture
def stranger():
    """An unrelated process whose pid a stale pid file names (as after a crash and pid reuse)."""
    process = subprocess.Popen(["sleep", "60"])
    yield process
    process.kill()
    process.wait()


@pytest.mark.parametrize("kind", ["bare pid", "record of the stranger", "record, other start"])
def test_a_stale_pid_file_never_names_a_stranger(tmp_path: Path, stranger, kind) -> None:
    store = RunStore(tmp_path / "runs", tmp_path / "models")
    partial = store.partial_dir("crashed")
    partial.mkdir(parents=True)
    record = pid_record(stranger.pid)
    if kind == "bare pid":
        (partial / PID_FILE).write_text(str(stranger.pid))
    elif kind == "record of the stranger":
        (partial / PID_FILE).write_text(json.dumps(record))
    else:  # a training's command line once had this pid, but not this process
        record["start"] = str(int(record["start"]) - 1)
        record["command"] = ["python", "-m", "facemask", "train", "--run-id", "crashed"]
        (partial / PID_FILE).write_text(json.dumps(record))
    assert store.active() is None  # not shown as training, new trainings not refused
    assert store.cancel("crashed") is False
    store.discard("crashed")
    assert stranger.poll() is None  # no signal reached it
    assert not partial.exists()
