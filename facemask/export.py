"""A model folder's exports: every format written, checked against Keras, and recorded in its card.

`export_all` writes model.tflite, model_int8.tflite, tfjs/, tfjs_float16/ and tfjs_mixed/ from
model.keras (facemask.convert), checks each on real face crops (facemask.verify), and records
them with the serving choice (facemask.serving) in card.json. Everything is staged first and
installed only once checked.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from facemask.classify import load_keras_model, read_card
from facemask.convert import (
    REPRESENTATIVE_MAX,
    check_crops,
    saved_model,
    spread,
    tfjs_from_saved_model,
    tflite_from_saved_model,
)
from facemask.errors import ModelError
from facemask.evaluate import classification_metrics, small_face_metrics
from facemask.files import (
    CARD_FILE,
    KERAS_FILE,
    TFJS_DIR,
    TFJS_F16_DIR,
    TFJS_MIXED_DIR,
    TFLITE_FILE,
    TFLITE_INT8_FILE,
    read_json,
    write_json,
)
from facemask.quantize import compact_graph_json, mixed_quantization, tfjs_weights
from facemask.serving import BROWSER_MAX_BYTES, choose_browser_serving, choose_serving
from facemask.tfjs_node import tfjs_unavailable
from facemask.verify import (
    LATENCY_ROUNDS,
    TFJS_VERIFY_MAX,
    check_float_export,
    check_labels,
    interleaved_ms_per_crop,
    keras_probabilities,
    tfjs_agreement,
    tflite_agreement,
)

LATENCY_CROPS = 40
"""Face crops per timing round."""


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
    tfjs_from_saved_model(saved, out_dir, plan, metadata)
    model_json = out_dir / "model.json"
    model_json.write_text(compact_graph_json(json.loads(model_json.read_text())))
    check = tfjs_agreement(reference, out_dir, crops, labels, truth)
    kept = plan.get("float16", [])
    quantization = (
        f"uint8 weights, {len(kept)} tensors float16 (small ones first, then those 8 bits hurt "
        "most) within the download budget"
    )
    return _tfjs_record(out_dir, quantization, check, float16_weights=kept)


def export_browser(
    model_dir: str | os.PathLike, crops: np.ndarray, truth: np.ndarray | None = None
) -> dict[str, Any]:
    """Write model_dir/tfjs_mixed (the in-browser export) from model.keras, measure it in real
    TF.js against Keras on `crops` (uint8; with their true label indices `truth`, accuracy
    too), and record it in card.json ("exports", "files", "serving_browser")."""
    root = Path(model_dir)
    card = read_card(root)
    labels = list(card["labels"])
    crops = check_crops(crops, int(card["input_size"]), uint8=True)
    reason = tfjs_unavailable()
    if reason:
        raise ModelError(reason)
    model = load_keras_model(root / KERAS_FILE)
    reference = keras_probabilities(model, crops)
    check_labels(reference, labels)
    metadata = {"facemask": {"labels": labels, "input_size": int(card["input_size"])}}
    with (
        tempfile.TemporaryDirectory(prefix="facemask-export-") as tmp,
        tempfile.TemporaryDirectory(dir=root, prefix=".export-") as staging_dir,
    ):
        saved = saved_model(model, tmp)
        float_dir = tfjs_from_saved_model(saved, Path(tmp) / "float", False, None)
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
    crops = check_crops(crops, int(card["input_size"]), uint8=True)
    keras_path = root / KERAS_FILE
    model = load_keras_model(keras_path)
    reference = keras_probabilities(model, crops)
    check_labels(reference, labels)
    tfjs_reason = tfjs_unavailable()
    few = spread(np.arange(len(crops)), TFJS_VERIFY_MAX)  # TF.js on node is slow
    metadata = {"facemask": {"labels": labels, "input_size": int(card["input_size"])}}

    exports: dict[str, Any] = {}
    staged: list[str] = []
    with (
        tempfile.TemporaryDirectory(prefix="facemask-export-") as tmp,
        tempfile.TemporaryDirectory(dir=root, prefix=".export-") as staging_dir,
    ):
        saved = saved_model(model, tmp)
        stage = Path(staging_dir)

        path = tflite_from_saved_model(saved, stage / TFLITE_FILE, None, quantize=False)
        check = tflite_agreement(reference, path, crops, labels)
        check_float_export("float TFLite", check)
        exports["tflite"] = {
            "file": path.name, "bytes": path.stat().st_size,
            "quantization": "none (float32)", "input": "float32", "output": "float32", **check,
        }  # fmt: skip

        path = tflite_from_saved_model(saved, stage / TFLITE_INT8_FILE, crops, quantize=True)
        calibrated = min(len(crops), REPRESENTATIVE_MAX)
        exports["tflite_int8"] = {
            "file": path.name, "bytes": path.stat().st_size,
            "quantization": f"full integer int8, calibrated on {calibrated} of these face crops",
            "input": "uint8", "output": "float32",
            **tflite_agreement(reference, path, crops, labels),
        }  # fmt: skip
        staged += [TFLITE_FILE, TFLITE_INT8_FILE]
        timed = interleaved_ms_per_crop(
            [stage / TFLITE_FILE, stage / TFLITE_INT8_FILE], spread(crops, LATENCY_CROPS)
        )
        for key, ms in zip(("tflite", "tflite_int8"), timed, strict=True):
            exports[key]["ms_per_crop"] = round(ms, 3)
            exports[key]["timing"] = f"lowest median of {LATENCY_ROUNDS} interleaved rounds"

        for key, quantize in ((TFJS_DIR, False), (TFJS_F16_DIR, True)):
            if not tfjs:
                break
            out_dir = tfjs_from_saved_model(saved, stage / key, quantize, metadata)
            if tfjs_reason:
                check = {"skipped": tfjs_reason}
            else:
                check = tfjs_agreement(reference[few], out_dir, crops[few], labels)
            if not quantize:
                check_float_export("float TF.js", check)
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


def export_and_record(
    model_dir: Path, x_test: np.ndarray, y_test: np.ndarray, tfjs: bool = True, check: int = 200
) -> dict:
    """Export a model folder to TFLite and TF.js, checked against Keras on a random (so
    class-mixed) sample of test crops; then record in its card the per-crop latency of each
    TFLite file and the test accuracy of the file actually served."""
    from facemask.classify import MaskClassifier

    sample = np.random.default_rng(0).permutation(len(x_test))[:check]
    exports = export_all(model_dir, x_test[sample], tfjs=tfjs)
    served = MaskClassifier(model_dir)
    card = read_json(Path(model_dir) / CARD_FILE)
    labels = card["labels"]
    card["latency_ms"] = {  # one face crop, measured while exporting (load-dependent)
        e["file"]: e["ms_per_crop"]
        for e in exports.values()
        if isinstance(e, dict) and "ms_per_crop" in e and "file" in e
    }
    card["metrics"]["served"] = {
        "file": served.served_file,
        "test": classification_metrics(y_test, served.predict(x_test), labels),
        "test_small_faces": small_face_metrics(served.predict, x_test, y_test, labels),
    }
    write_json(Path(model_dir) / CARD_FILE, card)
    return exports
