"""The run store: training runs on disk, written atomically, and the models the app can serve.

Layout (docs/architecture.md): runs/<id>/ holds a finished run (the model-directory contract plus
config.json, history.csv, metrics.json, events.jsonl). A run in progress lives in
runs/.partial/<id>/ and appears in listings only once it is renamed into place, so a killed
run never shows up as complete; it can be resumed from its last checkpoint.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
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
)

MODELS_DIR = Path(os.environ.get("FACEMASK_MODELS_DIR", REPO_ROOT / "models"))
RUNS_DIR = Path(os.environ.get("FACEMASK_RUNS_DIR", REPO_ROOT / "runs"))
DEFAULT_MODEL = "mobilenetv2"

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
        acc = self.card.get("metrics", {}).get("test", {}).get("accuracy")
        tail = f", test acc {acc:.1%}" if isinstance(acc, (int, float)) else ""
        return f"{self.name} ({self.source}: {arch}{tail})"


def _is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child still answers kill(0)
        status = Path(f"/proc/{pid}/stat").read_text().split()[2]
        return status != "Z"
    except OSError:
        return True


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

    def create(self, run_id: str) -> Path:
        """The folder a new run trains in (launch() may have made it already, with a pid)."""
        path = self.partial_dir(run_id)
        if (self.root / run_id).exists() or (path / STATE_FILE).exists():
            raise RunError(f"A run called {run_id!r} already exists; resume it or pick another id.")
        path.mkdir(parents=True, exist_ok=True)
        (path / PID_FILE).write_text(str(os.getpid()))
        return path

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
        return sorted((p for p in self.partial_root.iterdir() if p.is_dir()), reverse=True)

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
        return [e for e in entries if e is not None]

    def _entry(self, path: Path, source: str) -> ModelEntry | None:
        try:
            return ModelEntry(path.name, path, source, read_card(path))
        except ModelError:
            return None

    def compared_runs(self) -> list[Path]:
        """Everything with a card and a history: shipped model cards and finished runs."""
        dirs = sorted(self.models_dir.iterdir()) if self.models_dir.is_dir() else []
        dirs += self.finished()
        return [p for p in dirs if (p / CARD_FILE).is_file()]

    def resolve_model(self, name: str) -> Path:
        """Model folder for a name chosen in the UI: only inside models/ or runs/."""
        name = safe_name(name)
        for root in (self.models_dir, self.root):
            path = (root / name).resolve()
            if path.parent == root.resolve() and (path / CARD_FILE).is_file():
                return path
        raise ModelError(f"There is no model called {name!r} in {self.models_dir} or {self.root}.")

    # -- the training subprocess -----------------------------------------------------
    def active(self) -> tuple[str, int] | None:
        """(run id, pid) of the training running now, if any. One at a time."""
        for path in self.in_progress():
            pid_text = (path / PID_FILE).read_text().strip() if (path / PID_FILE).is_file() else ""
            if pid_text.isdigit() and _is_alive(int(pid_text)):
                return path.name, int(pid_text)
        return None

    def launch(self, args: list[str], run_id: str) -> int:
        """Start `facemask train ARGS --run-id RUN_ID` in its own process; returns its pid."""
        running = self.active()
        if running:
            raise RunError(f"Run {running[0]} is already training; one training at a time.")
        run_dir = self.partial_dir(run_id)
        run_dir.mkdir(parents=True, exist_ok=True)
        log_path = run_dir / LOG_FILE
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "FACEMASK_RUNS_DIR": str(self.root)}
        with log_path.open("ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "facemask", "train", *args, "--run-id", run_id],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )
        (run_dir / PID_FILE).write_text(str(proc.pid))
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
        running = self.active()
        if running and running[0] == run_id:
            raise RunError(f"Run {run_id} is training; cancel it first.")
        shutil.rmtree(self.partial_dir(run_id), ignore_errors=True)

    def status(self, run_id: str) -> events.RunStatus:
        """Where a run stands, folded from its progress events (facemask.events)."""
        path = self.partial_dir(run_id)
        if not path.is_dir():
            path = self.root / safe_name(run_id)
        status = events.fold(run_id, path, path.parent == self.root, events.read_events(path))
        running = self.active()
        status.running = bool(running and running[0] == run_id)
        return status
