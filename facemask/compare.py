"""Side-by-side comparison of trained models: rows from their cards, curves from their histories.

Pure functions over model folders (docs/architecture.md): `comparison_rows` reads card.json
files, `curves` reads history.csv (facemask.history); facemask.charts draws them. Nothing
here imports streamlit.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from facemask import history
from facemask.classify import MaskClassifier
from facemask.errors import FacemaskError
from facemask.evaluate import macro_f1
from facemask.files import CARD_FILE, KERAS_FILE, TFLITE_FILE, is_servable, read_json

LATENCY_KEYS = ("per_face", "served", "tflite", "tflite_float", "median", "p50")
"""Where a card's latency_ms dict keeps the CPU latency of one face, in order of preference."""

CURVE_METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")

COLUMNS = {
    "name": "Model",
    "architecture": "Architecture",
    "weights": "Weights",
    "input_size": "Input (px)",
    "accuracy": "Test accuracy",
    "macro_f1": "Macro F1",
    "small_face_accuracy": "Small-face accuracy",
    "parameters": "Parameters",
    "size_mb": "Served file (MB)",
    "latency_ms": "CPU latency / face (ms)",
    "training_s": "Training time",
}
"""Keys of a comparison row and their display names."""


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def latency_per_face_ms(card: Mapping[str, Any]) -> float | None:
    """CPU latency of classifying one face with the served file, from card["latency_ms"].

    Accepts a number, or a dict keyed by the served file name or one of LATENCY_KEYS (values may
    themselves be dicts with a "median"); None when the card does not say.
    """
    latency = card.get("latency_ms")
    if _number(latency) is not None:
        return _number(latency)
    if not isinstance(latency, Mapping):
        return None
    served = str(card.get("serving", {}).get("file", ""))
    for key in (served, *LATENCY_KEYS):
        value = latency.get(key)
        if isinstance(value, Mapping):
            value = value.get("median", value.get("p50"))
        if _number(value) is not None:
            return _number(value)
    return None


def measure_latency_ms(classifier: MaskClassifier, runs: int = 20, warmup: int = 3) -> float:
    """Median wall time (ms) of classifying one face crop with a loaded classifier, here and now.

    For cards that carry no latency_ms: a number from this machine under its current load.
    """
    crop = np.random.default_rng(0).integers(
        0, 256, (1, classifier.input_size, classifier.input_size, 3), dtype=np.uint8
    )
    times = []
    for i in range(warmup + runs):
        start = time.perf_counter()
        classifier.predict(crop)
        if i >= warmup:
            times.append((time.perf_counter() - start) * 1000.0)
    return float(np.median(times))


