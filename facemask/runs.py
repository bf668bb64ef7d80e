"""The run store: training runs on disk, written atomically, and the models the app can serve.

Layout (docs/architecture.md): runs/<id>/ holds a finished run (the model-directory contract plus
config.json, history.csv, metrics.json, events.jsonl). A run in progress lives in
runs/.partial/<id>/ and appears in listings only once it is renamed into place, so a killed
run never shows up as complete; it can be resumed from its last checkpoint.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from facemask import events
from facemask.classify import read_card
from facemask.errors import ModelError, RunError
from facemask.files import (
    CARD_FILE,
    LOG_FILE,
    PID_FILE,
    REPO_ROOT,
    STATE_FILE,
    is_servable,
    write_json,
)

MODELS_DIR = Path(os.environ.get("FACEMASK_MODELS_DIR", REPO_ROOT / "models"))
RUNS_DIR = Path(os.environ.get("FACEMASK_RUNS_DIR", REPO_ROOT / "runs"))
DEFAULT_MODEL = "mobilenetv2"
LOCK_FILE = ".launch.lock"
NOT_SERVABLE = "not_servable"
"""A card key: why the app must not serve that model (facemask.data.unmeasured_reason)."""

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def safe_name(name: str) -> str:
    """Check that a model or run name is a plain folder name (no path tricks)."""
    if not isinstance(name, str) or not _NAME.match(name) or ".." in name:
        raise ModelError(f"{name!r} is not a valid model name (letters, digits, '.', '_', '-').")
    return name


@dataclass(frozen=True)
class ModelEntry:
    """A servable model: shipped under models/ or a finished run under runs/."""

    name: str
    path: Path
    source: str  # "shipped" | "run"
    card: dict[str, Any]

    @property
    def title(self) -> str:
        arch = self.card.get("architecture", "?")
        metrics = self.card.get("metrics")
        test = metrics.get("test") if isinstance(metrics, dict) else None
        acc = test.get("accuracy") if isinstance(test, dict) else None
        tail = f", test acc {acc:.1%}" if isinstance(acc, (int, float)) else ""
        return f"{self.name} ({self.source}: {arch}{tail})"


def _process(pid: int) -> tuple[str, list[str]] | None:
    """(start time, command line) of a live process; None when it is gone or a zombie.

    Linux: read from /proc (the start time is in clock ticks since boot, field 22 of stat).
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # the name in (...) may hold spaces
    if fields[0] in ("Z", "X"):
        return None
    return fields[19], cmdline.decode(errors="replace").split("\0")


def _is_training(cmdline: list[str], run_id: str | None) -> bool:
    """A `facemask train` command line (of `run_id`, when given)."""
    text = " ".join(cmdline)
    if "facemask" not in text or "train" not in cmdline:
        return False
    return run_id is None or run_id in cmdline


def pid_record(pid: int) -> dict[str, Any] | None:
    """What a pid file holds: the pid, the process's start time and its command line."""
    found = _process(pid)
    return None if found is None else {"pid": pid, "start": found[0], "command": found[1]}


def trusted_pid(pid_file: Path, run_id: str) -> int | None:
    """The pid in a run's pid file, only when that process is the training it names.

    A pid file outlives its process after a crash, and the pid may then belong to a stranger:
    the process must be alive, have the recorded start time, and run `facemask train`.
    A bare pid (no record) must run `facemask train ... <run id>`.
    """
    try:
        text = pid_file.read_text(errors="replace").strip()
    except OSError:
        return None
    try:
        record = json.loads(text)
    except ValueError:
        record = int(text) if text.isdigit() else None
    if isinstance(record, int):
        found = _process(record)
        return record if found and _is_training(found[1], run_id) else None
    if not isinstance(record, dict) or not isinstance(record.get("pid"), int):
        return None
    found = _process(record["pid"])
    if found is None or found[0] != record.get("start") or not _is_training(found[1], None):
        return None
    return record["pid"]


