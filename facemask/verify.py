"""Exports checked against Keras on real face crops: label agreement, probability error, speed.

Keras is the reference; TFLite runs through ai-edge-litert, TF.js through real TF.js under node
(facemask.tfjs_node).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from facemask.classify import DEFAULT_THREADS, TFLiteModel
from facemask.convert import check_crops, spread
from facemask.errors import ModelError
from facemask.tfjs_node import run_tfjs, tfjs_unavailable

if TYPE_CHECKING:
    import keras

FLOAT_MAX_ABS_DIFF = 1e-3
"""A float export whose probabilities differ from Keras by more than this is broken."""


LATENCY_ROUNDS = 5
"""Rounds of interleaved timing that decide float vs int8 (each file keeps its fastest)."""


TFJS_VERIFY_MAX = 32
"""TF.js's pure-JS CPU backend under node takes seconds per crop: verify on at most this many."""


NEAR_TIE = 0.01
"""A disagreement where Keras itself rates both labels within this is counted as a near tie."""


def keras_probabilities(model: keras.Model, crops: np.ndarray, batch: int = 32) -> np.ndarray:
    """The reference: Keras inference on uint8 crops fed as float pixels."""
    crops = check_crops(crops)
    parts = [
        np.asarray(model(crops[i : i + batch].astype(np.float32), training=False))
        for i in range(0, len(crops), batch)
    ]
    return np.concatenate(parts).astype(np.float32)


def compare_with_keras(
    reference: np.ndarray, probs: np.ndarray, labels: Sequence[str]
) -> dict[str, Any]:
    """How an export's probabilities `probs` agree with Keras's `reference` on the same crops."""
    if probs.shape != reference.shape:
        raise ModelError(
            f"The export returned probabilities of shape {probs.shape}, Keras {reference.shape}."
        )
    ref_label, got_label = reference.argmax(axis=1), probs.argmax(axis=1)
    diff = np.abs(probs - reference)
    rows = np.arange(len(reference))
    keras_margin = reference[rows, ref_label] - reference[rows, got_label]
    flips = ref_label != got_label
    return {
        "n": int(len(reference)),
        "agreement": round(float(np.mean(~flips)) * 100.0, 3),
        "disagreements": int(np.sum(flips)),
        "near_ties": int(np.sum(flips & (keras_margin < NEAR_TIE))),
        "max_abs_diff": float(diff.max()),
        "mean_abs_diff": float(diff.mean()),
        "predicted": {label: int(np.sum(got_label == i)) for i, label in enumerate(labels)},
        "keras_predicted": {label: int(np.sum(ref_label == i)) for i, label in enumerate(labels)},
    }


def check_labels(reference: np.ndarray, labels: Sequence[str]) -> None:
    """ModelError when the model's outputs and the labels do not pair up."""
    if reference.shape[1] != len(labels):
        raise ModelError(
            f"The model has {reference.shape[1]} outputs but {len(labels)} labels were given."
        )


def accuracy_pct(probs: np.ndarray, truth: np.ndarray) -> float:
    """Percent of rows whose most probable label is the true one."""
    return round(float(np.mean(probs.argmax(axis=1) == truth)) * 100.0, 2)


def check_float_export(what: str, check: dict[str, Any]) -> None:
    """ModelError when a float export does not reproduce Keras (FLOAT_MAX_ABS_DIFF)."""
    if check.get("max_abs_diff", 0.0) > FLOAT_MAX_ABS_DIFF:
        raise ModelError(
            f"The {what} export differs from Keras by {check['max_abs_diff']:.2g} "
            f"(over {FLOAT_MAX_ABS_DIFF:g}): the conversion is broken, nothing was changed."
        )


def _timed_run(model: TFLiteModel, crops: np.ndarray) -> tuple[np.ndarray, float]:
    """Outputs for crops, one crop per invoke, and the median ms per crop (after a warm-up:
    XNNPACK packs weights on the first invokes)."""
    for _ in range(3):
        model(crops[0])
    outputs, times = [], []
    for crop in crops:
        start = time.perf_counter()
        outputs.append(model(crop))
        times.append(time.perf_counter() - start)
    return np.stack(outputs), float(np.median(times) * 1000.0)


