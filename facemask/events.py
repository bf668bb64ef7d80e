"""Training progress events: one typed record per kind, the only schema of a run's events.jsonl.

The trainer (facemask.train) emits them, the run store (RunStore.status) folds them into a
RunStatus, and the Training page reads that, attribute by attribute. One JSON object per line:
`{"time": <unix s>, "type": <kind>, <the fields of that kind>}`.

    stage        stage, message                        a step of the run begins
    progress     stage, done, total                    images checked / cropped so far
    epoch_begin  phase, epoch, epochs                  phase is "head" or "fine"
    batch        phase, epoch, epochs, batch, batches, eta_s, logs   (at most one a second)
    epoch        phase, epoch, epochs, logs, seconds, images_per_s
    done         run_id, seconds                       the run is finished and in place
    cancelled    message                               stopped on request; resumable
    error        message                               failed; the message is for the user
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, ClassVar

from facemask.files import EVENTS_FILE


@dataclass(frozen=True)
class Stage:
    kind: ClassVar[str] = "stage"
    stage: str
    message: str


@dataclass(frozen=True)
class StageProgress:
    """Items done within a stage (images checked, faces cropped)."""

    kind: ClassVar[str] = "progress"
    stage: str
    done: int
    total: int


@dataclass(frozen=True)
class EpochBegin:
    kind: ClassVar[str] = "epoch_begin"
    phase: str
    epoch: int
    epochs: int


@dataclass(frozen=True)
class Batch:
    kind: ClassVar[str] = "batch"
    phase: str
    epoch: int
    epochs: int
    batch: int
    batches: int
    eta_s: float
    logs: dict[str, float]


@dataclass(frozen=True)
class Epoch:
    kind: ClassVar[str] = "epoch"
    phase: str
    epoch: int
    epochs: int
    logs: dict[str, float]
    seconds: float
    images_per_s: float


@dataclass(frozen=True)
class Done:
    kind: ClassVar[str] = "done"
    run_id: str
    seconds: float


@dataclass(frozen=True)
class Cancelled:
    kind: ClassVar[str] = "cancelled"
    message: str


@dataclass(frozen=True)
class Error:
    kind: ClassVar[str] = "error"
    message: str


Event = Stage | StageProgress | EpochBegin | Batch | Epoch | Done | Cancelled | Error
KINDS: dict[str, type[Event]] = {
    cls.kind: cls
    for cls in (Stage, StageProgress, EpochBegin, Batch, Epoch, Done, Cancelled, Error)
}
FITTING = (EpochBegin, Batch, Epoch)
"""Events sent while Keras fits (the page shows the phase rather than the stage then)."""


def to_record(event: Event) -> dict[str, Any]:
    """The JSON object of one event, stamped with the time now."""
    return {"time": round(time.time(), 3), "type": event.kind, **asdict(event)}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


_CHECKS = {
    "str": lambda v: isinstance(v, str),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "float": _is_number,
    "dict[str, float]": lambda v: (
        isinstance(v, dict) and all(isinstance(k, str) and _is_number(x) for k, x in v.items())
    ),
}
"""A check per field type of the event classes (their annotations, as written)."""


def parse(record: Any) -> Event:
    """The typed event of one JSON object; ValueError when it is not an object, or its kind, a
    field or a field's type is wrong (a record written by someone else is never trusted)."""
    if not isinstance(record, dict):
        raise ValueError(f"an event is a JSON object, not {type(record).__name__}")
    kind = record.get("type")
    cls = KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ValueError(f"unknown event type {kind!r}")
    missing = [f.name for f in fields(cls) if f.name not in record]
    if missing:
        raise ValueError(f"{cls.kind} event without {', '.join(missing)}")
    wrong = [f.name for f in fields(cls) if not _CHECKS[str(f.type)](record[f.name])]
    if wrong:
        raise ValueError(f"{cls.kind} event with a bad {', '.join(wrong)}")
    return cls(**{f.name: record[f.name] for f in fields(cls)})


class EventLog:
    """A run's events.jsonl, appended to by the trainer while the app reads it."""

    def __init__(self, run_dir: str | os.PathLike) -> None:
        self.path = Path(run_dir) / EVENTS_FILE

    def emit(self, event: Event) -> None:
        with self.path.open("a") as handle:
            handle.write(json.dumps(to_record(event)) + "\n")


def read_events_counted(run_dir: str | os.PathLike) -> tuple[list[Event], int]:
    """A run's events in order, and how many lines were skipped as unreadable.

    Each line is decoded and parsed on its own: a torn last line, bytes that are not UTF-8, a
    line that is not a JSON object, or a record of no known kind or wrong fields is skipped.
    """
    events, skipped = [], 0
    try:
        data = (Path(run_dir) / EVENTS_FILE).read_bytes()
    except OSError:
        return [], 0
    for line in data.splitlines():
        if not line.strip():
            continue
        try:
            events.append(parse(json.loads(line.decode("utf-8"))))
        except (ValueError, RecursionError):  # JSON and Unicode decode errors are ValueErrors
            skipped += 1
    return events, skipped