class RunStore:
    """Finished runs, runs in progress, and the training subprocess."""

    def __init__(
        self, root: str | os.PathLike = RUNS_DIR, models_dir: str | os.PathLike = MODELS_DIR
    ):
        self.root = Path(root)
        self.models_dir = Path(models_dir)
        self.partial_root = self.root / ".partial"

    # -- naming and paths ------------------------------------------------------------
    def new_id(self, backbone: str) -> str:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        run_id = f"{stamp}-{backbone}"
        n = 1
        while (self.root / run_id).exists() or (self.partial_root / run_id).exists():
            n += 1
            run_id = f"{stamp}-{backbone}-{n}"
        return run_id

    def run_dir(self, run_id: str) -> Path:
        """A finished run's folder (RunError if there is none)."""
        path = self.root / safe_name(run_id)
        if not (path / CARD_FILE).is_file():
            raise RunError(f"There is no finished run called {run_id!r} in {self.root}.")
        return path

    def partial_dir(self, run_id: str) -> Path:
        return self.partial_root / safe_name(run_id)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """The store's launch lock (fcntl, so it holds across processes and sessions)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / LOCK_FILE).open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _refuse_if_busy(self) -> None:
        running = self.active()
        if running and running[1] != os.getpid():
            raise RunError(f"Run {running[0]} is already training; one training at a time.")

    def create(self, run_id: str) -> Path:
        """The folder a new run trains in, claimed by this process (launch() may have made it,
        with this process's pid). RunError when the run exists or another training runs."""
        with self._locked():
            path = self.partial_dir(run_id)
            if (self.root / run_id).exists() or (path / STATE_FILE).exists():
                raise RunError(
                    f"A run called {run_id!r} already exists; resume it or pick another id."
                )
            self._refuse_if_busy()
            path.mkdir(parents=True, exist_ok=True)
            self._write_pid(path, os.getpid())
        return path

    def claim(self, run_id: str) -> Path:
        """Mark an unfinished run as trained by this process (resume); RunError when another
        training runs."""
        with self._locked():
            path = self.partial_dir(run_id)
            self._refuse_if_busy()
            self._write_pid(path, os.getpid())
        return path

    @staticmethod
    def _write_pid(run_dir: Path, pid: int) -> None:
        record = pid_record(pid) or {"pid": pid}
        write_json(run_dir / PID_FILE, record)

    def finalize(self, run_id: str) -> Path:
        """Move a completed run into place atomically (one rename)."""
        src, dst = self.partial_dir(run_id), self.root / safe_name(run_id)
        os.replace(src, dst)  # NOTE: rename first: a kill before it leaves a resumable run
        for leftover in (PID_FILE, STATE_FILE):
            (dst / leftover).unlink(missing_ok=True)
        return dst

    # -- listings --------------------------------------------------------------------
    def finished(self) -> list[Path]:
        """Finished runs, newest first."""
        if not self.root.is_dir():
            return []
        runs = [
            p
            for p in self.root.iterdir()
            if not p.name.startswith(".") and (p / CARD_FILE).is_file()
        ]
        return sorted(runs, key=lambda p: p.name, reverse=True)

    def in_progress(self) -> list[Path]:
        """Runs not finished: training now, cancelled or killed (resumable)."""
        if not self.partial_root.is_dir():
            return []
        return sorted(
            (p for p in self.partial_root.iterdir() if p.is_dir() and _NAME.match(p.name)),
            reverse=True,
        )

    def models(self) -> list[ModelEntry]:
        """Every servable model: shipped first, then finished runs (newest first)."""
        entries = []
        shipped = sorted(self.models_dir.iterdir()) if self.models_dir.is_dir() else []
        for path in shipped:
            if (path / CARD_FILE).is_file() and is_servable(path):
                entries.append(self._entry(path, "shipped"))
        for path in self.finished():
            if is_servable(path):
                entries.append(self._entry(path, "run"))
        return [e for e in entries if e is not None and not e.card.get(NOT_SERVABLE)]

    def _entry(self, path: Path, source: str) -> ModelEntry | None:
        try:
            return ModelEntry(path.name, path, source, read_card(path))
        except ModelError:
            return None

    def _carded(self) -> list[Path]:
        """Shipped model folders and finished runs that have a card file."""
        dirs = sorted(self.models_dir.iterdir()) if self.models_dir.is_dir() else []
        dirs += self.finished()
        return [p for p in dirs if (p / CARD_FILE).is_file()]

    def compared_runs(self) -> list[Path]:
        """Everything with a readable card: shipped model cards and finished runs."""
        return [p for p in self._carded() if self._entry(p, "") is not None]

    def not_servable(self) -> list[tuple[str, str]]:
        """(name, reason) of each finished run the app does not serve (its card says why)."""
        entries = (self._entry(path, "run") for path in self.finished())
        return [
            (e.name, str(e.card[NOT_SERVABLE])) for e in entries if e and e.card.get(NOT_SERVABLE)
        ]

    def unreadable(self) -> list[tuple[str, str]]:
        """(name, reason) of each model folder or finished run whose card cannot be read: the
        listings skip them, and the page says so."""
        found = []
        for path in self._carded():
            try:
                read_card(path)
            except ModelError as exc:
                found.append((path.name, str(exc)))
        return found

    def resolve_model(self, name: str) -> Path:
        """Model folder for a name chosen in the UI: only inside models/ or runs/."""
        name = safe_name(name)
        for root in (self.models_dir, self.root):
            path = (root / name).resolve()
            if path.parent == root.resolve() and (path / CARD_FILE).is_file():
                entry = self._entry(path, "")
                if entry is not None and entry.card.get(NOT_SERVABLE):
                    raise ModelError(f"{name}: {entry.card[NOT_SERVABLE]}")
                return path
        raise ModelError(f"There is no model called {name!r} in {self.models_dir} or {self.root}.")

    # -- the training subprocess -----------------------------------------------------
    def active(self) -> tuple[str, int] | None:
        """(run id, pid) of the training running now, if any. One at a time.

        Only a pid file whose process is that training counts (`trusted_pid`)."""
        for path in self.in_progress():
            pid = trusted_pid(path / PID_FILE, path.name)
            if pid is not None:
                return path.name, pid
        return None

    def launch(self, args: list[str], run_id: str | None = None, backbone: str = "run") -> int:
        """Start `facemask train ARGS --run-id RUN_ID` in its own process; returns its pid.

        Atomic: under the store's lock (across processes) the check that nothing trains, the
        new run's id (when run_id is None: a fresh, unique one for `backbone`), the spawn and
        the pid record happen as one step. The child is reaped when it ends (no zombie).
        """
        with self._locked():
            running = self.active()
            if running:
                raise RunError(f"Run {running[0]} is already training; one training at a time.")
            if run_id is None:
                run_id = self.new_id(backbone)
            run_dir = self.partial_dir(run_id)
            run_dir.mkdir(parents=True, exist_ok=True)
            env = {**os.environ, "PYTHONUNBUFFERED": "1", "FACEMASK_RUNS_DIR": str(self.root)}
            with (run_dir / LOG_FILE).open("ab") as log:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "facemask", "train", *args, "--run-id", run_id],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=env,
                    start_new_session=True,
                )
            self._write_pid(run_dir, proc.pid)
        # NOTE: a thread per child waits for it, so a finished or cancelled training is reaped
        # at once rather than left a zombie until the next launch.
        threading.Thread(target=proc.wait, name=f"reap-{run_id}", daemon=True).start()
        return proc.pid

    def cancel(self, run_id: str) -> bool:
        """Ask a training to stop: it stops at once, keeps the checkpoint of its last finished
        epoch and stays resumable from it."""
        running = self.active()
        if not running or running[0] != run_id:
            return False
        os.kill(running[1], signal.SIGTERM)
        return True

    def discard(self, run_id: str) -> None:
        """Delete an unfinished run that is not training."""
        with self._locked():
            running = self.active()
            if running and running[0] == run_id:
                raise RunError(f"Run {run_id} is training; cancel it first.")
            shutil.rmtree(self.partial_dir(run_id), ignore_errors=True)

    def status(self, run_id: str) -> events.RunStatus:
        """Where a run stands, folded from its progress events (facemask.events)."""
        path = self.partial_dir(run_id)
        if not path.is_dir():
            path = self.root / safe_name(run_id)
        found, skipped = events.read_events_counted(path)
        status = events.fold(run_id, path, path.parent == self.root, found, skipped)
        running = self.active()
        status.running = bool(running and running[0] == run_id)
        return status
