"""The files of a model folder and of a run folder, named once; atomic writes; portable paths.

A model folder (`models/<name>/`, `runs/<id>/`) holds CARD_FILE, KERAS_FILE, TFLITE_FILE,
TFLITE_INT8_FILE and the TF.js folders; a run adds its records (CONFIG_FILE, HISTORY_FILE, ...).
docs/architecture.md describes both.
"""

from __future__ import annotations

import io
import json
import os
import uuid
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent

# -- a model folder (what the app serves and exports) ------------------------------------------
CARD_FILE = "card.json"
MODEL_CARD_MD = "MODEL_CARD.md"
KERAS_FILE = "model.keras"
TFLITE_FILE = "model.tflite"
TFLITE_INT8_FILE = "model_int8.tflite"
TFJS_DIR = "tfjs"
TFJS_F16_DIR = "tfjs_float16"
TFJS_MIXED_DIR = "tfjs_mixed"
"""The in-browser export: uint8 weights, float16 where 8 bits would cost the most accuracy."""

# -- a run's records (a finished run is a model folder plus these) -----------------------------
CONFIG_FILE = "config.json"
HISTORY_FILE = "history.csv"
METRICS_FILE = "metrics.json"
EVENTS_FILE = "events.jsonl"
DATA_REPORT_FILE = "data_report.json"
# ... and what only a run in progress has
STATE_FILE = "state.json"
LOG_FILE = "train.log"
PID_FILE = "train.pid"
CHECKPOINT_FILE = "checkpoint.weights.h5"
BEST_FILE = "best.weights.h5"


def is_servable(model_dir: str | os.PathLike) -> bool:
    """True when the folder holds a file a MaskClassifier can serve (TFLite or Keras)."""
    folder = Path(model_dir)
    return any(folder.glob("model*.tflite")) or (folder / KERAS_FILE).is_file()


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary sibling to write `path` through: renamed over it when the block ends, removed
    when the block fails. Readers see the old file or the new one, never half of one.

    The temporary name ends with the target's name (Keras wants `.weights.h5`, for one) and is
    unique, so concurrent writers of one file never share it.
    """
    target = Path(path)
    tmp = target.with_name(f".tmp-{uuid.uuid4().hex[:8]}-{target.name}")
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write bytes atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_json(path: str | os.PathLike, data: Any) -> None:
    """Write JSON atomically (indented, with a final newline)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2) + "\n")


def read_json(path: str | os.PathLike, default: Any = None) -> Any:
    """The JSON in a file, or `default` when it is missing or unreadable."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return default


def portable_path(path: str | os.PathLike, root: str | os.PathLike = REPO_ROOT) -> str:
    """How a committed record names a path: relative to the repository when inside it, else the
    folder's own name (a dataset elsewhere on some machine is named, not located)."""
    resolved = Path(path).resolve()
    try:
        return resolved.relative_to(Path(root).resolve()).as_posix() or "."
    except ValueError:
        return resolved.name


def zip_folder(folder: str | os.PathLike) -> bytes:
    """A folder as zip bytes; entries are under the folder's own name (`tfjs/model.json`)."""
    root = Path(folder)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                archive.write(path, Path(root.name) / path.relative_to(root))
    return buffer.getvalue()


DOWNLOADS = (
    (TFLITE_FILE, "TFLite (float)", "application/octet-stream"),
    (TFLITE_INT8_FILE, "TFLite (int8, smaller and faster)", "application/octet-stream"),
    (CARD_FILE, "Model card (JSON)", "application/json"),
    (TFJS_DIR, "TF.js (zip)", "application/zip"),
    (TFJS_F16_DIR, "TF.js, float16 weights (zip)", "application/zip"),
)
"""What a model folder offers for download: (file or TF.js folder, title, MIME type)."""


def downloadable(model_dir: str | os.PathLike, name: str) -> Path | None:
    """The file or TF.js folder `name` of a model folder when it is there to download."""
    path = Path(model_dir) / name
    if name in (TFJS_DIR, TFJS_F16_DIR):
        return path if (path / "model.json").is_file() else None
    return path if path.is_file() else None