def read_events(run_dir: str | os.PathLike) -> list[Event]:
    """A run's events in order; unreadable lines are skipped (see read_events_counted)."""
    return read_events_counted(run_dir)[0]


@dataclass
class RunStatus:
    """Where a run stands: its last event, and the latest of each kind the page shows."""

    run_id: str
    dir: Path
    finished: bool
    running: bool = False
    events: int = 0
    last: Event | None = None
    stage: Stage | None = None
    progress: StageProgress | None = None
    batch: Batch | None = None
    epoch: Epoch | None = None
    skipped: int = 0  # lines of events.jsonl that could not be read

    @property
    def fitting(self) -> bool:
        """Keras is (or was, when it stopped) fitting a phase."""
        return isinstance(self.last, FITTING)

    @property
    def stopped(self) -> Cancelled | Error | None:
        """The event that ended the run early, if that is how it ended."""
        return self.last if isinstance(self.last, (Cancelled, Error)) else None


def fold(
    run_id: str, run_dir: Path, finished: bool, events: list[Event], skipped: int = 0
) -> RunStatus:
    """A RunStatus from a run's events (the latest of each kind wins)."""
    status = RunStatus(run_id, run_dir, finished, events=len(events), skipped=skipped)
    for event in events:
        status.last = event
        if isinstance(event, (Stage, StageProgress, Batch, Epoch)):
            setattr(status, event.kind, event)  # RunStatus has one field per such kind
    return status


# -- how the Training page words a status (pure text, tested without Streamlit) -----------------
PHASES = {"head": "Training the new head (base frozen)", "fine": "Fine-tuning the top of the base"}


def eta_text(seconds: float | None) -> str:
    """Time left as "1 min 05 s" or "42 s"; a dash when unknown."""
    if seconds is None:
        return "—"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def metrics_text(logs: dict[str, float]) -> str:
    """Keras logs as "loss 0.3000 · accuracy 0.9000" (the learning rate left out)."""
    return " · ".join(f"{k.replace('_', ' ')} {v:.4f}" for k, v in logs.items() if k != "lr")


def stage_text(status: RunStatus) -> str:
    """What the run is doing (or was doing when it stopped)."""
    if status.fitting:
        return PHASES.get(getattr(status.last, "phase", ""), "Training")
    if status.stage:
        return status.stage.message
    return "" if status.running else "stopped before its first step"


def batch_text(batch: Batch) -> str:
    """The progress bar's caption for the batch being fitted."""
    return (
        f"Phase {batch.phase} · epoch {batch.epoch}/{batch.epochs} · "
        f"batch {batch.batch}/{batch.batches} · ETA of the epoch {eta_text(batch.eta_s)}"
    )


def epoch_text(epoch: Epoch) -> str:
    """One line about the last finished epoch."""
    return (
        f"Last finished epoch: {epoch.phase} {epoch.epoch}/{epoch.epochs} in "
        f"{epoch.seconds:.0f} s ({epoch.images_per_s:.0f} images/s) · " + metrics_text(epoch.logs)
    )


@dataclass(frozen=True)
class StatusView:
    """What the page draws for a run, in words: each part None when it has nothing to say."""

    stage: str | None
    bar: tuple[float, str] | None  # (fraction done, caption): the progress bar
    now: str | None  # the metrics of the batch being fitted
    last_epoch: str | None
    warning: str | None  # why a run that is not running stopped
    note: str | None = None  # records of the run that could not be read


def status_view(status: RunStatus) -> StatusView:
    """A RunStatus in words: a running run shows its progress; one that is not running shows
    where it stopped and why, without progress bars."""
    last, batch, bar, now = status.last, status.batch, None, None
    if status.running and isinstance(last, StageProgress) and last.total:
        bar = (min(last.done / last.total, 1.0), f"{last.stage}: {last.done} of {last.total}")
    if batch and status.fitting and status.running:
        bar = (min(batch.batch / max(batch.batches, 1), 1.0), batch_text(batch))
        now = "Now: " + metrics_text(batch.logs)
    warning = None
    if status.stopped:
        warning = status.stopped.message
    elif not status.running:
        warning = "The training process ended without finishing (killed or crashed)."
    note = None
    if status.skipped:
        note = f"{status.skipped} unreadable line(s) of {EVENTS_FILE} were skipped."
    return StatusView(
        stage_text(status) or None,
        bar,
        now,
        epoch_text(status.epoch) if status.epoch else None,
        warning,
        note,
    )