def unmeasured(rows: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Rows whose card gives no latency but whose folder has a model to time."""
    return [r for r in rows if r["latency_ms"] is None and is_servable(r["dir"])]


def measure_rows(
    rows: Iterable[Mapping[str, Any]], measured: dict[str, float]
) -> list[FacemaskError]:
    """Time each row's served model here (measure_latency_ms) into `measured`, keyed by model
    folder; returns the error of each model that could not be loaded."""
    failures = []
    for row in rows:
        try:
            measured[row["dir"]] = measure_latency_ms(MaskClassifier(row["dir"]))
        except FacemaskError as exc:
            failures.append(exc)
    return failures


def served_file_mb(model_dir: str | os.PathLike, card: Mapping[str, Any]) -> float | None:
    """Size in MB of the file the app serves (card's files entry, else the file on disk)."""
    served = str(card.get("serving", {}).get("file") or TFLITE_FILE)
    size = _number(card.get("files", {}).get(served))
    if size is None:
        path = Path(model_dir) / served
        if not path.is_file():
            path = Path(model_dir) / KERAS_FILE
        size = float(path.stat().st_size) if path.is_file() else None
    return None if size is None else size / 1e6


def comparison_row(model_dir: str | os.PathLike, card: Mapping[str, Any]) -> dict[str, Any]:
    """One model's row: the keys of COLUMNS (None where its card does not say)."""
    metrics = card.get("metrics", {})
    test = metrics.get("test", {}) if isinstance(metrics, Mapping) else {}
    small = metrics.get("test_small_faces", {}) if isinstance(metrics, Mapping) else {}
    params = card.get("parameters", {})
    total = params.get("total") if isinstance(params, Mapping) else params
    training = card.get("training", {})
    return {
        "name": str(card.get("name") or Path(model_dir).name),
        "architecture": card.get("architecture"),
        "weights": card.get("weights"),
        "input_size": card.get("input_size"),
        "accuracy": _number(test.get("accuracy")),
        "macro_f1": macro_f1(test.get("per_class")),
        "small_face_accuracy": _number(small.get("accuracy")) if small else None,
        "parameters": int(total) if _number(total) is not None else None,
        "size_mb": served_file_mb(model_dir, card),
        "latency_ms": latency_per_face_ms(card),
        "training_s": _number(training.get("wall_time_s"))
        if isinstance(training, Mapping)
        else None,
    }


def comparison_rows(dirs: Iterable[str | os.PathLike]) -> list[dict[str, Any]]:
    """Rows for every folder with a readable card.json (others are skipped)."""
    rows = []
    for model_dir in dirs:
        card = read_json(Path(model_dir) / CARD_FILE)
        if isinstance(card, dict):
            row = comparison_row(model_dir, card)
            row["dir"] = str(model_dir)
            rows.append(row)
    return rows


def curves(run_dir: str | os.PathLike) -> dict[str, list[Any]]:
    """Per-epoch series from history.csv: "epoch" counts across phases (head, then fine-tune).

    Keys: epoch, phase, and each of CURVE_METRICS (plus seconds) that the history has; empty
    dict when there is no history. The file's own epoch column is used when it has one.
    """
    rows = history.read(run_dir)
    if not rows:
        return {}
    series: dict[str, list[Any]] = {"epoch": [], "phase": []}
    keys = [k for k in (*CURVE_METRICS, "seconds") if any(k in r for r in rows)]
    for key in keys:
        series[key] = []
    for index, row in enumerate(rows, start=1):
        epoch = _number(row.get("epoch"))
        series["epoch"].append(int(epoch) if epoch is not None else index)
        series["phase"].append(str(row.get("phase", "")))
        for key in keys:
            series[key].append(_number(row.get(key)))
    return series


def confusion(card: Mapping[str, Any]) -> tuple[list[str], list[list[int]]]:
    """(labels, matrix rows=true, cols=predicted) of the test split; empty when absent."""
    block = card.get("metrics", {}).get("test", {})
    matrix = block.get("confusion") if isinstance(block, Mapping) else None
    labels = list(card.get("labels", []))
    if not isinstance(matrix, list) or len(matrix) != len(labels):
        return [], []
    return labels, [[int(v) for v in row] for row in matrix]


# -- display text (the Training page's table) ------------------------------------------------
def display_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A comparison row as the table shows it: COLUMNS' titles, numbers formatted, "—" when
    unknown; latency measured in this session is marked " *"."""
    out = {}
    for key, title in COLUMNS.items():
        value = row.get(key)
        if key in ("accuracy", "macro_f1", "small_face_accuracy") and value is not None:
            value = f"{value:.1%}"
        elif key == "parameters" and value is not None:
            value = f"{value / 1e6:.2f} M"
        elif key == "training_s" and value is not None:
            value = f"{value / 60:.1f} min"
        elif key == "latency_ms" and value is not None:
            value = f"{value:.1f}" + (" *" if row.get("latency_measured_here") else "")
        elif isinstance(value, float):
            value = f"{value:.2f}"
        out[title] = "—" if value is None else value
    return out


def with_measured_latency(row: Mapping[str, Any], measured: Mapping[str, float]) -> dict[str, Any]:
    """The row, with a latency measured here (by model folder) where its card has none."""
    here = measured.get(row["dir"])
    if row["latency_ms"] is not None or here is None:
        return dict(row)
    return {**row, "latency_ms": here, "latency_measured_here": True}


def size_text(n_bytes: float) -> str:
    """A file size for a download button: "8.9 MB", "512 KB"."""
    return f"{n_bytes / 1e6:.1f} MB" if n_bytes >= 1e5 else f"{n_bytes / 1e3:.0f} KB"


def table_notes(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Captions under the comparison table: latency measured here; a backbone missing."""
    notes = []
    if any(r.get("latency_measured_here") for r in rows):
        notes.append("Latency marked * was measured here, now, under this machine's current load.")
    if not {"VGG-16", "MobileNetV2"} <= {r.get("architecture") for r in rows}:
        notes.append(
            "VGG-16 vs MobileNetV2: train the missing backbone above to see both side by side."
        )
    return notes


def confusions(
    rows: Sequence[Mapping[str, Any]],
) -> list[tuple[str, str, list[str], list[list[int]]]]:
    """(name, folder, labels, matrix) of each row's test confusion matrix (empty when its card
    has none)."""
    out = []
    for row in rows:
        labels, matrix = confusion(read_json(Path(row["dir"]) / CARD_FILE, {}))
        out.append((row["name"], row["dir"], labels, matrix))
    return out


def per_class_rows(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per model and label of its test split: precision, recall, F1 and faces, so a
    3-class model's `mask_worn_incorrectly` is read beside the other two."""
    out = []
    for row in rows:
        card = read_json(Path(row["dir"]) / CARD_FILE, {})
        per_class = card.get("metrics", {}).get("test", {}).get("per_class", {})
        for label in card.get("labels", []):
            figures = per_class.get(label) if isinstance(per_class, Mapping) else None
            if not isinstance(figures, Mapping):
                continue
            out.append(
                {
                    "Model": row["name"],
                    "Label": label,
                    "Precision": _number(figures.get("precision")),
                    "Recall": _number(figures.get("recall")),
                    "F1": _number(figures.get("f1")),
                    "Faces": figures.get("support"),
                }
            )
    return out
