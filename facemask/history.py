"""history.csv: one row per finished epoch of a training run, written by training, summed up in
the run's card and plotted by the comparison.

Rows are numbered across phases (`epoch`: head epochs first, then fine-tuning); `phase_epoch`
counts within the phase.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from facemask.files import HISTORY_FILE, atomic_path

COLUMNS = (
    "epoch", "phase", "phase_epoch", "loss", "accuracy", "val_loss", "val_accuracy",
    "learning_rate", "seconds", "images_per_s",
)  # fmt: skip


def start(run_dir: str | os.PathLike) -> None:
    """A new, empty history (the header only)."""
    with (Path(run_dir) / HISTORY_FILE).open("w", newline="") as handle:
        csv.writer(handle).writerow(COLUMNS)


def append(run_dir: str | os.PathLike, row: dict[str, float | int | str | None]) -> None:
    """Add one epoch's row ({column: value}; missing columns stay empty)."""
    with (Path(run_dir) / HISTORY_FILE).open("a", newline="") as handle:
        csv.writer(handle).writerow([row.get(column) for column in COLUMNS])


def trim(run_dir: str | os.PathLike, epochs_done: int) -> None:
    """Keep the header and the rows of the first `epochs_done` epochs (numbered across phases):
    a run killed between writing its history and its state has one row too many."""
    path = Path(run_dir) / HISTORY_FILE
    if not path.is_file():
        start(run_dir)
        return
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    kept = [r for r in rows[1:] if r and r[0].isdigit() and int(r[0]) <= epochs_done]
    if len(kept) == len(rows) - 1:
        return
    with atomic_path(path) as tmp, tmp.open("w", newline="") as handle:
        csv.writer(handle).writerows([COLUMNS, *kept])


def read(run_dir: str | os.PathLike) -> list[dict[str, float | str]]:
    """The rows, numbers parsed; [] when the run has no history.

    A line that is not UTF-8, or has more or fewer fields than the header, is skipped: one bad
    record never hides the rest of the run.
    """
    try:
        data = (Path(run_dir) / HISTORY_FILE).read_bytes()
    except OSError:
        return []
    lines = []
    for raw in data.splitlines():
        try:
            lines.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            continue
    rows = []
    try:
        for row in csv.DictReader(lines):
            if None in row or None in row.values():
                continue
            parsed: dict[str, float | str] = {}
            for key, value in row.items():
                try:
                    parsed[key] = float(value)
                except (TypeError, ValueError):
                    parsed[key] = value
            rows.append(parsed)
    except csv.Error:  # e.g. a NUL byte: the rows read so far stand
        pass
    return rows


def phase_totals(rows: list[dict]) -> dict[str, dict[str, float]]:
    """Seconds and mean images/s per phase (a resumed run included)."""
    phases: dict[str, list[dict]] = {}
    for row in rows:
        phases.setdefault(str(row["phase"]), []).append(row)
    return {
        "seconds_by_phase": {k: round(sum(r["seconds"] for r in v), 1) for k, v in phases.items()},
        "images_per_s_by_phase": {
            k: round(sum(r["images_per_s"] for r in v) / len(v), 1) for k, v in phases.items()
        },
    }
