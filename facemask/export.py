"""TFLite and TF.js exports of a classifier, each verified against Keras on real face crops.

One SavedModel (`model.export`) feeds every converter: TFLite float, TFLite full-integer int8,
and TF.js graph models (float32 and float16-quantized weights). TF.js results come from real TF.js
4.22 under node (`facemask/js/run_tfjs.mjs`), never from a Python re-implementation.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from facemask.classify import DEFAULT_THREADS, TFLiteModel, load_keras_model, read_card
from facemask.errors import ModelError
from facemask.files import (
    CARD_FILE,
    KERAS_FILE,
    TFJS_DIR,
    TFJS_F16_DIR,
    TFJS_MIXED_DIR,
    TFLITE_FILE,
    TFLITE_INT8_FILE,
    write_bytes,
    write_json,
)

BROWSER_MAX_BYTES = 2_500_000
"""A browser downloads at most this much classifier (model.json + weight shards)."""
BROWSER_MIN_AGREEMENT = 99.0
"""The browser export must pick Keras's label on this % of face crops..."""
BROWSER_MAX_ACCURACY_DROP = 0.5
"""...and lose at most this many points of accuracy (when the crops' true labels are known)."""
SMALL_TENSOR = 10_000
"""Weights smaller than this (biases, depthwise and first-layer kernels, the head) stay float16
whenever the budget allows: they cost little and 8 bits hurt them most."""
RUN_TFJS_SCRIPT = Path(__file__).resolve().parent / "js" / "run_tfjs.mjs"

INT8_MIN_AGREEMENT = 99.0
"""Serve the int8 TFLite file only if it picks the same label as Keras on this % of crops..."""
INT8_MAX_TIME_RATIO = 0.9
"""...and takes at most this fraction of the float file's time per crop."""
FLOAT_MAX_ABS_DIFF = 1e-3
"""A float export whose probabilities differ from Keras by more than this is broken."""
REPRESENTATIVE_MAX = 200
"""At most this many crops calibrate int8 quantization (more only slows conversion)."""
LATENCY_ROUNDS = 5
"""Rounds of interleaved timing that decide float vs int8 (each file keeps its fastest)."""
LATENCY_CROPS = 40
"""Face crops per timing round."""
TFJS_VERIFY_MAX = 32
"""TF.js's pure-JS CPU backend under node takes 0.4-6 s per crop: verify on at most this many."""
TFJS_TIMEOUT_S = 900
NEAR_TIE = 0.01
"""A disagreement where Keras itself rates both labels within this is counted as a near tie."""


# ---------------------------------------------------------------- conversion


def _saved_model(model: keras.Model, folder: str | os.PathLike) -> Path:
    """Export `model` once as a SavedModel (inference graph, no dropout) under `folder`."""
    path = Path(folder) / "saved_model"
    model.export(str(path), format="tf_saved_model", verbose=False)
    return path


def _check_crops(crops: np.ndarray, size: int | None = None, uint8: bool = False) -> np.ndarray:
    crops = np.asarray(crops)
    if uint8 and crops.dtype != np.uint8:
        raise ValueError(f"face crops must be uint8 RGB pixels, not {crops.dtype}.")
    if crops.ndim != 4 or crops.shape[-1] != 3 or crops.shape[1] != crops.shape[2]:
        raise ValueError(f"crops must be (N, S, S, 3) RGB, not {crops.shape}.")
    if len(crops) == 0:
        raise ValueError("at least one face crop is needed.")
    if size is not None and crops.shape[1] != size:
        raise ValueError(f"crops are {crops.shape[1]} px but the model takes {size} px.")
    return crops


def _tflite_from_saved_model(
    saved_model: Path, out_path: Path, representative: np.ndarray | None, quantize: bool
) -> Path:
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
    if quantize:
        if representative is None or len(representative) == 0:
            raise ValueError("int8 quantization needs representative face crops (N, S, S, 3).")
        samples = _spread(_check_crops(representative, uint8=True), REPRESENTATIVE_MAX)

        def calibration() -> Iterator[list[np.ndarray]]:
            for crop in samples:
                yield [crop[None].astype(np.float32)]

        # Full-integer: every op int8. Input uint8 = raw pixels (scale 1, zero 0 when the
        # calibration crops span 0-255); output stays float32 probabilities for every caller.
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = calibration
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.uint8
        converter.inference_output_type = tf.float32
    out_path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes(out_path, converter.convert())
    return out_path