def run_tflite(
    tflite_path: str | os.PathLike, crops: np.ndarray, num_threads: int | None = None
) -> tuple[np.ndarray, float]:
    """Probabilities for uint8 crops, one crop per invoke, and the median ms per crop."""
    return _timed_run(TFLiteModel(tflite_path, num_threads), check_crops(crops))


def interleaved_ms_per_crop(
    paths: Sequence[str | os.PathLike],
    crops: np.ndarray,
    rounds: int = LATENCY_ROUNDS,
    num_threads: int | None = None,
) -> list[float]:
    """Median ms per crop of each TFLite file, timed in alternating rounds on the same crops;
    each file keeps its lowest round. On a shared CPU, load that comes and goes then weighs on
    every file alike instead of on whichever happened to run at the time."""
    crops = check_crops(crops)
    models = [TFLiteModel(path, num_threads) for path in paths]
    best = [float("inf")] * len(models)
    for _ in range(rounds):
        for i, model in enumerate(models):
            best[i] = min(best[i], _timed_run(model, crops)[1])
    return best


def verify_tflite(
    model: keras.Model,
    tflite_path: str | os.PathLike,
    crops: np.ndarray,
    labels: Sequence[str],
    num_threads: int | None = None,
) -> dict[str, Any]:
    """Compare a TFLite file with Keras on real crops (labels: class names in output order).

    Returns n, agreement (% same label), disagreements (near_ties: those where Keras's own two
    probabilities are within 0.01), max/mean abs prob diff, per-label counts, and ms_per_crop
    (median, ai-edge-litert, one crop per call).
    """
    return tflite_agreement(
        keras_probabilities(model, crops), tflite_path, crops, labels, num_threads
    )


def tflite_agreement(
    reference: np.ndarray,
    tflite_path: str | os.PathLike,
    crops: np.ndarray,
    labels: Sequence[str],
    num_threads: int | None = None,
) -> dict[str, Any]:
    """verify_tflite against Keras probabilities already computed (`reference`)."""
    check_labels(reference, labels)
    threads = num_threads or DEFAULT_THREADS
    probs, ms = run_tflite(tflite_path, crops, threads)
    result = compare_with_keras(reference, probs, labels)
    result.update(ms_per_crop=round(ms, 3), num_threads=threads, runtime="ai-edge-litert")
    return result


def verify_tfjs(
    model: keras.Model,
    tfjs_dir: str | os.PathLike,
    crops: np.ndarray,
    labels: Sequence[str],
    max_crops: int = TFJS_VERIFY_MAX,
) -> dict[str, Any]:
    """Compare a TF.js graph model, run by real TF.js under node, with Keras on real crops.

    Uses at most `max_crops` crops, evenly spaced (TF.js on node's CPU is slow). Returns the
    same keys as verify_tflite (ms_per_crop from TF.js's pure-JS CPU backend), or
    {"skipped": reason} when node or @tensorflow/tfjs is missing.
    """
    reason = tfjs_unavailable()
    if reason:
        return {"skipped": reason}
    crops = spread(check_crops(crops), max_crops)
    return tfjs_agreement(keras_probabilities(model, crops), tfjs_dir, crops, labels)


def tfjs_agreement(
    reference: np.ndarray,
    tfjs_dir: str | os.PathLike,
    crops: np.ndarray,
    labels: Sequence[str],
    truth: np.ndarray | None = None,
) -> dict[str, Any]:
    """verify_tfjs against Keras probabilities already computed (`reference`); with the crops'
    true label indices `truth`, also the accuracy of both."""
    check_labels(reference, labels)
    out = run_tfjs(tfjs_dir, crops)
    probs = np.asarray(out["probabilities"], dtype=np.float32)
    result = compare_with_keras(reference, probs, labels)
    result.update(
        ms_per_crop=round(float(out["ms_per_crop"]), 3),
        runtime=f"TF.js {out['tfjs_version']} ({out['backend']} backend, node)",
    )
    if truth is not None:
        result["accuracy"] = accuracy_pct(probs, truth)
        result["keras_accuracy"] = accuracy_pct(reference, truth)
    return result
