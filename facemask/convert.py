"""One SavedModel, every format: TFLite (float, or full-integer int8) and TF.js graph models.

`model.export` writes the SavedModel once; each converter reads it. The crop checks here are
shared by the verification and export modules: every crop array is (N, S, S, 3) RGB.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from facemask.files import write_bytes

if TYPE_CHECKING:
    import keras

REPRESENTATIVE_MAX = 200
"""At most this many crops calibrate int8 quantization (more only slows conversion)."""


def check_crops(crops: np.ndarray, size: int | None = None, uint8: bool = False) -> np.ndarray:
    """The crops as an array, or ValueError: (N, S, S, 3) RGB, N > 0; uint8 pixels and side
    `size` when asked."""
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


def spread(items: np.ndarray, count: int) -> np.ndarray:
    """At most `count` items, evenly spaced over the array (crops are often sorted by class)."""
    if len(items) <= count:
        return items
    return items[np.unique(np.linspace(0, len(items) - 1, count).round().astype(int))]


def saved_model(model: keras.Model, folder: str | os.PathLike) -> Path:
    """Export `model` once as a SavedModel (inference graph, no dropout) under `folder`."""
    path = Path(folder) / "saved_model"
    model.export(str(path), format="tf_saved_model", verbose=False)
    return path


def tflite_from_saved_model(
    saved_model: Path, out_path: Path, representative: np.ndarray | None, quantize: bool
) -> Path:
    """Convert a SavedModel to a TFLite file: float, or int8 calibrated on `representative`."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
    if quantize:
        if representative is None or len(representative) == 0:
            raise ValueError("int8 quantization needs representative face crops (N, S, S, 3).")
        samples = spread(check_crops(representative, uint8=True), REPRESENTATIVE_MAX)

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


def tfjs_from_saved_model(
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
        saved = saved_model(model, tmp)
        return tflite_from_saved_model(saved, Path(out_path), representative, quantize)


def export_tfjs(
    model: keras.Model,
    out_dir: str | os.PathLike,
    quantize: bool = False,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Write a TF.js graph model (model.json + shards); `quantize` stores weights as float16
    (half the size, and the labels of the float export).

    `metadata` ({name: JSON-able}) lands in model.json's userDefinedMetadata.
    """
    with tempfile.TemporaryDirectory(prefix="facemask-export-") as tmp:
        saved = saved_model(model, tmp)
        return tfjs_from_saved_model(saved, Path(out_dir), quantize, metadata)