def _tfjs_from_saved_model(
    saved_model: Path,
    out_dir: Path,
    quantize: bool | dict[str, Any],
    metadata: dict[str, Any] | None,
) -> Path:
    """Convert to a TF.js graph model. `quantize`: True for float16 weights, or the converter's
    quantization map ({dtype: [weight names] or True for every other weight})."""
    # tensorflowjs imports TF-DF, whose welcome banner would otherwise try IPython when
    # stdout is not a terminal; stdout stays clean for the CLI's JSON.
    os.environ.setdefault("TFDF_DISABLE_WELCOME_MESSAGE", "1")
    with contextlib.redirect_stdout(sys.stderr):
        from tensorflowjs.converters import tf_saved_model_conversion_v2 as tfjs_conversion

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir.parent, prefix=f".{out_dir.name}.") as staging:
        target = Path(staging) / "model"
        with contextlib.redirect_stdout(sys.stderr):
            tfjs_conversion.convert_tf_saved_model(
                str(saved_model),
                str(target),
                quantization_dtype_map=(
                    quantize
                    if isinstance(quantize, dict)
                    else {"float16": True}
                    if quantize
                    else None
                ),
                metadata=metadata,
            )
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(target, out_dir)
    return out_dir


def export_tflite(
    model: keras.Model,
    out_path: str | os.PathLike,
    representative: np.ndarray | None = None,
    quantize: bool = False,
) -> Path:
    """Write a float TFLite file, or a full-integer int8 one calibrated on real uint8 crops.

    The int8 file takes uint8 pixels and returns float32 probabilities.
    """
    if quantize and (representative is None or len(representative) == 0):
        raise ValueError("int8 quantization needs representative face crops (N, S, S, 3).")
    with tempfile.TemporaryDirectory(prefix="facemask-export-") as tmp:
        saved = _saved_model(model, tmp)
        return _tflite_from_saved_model(saved, Path(out_path), representative, quantize)


def export_tfjs(
    model: keras.Model,
    out_dir: str | os.PathLike,
    quantize: bool = False,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Write a TF.js graph model (model.json + shards); `quantize` stores weights as float16
    (half the size; uint8 weights changed 1 label in 32 on the shipped model, float16 none).

    `metadata` ({name: JSON-able}) lands in model.json's userDefinedMetadata.
    """
    with tempfile.TemporaryDirectory(prefix="facemask-export-") as tmp:
        saved = _saved_model(model, tmp)
        return _tfjs_from_saved_model(saved, Path(out_dir), quantize, metadata)


# ---------------------------------------------------------------- verification


def keras_probabilities(model: keras.Model, crops: np.ndarray, batch: int = 32) -> np.ndarray:
    """The reference: Keras inference on uint8 crops fed as float pixels."""
    crops = _check_crops(crops)
    parts = [
        np.asarray(model(crops[i : i + batch].astype(np.float32), training=False))
        for i in range(0, len(crops), batch)
    ]
    return np.concatenate(parts).astype(np.float32)


def _compare(reference: np.ndarray, probs: np.ndarray, labels: Sequence[str]) -> dict[str, Any]:
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


def _check_labels(reference: np.ndarray, labels: Sequence[str]) -> None:
    if reference.shape[1] != len(labels):
        raise ModelError(
            f"The model has {reference.shape[1]} outputs but {len(labels)} labels were given."
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
    return _timed_run(TFLiteModel(tflite_path, num_threads), _check_crops(crops))


def interleaved_ms_per_crop(
    paths: Sequence[str | os.PathLike],
    crops: np.ndarray,
    rounds: int = LATENCY_ROUNDS,
    num_threads: int | None = None,
) -> list[float]:
    """Median ms per crop of each TFLite file, timed in alternating rounds on the same crops;
    each file keeps its lowest round. On a shared CPU, load that comes and goes then weighs on
    every file alike instead of on whichever happened to run at the time."""
    crops = _check_crops(crops)
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
    return _verify_tflite(
        keras_probabilities(model, crops), tflite_path, crops, labels, num_threads
    )


def _verify_tflite(
    reference: np.ndarray,
    tflite_path: str | os.PathLike,
    crops: np.ndarray,
    labels: Sequence[str],
    num_threads: int | None = None,
) -> dict[str, Any]:
    _check_labels(reference, labels)
    threads = num_threads or DEFAULT_THREADS
    probs, ms = run_tflite(tflite_path, crops, threads)
    result = _compare(reference, probs, labels)
    result.update(ms_per_crop=round(ms, 3), num_threads=threads, runtime="ai-edge-litert")
    return result


def tfjs_unavailable() -> str | None:
    """Why real TF.js cannot run here (one sentence), or None when node and the module exist."""
    if shutil.which("node") is None:
        return "node is not installed, so the TF.js export cannot be run."
    if _node_modules() is None:
        return (
            "node_modules/@tensorflow/tfjs is missing (run `npm ci` in the repository root), "
            "so the TF.js export cannot be run."
        )
    return None


def _node_modules() -> Path | None:
    candidates = [Path(p) for p in os.environ.get("NODE_PATH", "").split(os.pathsep) if p]
    candidates += [
        Path.cwd() / "node_modules",
        Path(__file__).resolve().parents[1] / "node_modules",
    ]
    for folder in candidates:
        if (folder / "@tensorflow" / "tfjs" / "package.json").is_file():
            return folder
    return None


def run_tfjs(tfjs_dir: str | os.PathLike, crops: np.ndarray) -> dict[str, Any]:
    """Run a TF.js graph model on crops with real TF.js under node (run_tfjs.mjs).

    Returns the script's JSON: probabilities, ms_per_crop, backend, tfjs_version, inputs, outputs.
    Raises ModelError when TF.js is unavailable or fails on the model.
    """
    reason = tfjs_unavailable()
    if reason:
        raise ModelError(reason)
    crops = _check_crops(crops)
    dtype = "uint8" if crops.dtype == np.uint8 else "float32"
    modules = _node_modules()
    env = {**os.environ, "NODE_PATH": str(modules)}
    with tempfile.TemporaryDirectory(prefix="facemask-tfjs-") as tmp:
        raw = Path(tmp) / "crops.bin"
        raw.write_bytes(np.ascontiguousarray(crops, dtype=dtype).tobytes())
        args = {
            "model": str(Path(tfjs_dir).resolve()),
            "input": str(raw),
            "dtype": dtype,
            "shape": list(crops.shape),
        }
        try:
            done = subprocess.run(
                ["node", str(RUN_TFJS_SCRIPT), json.dumps(args)],
                capture_output=True,
                text=True,
                timeout=TFJS_TIMEOUT_S,
                env=env,
                cwd=str(modules.parent),
            )
        except subprocess.TimeoutExpired as exc:
            raise ModelError(f"TF.js took over {TFJS_TIMEOUT_S} s on {tfjs_dir}.") from exc
    lines = done.stdout.strip().splitlines()
    try:
        result = json.loads(lines[-1])
    except (IndexError, ValueError):
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise ModelError(f"TF.js could not run {tfjs_dir}: {tail[0]}") from None
    if done.returncode != 0 or "error" in result:
        raise ModelError(f"TF.js could not run {tfjs_dir}: {result.get('error', 'it failed')}.")
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
    crops = _spread(_check_crops(crops), max_crops)
    return _verify_tfjs(keras_probabilities(model, crops), tfjs_dir, crops, labels)


def _spread(items: np.ndarray, count: int) -> np.ndarray:
    """At most `count` items, evenly spaced over the array (crops are often sorted by class)."""
    if len(items) <= count:
        return items
    return items[np.unique(np.linspace(0, len(items) - 1, count).round().astype(int))]


def _verify_tfjs(
    reference: np.ndarray, tfjs_dir: str | os.PathLike, crops: np.ndarray, labels: Sequence[str]
) -> dict[str, Any]:
    _check_labels(reference, labels)
    out = run_tfjs(tfjs_dir, crops)
    result = _compare(reference, np.asarray(out["probabilities"], dtype=np.float32), labels)
    result.update(
        ms_per_crop=round(float(out["ms_per_crop"]), 3),
        runtime=f"TF.js {out['tfjs_version']} ({out['backend']} backend, node)",
    )
    return result


# ---------------------------------------------------------------- the in-browser export


def tfjs_weights(tfjs_dir: str | os.PathLike) -> dict[str, np.ndarray]:
    """The weights of an unquantized TF.js graph model, by name, read from its shards."""
    folder = Path(tfjs_dir)
    manifest = json.loads((folder / "model.json").read_text())["weightsManifest"]
    weights: dict[str, np.ndarray] = {}
    for group in manifest:
        data = b"".join((folder / Path(shard).name).read_bytes() for shard in group["paths"])
        offset = 0
        for spec in group["weights"]:
            if "quantization" in spec or spec["dtype"] not in ("float32", "int32"):
                raise ModelError(f"{folder} is quantized: read the float32 TF.js export.")
            dtype = np.dtype("<f4" if spec["dtype"] == "float32" else "<i4")
            count = int(np.prod(spec["shape"], dtype=np.int64))
            weights[spec["name"]] = np.frombuffer(data, dtype, count, offset).reshape(spec["shape"])
            offset += count * dtype.itemsize
    return weights


def uint8_noise(weights: np.ndarray) -> float:
    """Noise-to-signal power of 8-bit affine quantization of a tensor (step^2/12 over mean w^2):
    a tensor with outliers gets a coarse step for its many small values."""
    w = np.asarray(weights, dtype=np.float64)
    step = (w.max() - w.min()) / 255.0
    return float(step**2 / 12.0 / max(float(np.mean(w**2)), 1e-20))


def mixed_quantization(weights: dict[str, np.ndarray], max_weight_bytes: int) -> dict[str, Any]:
    """The converter's quantization map for at most `max_weight_bytes` of weights: every float
    tensor uint8, except those kept float16 (2 bytes each instead of 1): small tensors first,
    then the ones 8 bits hurt most (uint8_noise), while the budget allows."""
    floats = {name: w for name, w in weights.items() if w.dtype == np.float32}
    total = sum(w.size for w in floats.values())
    total += sum(w.nbytes for name, w in weights.items() if name not in floats)
    keep: list[str] = []
    for name in sorted(
        floats, key=lambda n: (floats[n].size >= SMALL_TENSOR, -uint8_noise(floats[n]))
    ):
        if total + floats[name].size <= max_weight_bytes:
            keep.append(name)
            total += floats[name].size
    return {"float16": keep, "uint8": True} if keep else {"uint8": True}


def compact_graph_json(spec: dict[str, Any]) -> str:
    """A TF.js graph model.json with short node names (`n12`), written without spaces.

    The converter keeps TensorFlow's node names (about 90 characters each, repeated in every
    input reference and in the weights manifest): over 100 KB of a 2.5 MB download. Names the
    signature refers to (the model's input and output) are kept; every reference is renamed
    consistently, so the graph is unchanged (the export is measured in real TF.js anyway).
    """
    spec = json.loads(json.dumps(spec))  # a private copy
    signature = spec.get("signature", {})
    kept = {
        entry["name"].split(":")[0]
        for side in ("inputs", "outputs")
        for entry in signature.get(side, {}).values()
    }
    nodes = spec["modelTopology"]["node"]
    names = {n["name"]: n["name"] if n["name"] in kept else f"n{i}" for i, n in enumerate(nodes)}

    def rename(ref: str) -> str:
        control, base = ("^", ref[1:]) if ref.startswith("^") else ("", ref)
        base, colon, index = base.partition(":")
        return f"{control}{names.get(base, base)}{colon}{index}"

    for node in nodes:
        node["name"] = names[node["name"]]
        node["input"] = [rename(ref) for ref in node.get("input", [])]
    for group in spec["weightsManifest"]:
        for weight in group["weights"]:
            weight["name"] = names.get(weight["name"], weight["name"])
    return json.dumps(spec, separators=(",", ":"))


def _accuracy(probs: np.ndarray, truth: np.ndarray) -> float:
    return round(float(np.mean(probs.argmax(axis=1) == truth)) * 100.0, 2)


def _browser_export(
    saved: Path,
    float_dir: Path,
    out_dir: Path,
    reference: np.ndarray,
    crops: np.ndarray,
    labels: Sequence[str],
    truth: np.ndarray | None,
    metadata: dict[str, Any],
) -> dict[str, Any]:
    """Write the mixed uint8/float16 TF.js export and measure it in real TF.js on every crop."""
    weights = tfjs_weights(float_dir)
    spec = json.loads((float_dir / "model.json").read_text())
    json_bytes = len(compact_graph_json(spec)) + 80 * len(weights)  # + quantization fields
    plan = mixed_quantization(weights, BROWSER_MAX_BYTES - json_bytes)
    _tfjs_from_saved_model(saved, out_dir, plan, metadata)
    model_json = out_dir / "model.json"
    model_json.write_text(compact_graph_json(json.loads(model_json.read_text())))
    out = run_tfjs(out_dir, crops)
    probs = np.asarray(out["probabilities"], dtype=np.float32)
    check = _compare(reference, probs, labels)
    check.update(
        ms_per_crop=round(float(out["ms_per_crop"]), 3),
        runtime=f"TF.js {out['tfjs_version']} ({out['backend']} backend, node)",
    )
    if truth is not None:
        check["accuracy"] = _accuracy(probs, truth)
        check["keras_accuracy"] = _accuracy(reference, truth)
    kept = plan.get("float16", [])
    quantization = (
        f"uint8 weights, {len(kept)} tensors float16 (small ones first, then those 8 bits hurt "
        "most) within the download budget"
    )
    return _tfjs_record(out_dir, quantization, check, float16_weights=kept)


def choose_browser_serving(exports: dict[str, Any]) -> dict[str, str]:
    """card["serving_browser"]: the mixed export when it fits the download budget, agrees with
    Keras on >= 99% of crops and loses <= 0.5 point of accuracy; else float16 (exact labels)."""
    mixed = exports.get(TFJS_MIXED_DIR)
    fallback = TFJS_F16_DIR if TFJS_F16_DIR in exports else TFJS_DIR
    if not mixed or "agreement" not in mixed:
        return {"dir": fallback, "reason": "no measured mixed export: serving float weights."}
    measured = (
        f"{mixed['bytes'] / 1e6:.2f} MB, same label as Keras on {mixed['agreement']:g}% of "
        f"{mixed['n']} face crops"
    )
    if "accuracy" in mixed:
        measured += f", accuracy {mixed['accuracy']:g}% (Keras {mixed['keras_accuracy']:g}%)"
    drop = mixed.get("keras_accuracy", 0.0) - mixed.get("accuracy", 0.0)
    if (
        mixed["bytes"] <= BROWSER_MAX_BYTES
        and mixed["agreement"] >= BROWSER_MIN_AGREEMENT
        and drop <= BROWSER_MAX_ACCURACY_DROP
    ):
        return {"dir": TFJS_MIXED_DIR, "reason": f"{measured}: within the limits, served."}
    return {"dir": fallback, "reason": f"{measured}: outside the limits, serving {fallback}."}


def export_browser(
    model_dir: str | os.PathLike, crops: np.ndarray, truth: np.ndarray | None = None
) -> dict[str, Any]:
    """Write model_dir/tfjs_mixed (the in-browser export) from model.keras, measure it in real
    TF.js against Keras on `crops` (uint8; with their true label indices `truth`, accuracy
    too), and record it in card.json ("exports", "files", "serving_browser")."""
    root = Path(model_dir)
    card = read_card(root)
    labels = list(card["labels"])
    crops = _check_crops(crops, int(card["input_size"]), uint8=True)
    reason = tfjs_unavailable()
    if reason:
        raise ModelError(reason)
    model = load_keras_model(root / KERAS_FILE)
    reference = keras_probabilities(model, crops)
    _check_labels(reference, labels)
    metadata = {"facemask": {"labels": labels, "input_size": int(card["input_size"])}}
    with (
        tempfile.TemporaryDirectory(prefix="facemask-export-") as tmp,
        tempfile.TemporaryDirectory(dir=root, prefix=".export-") as staging_dir,
    ):
        saved = _saved_model(model, tmp)
        float_dir = _tfjs_from_saved_model(saved, Path(tmp) / "float", False, None)
        stage = Path(staging_dir) / TFJS_MIXED_DIR
        export = _browser_export(saved, float_dir, stage, reference, crops, labels, truth, metadata)
        _install(stage, root / TFJS_MIXED_DIR)
    card = read_card(root)
    card.setdefault("exports", {})[TFJS_MIXED_DIR] = export
    files = {
        k: v for k, v in card.get("files", {}).items() if not k.startswith(f"{TFJS_MIXED_DIR}/")
    }
    card["files"] = {**files, **export["files"]}
    card["serving_browser"] = choose_browser_serving(card["exports"])
    write_json(root / CARD_FILE, card)
    return export


# ---------------------------------------------------------------- a model directory


def _file_sizes(root: Path, paths: Sequence[Path]) -> dict[str, int]:
    return {p.relative_to(root).as_posix(): p.stat().st_size for p in sorted(paths)}


def _tfjs_record(
    out_dir: Path, quantization: str, check: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    """The card's record of one TF.js export folder: its files and bytes, how it was
    quantized, and what checking it measured."""
    files = _file_sizes(out_dir.parent, [p for p in out_dir.rglob("*") if p.is_file()])
    return {
        "dir": out_dir.name, "files": files, "bytes": sum(files.values()),
        "format": "tfjs_graph_model", "quantization": quantization, **extra, **check,
    }  # fmt: skip


def choose_serving(exports: dict[str, Any]) -> dict[str, str]:
    """card["serving"]: int8 TFLite when it agrees with Keras on >= 99% of the crops AND is
    measurably faster than float on this machine (at most INT8_MAX_TIME_RATIO of its time);
    otherwise float, which is exact. On CPUs without int8 dot-product instructions int8 buys
    a smaller file but no speed, so a little accuracy would be lost for nothing."""
    float_ = exports["tflite"]
    int8 = exports["tflite_int8"]
    ties = int8.get("near_ties", 0)
    measured = (
        f"int8 picks the same label as Keras on {int8['agreement']:g}% of {int8['n']} face crops "
        + (f"({ties} of its {int8['disagreements']} misses are near ties) " if ties else "")
        + f"(max prob diff {int8['max_abs_diff']:.3f}; {int8['ms_per_crop']:.2f} ms per crop vs "
        f"{float_['ms_per_crop']:.2f} ms for float)"
    )
    if int8["agreement"] < INT8_MIN_AGREEMENT:
        reason = f"{measured}, below the {INT8_MIN_AGREEMENT:g}% required: serving float."
    elif int8["ms_per_crop"] > INT8_MAX_TIME_RATIO * float_["ms_per_crop"]:
        reason = (
            f"{measured}: int8 is not faster here (it must take at most "
            f"{INT8_MAX_TIME_RATIO:.0%} of float's time), so serving the exact float file."
        )
    else:
        reason = (
            f"{measured}, at least the {INT8_MIN_AGREEMENT:g}% required and faster: serving int8."
        )
        return {"file": int8["file"], "runtime": "tflite", "reason": reason}
    return {"file": float_["file"], "runtime": "tflite", "reason": reason}


def _broken(what: str, check: dict[str, Any]) -> None:
    if check.get("max_abs_diff", 0.0) > FLOAT_MAX_ABS_DIFF:
        raise ModelError(
            f"The {what} export differs from Keras by {check['max_abs_diff']:.2g} "
            f"(over {FLOAT_MAX_ABS_DIFF:g}): the conversion is broken, nothing was changed."
        )


def _install(staged: Path, target: Path) -> None:
    """Move a staged file or folder over its target (same file system: a rename)."""
    if target.is_dir() and not target.is_symlink():
        shutil.rmtree(target)
    os.replace(staged, target)


def export_all(model_dir: str | os.PathLike, crops: np.ndarray, *, tfjs: bool = True) -> dict:
    """Export model_dir/model.keras to every format, verify each on real crops, update card.json.

    Writes model.tflite, model_int8.tflite and (with tfjs) tfjs/, tfjs_float16/ and, when real
    TF.js can measure it, tfjs_mixed/ (the in-browser export, card["serving_browser"] says
    which TF.js folder browsers load); the int8 file is calibrated on `crops` (uint8, the
    model's input size). Everything is staged and checked
    first: a float export that does not reproduce Keras raises ModelError and changes nothing.
    card.json gets "exports", "files" and "serving" (int8 only when it agrees with Keras on
    >= 99% of the crops and is faster than float). Without tfjs, stale TF.js folders are
    removed. Returns the exports.
    """
    root = Path(model_dir)
    card = read_card(root)
    labels = list(card["labels"])
    crops = _check_crops(crops, int(card["input_size"]), uint8=True)
    keras_path = root / KERAS_FILE
    model = load_keras_model(keras_path)
    reference = keras_probabilities(model, crops)
    _check_labels(reference, labels)
    tfjs_reason = tfjs_unavailable()
    few = _spread(np.arange(len(crops)), TFJS_VERIFY_MAX)  # TF.js on node is slow
    metadata = {"facemask": {"labels": labels, "input_size": int(card["input_size"])}}

    exports: dict[str, Any] = {}
    staged: list[str] = []
    with (
        tempfile.TemporaryDirectory(prefix="facemask-export-") as tmp,
        tempfile.TemporaryDirectory(dir=root, prefix=".export-") as staging_dir,
    ):
        saved = _saved_model(model, tmp)
        stage = Path(staging_dir)

        path = _tflite_from_saved_model(saved, stage / TFLITE_FILE, None, quantize=False)
        check = _verify_tflite(reference, path, crops, labels)
        _broken("float TFLite", check)
        exports["tflite"] = {
            "file": path.name, "bytes": path.stat().st_size,
            "quantization": "none (float32)", "input": "float32", "output": "float32", **check,
        }  # fmt: skip

        path = _tflite_from_saved_model(saved, stage / TFLITE_INT8_FILE, crops, quantize=True)
        calibrated = min(len(crops), REPRESENTATIVE_MAX)
        exports["tflite_int8"] = {
            "file": path.name, "bytes": path.stat().st_size,
            "quantization": f"full integer int8, calibrated on {calibrated} of these face crops",
            "input": "uint8", "output": "float32",
            **_verify_tflite(reference, path, crops, labels),
        }  # fmt: skip
        staged += [TFLITE_FILE, TFLITE_INT8_FILE]
        timed = interleaved_ms_per_crop(
            [stage / TFLITE_FILE, stage / TFLITE_INT8_FILE], _spread(crops, LATENCY_CROPS)
        )
        for key, ms in zip(("tflite", "tflite_int8"), timed, strict=True):
            exports[key]["ms_per_crop"] = round(ms, 3)
            exports[key]["timing"] = f"lowest median of {LATENCY_ROUNDS} interleaved rounds"

        for key, quantize in ((TFJS_DIR, False), (TFJS_F16_DIR, True)):
            if not tfjs:
                break
            out_dir = _tfjs_from_saved_model(saved, stage / key, quantize, metadata)
            if tfjs_reason:
                check = {"skipped": tfjs_reason}
            else:
                check = _verify_tfjs(reference[few], out_dir, crops[few], labels)
            if not quantize:
                _broken("float TF.js", check)
            quantization = "float16 weights" if quantize else "none (float32)"
            exports[key] = _tfjs_record(out_dir, quantization, check)
            staged.append(key)

        if tfjs and not tfjs_reason:  # the browser export is chosen by measuring it
            exports[TFJS_MIXED_DIR] = _browser_export(
                saved, stage / TFJS_DIR, stage / TFJS_MIXED_DIR, reference, crops, labels,
                None, metadata,
            )  # fmt: skip
            staged.append(TFJS_MIXED_DIR)

        for name in staged:
            _install(stage / name, root / name)
    tfjs_dirs = (TFJS_DIR, TFJS_F16_DIR, TFJS_MIXED_DIR)
    for stale in tfjs_dirs:
        if stale not in staged:
            shutil.rmtree(root / stale, ignore_errors=True)

    sizes = {
        name: size
        for name, size in card.get("files", {}).items()
        if not name.startswith(tuple(f"{d}/" for d in tfjs_dirs))
    }
    written = [root / name for name in (TFLITE_FILE, TFLITE_INT8_FILE)]
    written += [root / name for key in tfjs_dirs for name in exports.get(key, {}).get("files", {})]
    sizes.update(_file_sizes(root, [keras_path, *written]))
    card["files"] = sizes
    card["exports"] = exports
    card["serving"] = choose_serving(exports)
    if tfjs:
        card["serving_browser"] = choose_browser_serving(exports)
    else:
        card.pop("serving_browser", None)
    write_json(root / CARD_FILE, card)
    return exports
