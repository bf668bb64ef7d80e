"""MaskClassifier: loads a model folder (docs/architecture.md) and classifies face crops."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from facemask.errors import ModelError
from facemask.files import CARD_FILE, KERAS_FILE, TFLITE_FILE

DEFAULT_THREADS = min(2, os.cpu_count() or 1)
"""TFLite interpreter threads when none are asked for."""
CROP_MARGIN = 0.25
"""Context cut around a face box, as a fraction of its side, for models whose card does not give
its own `crop_margin`: the margin such models' training crops were cut with."""


def crop_margin(card: Mapping[str, Any]) -> float:
    """The context a card's model is served with around each face box (CROP_MARGIN if unsaid)."""
    return float(card.get("crop_margin", CROP_MARGIN))


def read_card(model_dir: str | os.PathLike) -> dict[str, Any]:
    """Read and check a model's card.json (labels in output order, input size, ...)."""
    path = Path(model_dir) / CARD_FILE
    try:
        card = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ModelError(f"{model_dir} is not a model folder: it has no {CARD_FILE}.") from exc
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path} could not be read as JSON: {exc}.") from exc
    if not isinstance(card, dict):
        raise ModelError(f"{path} must hold a JSON object.")
    labels = card.get("labels")
    size = card.get("input_size")
    if (
        not isinstance(labels, list)
        or len(labels) < 2
        or not all(isinstance(x, str) for x in labels)
    ):
        raise ModelError(f"{path} must list at least two labels in output order.")
    if not isinstance(size, int) or not 16 <= size <= 1024:
        raise ModelError(f"{path} must give the model's input_size in pixels (16-1024).")
    thresholds = card.get("thresholds", {})
    if not isinstance(thresholds, dict) or not all(
        name in labels and isinstance(t, int | float) and 0.0 <= t <= 1.0
        for name, t in thresholds.items()
    ):
        raise ModelError(f"{path}: thresholds must map some of its labels to numbers in [0, 1].")
    margin = card.get("crop_margin", CROP_MARGIN)  # checked raw: crop_margin() would cast it
    if not isinstance(margin, int | float) or not 0.0 <= margin <= 1.0:
        raise ModelError(f"{path}: crop_margin must be a number in [0, 1].")
    return card


def decide_indices(
    probabilities: np.ndarray, labels: Sequence[str], thresholds: Mapping[str, float] | None
) -> np.ndarray:
    """The decision rule of a card's `thresholds`, on (N, K) probabilities: (N,) label indices.

    A face gets label L only when p(L) >= thresholds[L]; otherwise the most probable of the
    labels that pass (a label without a threshold always does). If none passes: the argmax.
    No thresholds: the argmax.
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.ndim != 2 or probabilities.shape[1] != len(labels):
        raise ValueError(f"probabilities must be (N, {len(labels)})")
    limits = np.array([(thresholds or {}).get(name, 0.0) for name in labels])
    passes = probabilities >= limits
    return np.argmax(probabilities + 2.0 * passes, axis=1)


def load_keras_model(path: str | os.PathLike):
    """A .keras file loaded with safe_mode (standard layers only, no code from the file) and
    without its optimizer; ModelError with one sentence when it is missing or unreadable."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path} is missing: this folder has no Keras model.")
    import keras

    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:  # keras raises many types for a bad file
        raise ModelError(f"{path} could not be loaded as a Keras model: {exc}") from exc


class MaskClassifier:
    """Classifies (N, S, S, 3) uint8 RGB face crops into the model's labels.

    Runtime "tflite" uses the file the card names as served (XNNPACK, fast on CPU);
    "keras" loads model.keras with safe_mode; "auto" prefers TFLite when present.
    Thread-safe: one instance can serve every session.
    """

    def __init__(
        self,
        model_dir: str | os.PathLike,
        runtime: str = "auto",
        num_threads: int | None = None,
        tflite_file: str | None = None,
    ) -> None:
        self.model_dir = Path(model_dir)
        self.card = read_card(self.model_dir)
        self.labels: tuple[str, ...] = tuple(self.card["labels"])
        self.input_size: int = int(self.card["input_size"])
        self.name: str = str(self.card.get("name", self.model_dir.name))
        # the crop the model is served with: this much context around each face box
        self.crop_margin: float = crop_margin(self.card)
        self.thresholds: dict[str, float] = {
            k: float(v) for k, v in self.card.get("thresholds", {}).items()
        }
        self._lock = threading.Lock()
        served = tflite_file or self.card.get("serving", {}).get("file", TFLITE_FILE)
        tflite_path = self.model_dir / served
        if runtime == "auto":
            runtime = (
                "tflite" if tflite_path.suffix == ".tflite" and tflite_path.is_file() else "keras"
            )
        if runtime == "tflite":
            self._load_tflite(tflite_path, num_threads)
        elif runtime == "keras":
            self._load_keras(self.model_dir / KERAS_FILE)
        else:
            raise ModelError(f"Unknown runtime {runtime!r}: use auto, tflite or keras.")
        self.runtime = runtime

    def _load_tflite(self, path: Path, threads: int | None) -> None:
        self._tflite = TFLiteModel(path, threads)
        self._keras = None
        self.served_file = path.name

    def _load_keras(self, path: Path) -> None:
        self._keras = load_keras_model(path)
        self._tflite = None
        self.served_file = path.name

    def decide(self, probabilities: Sequence[float]) -> tuple[int, float]:
        """(label index, its probability) for one face, by the card's decision rule."""
        probs = np.asarray(probabilities, dtype=np.float64)
        index = int(decide_indices(probs[None], self.labels, self.thresholds)[0])
        return index, float(probs[index])

    def predict(self, crops: np.ndarray) -> np.ndarray:
        """Class probabilities (N, len(labels)) for uint8 crops (N, S, S, 3)."""
        crops = np.asarray(crops)
        if crops.ndim == 3:
            crops = crops[None]
        if len(crops) == 0:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        if crops.shape[1:] != (self.input_size, self.input_size, 3):
            raise ValueError(f"crops must be (N, {self.input_size}, {self.input_size}, 3)")
        with self._lock:
            if self._tflite is None:
                return np.asarray(self._keras(crops.astype(np.float32), training=False))
            return np.stack([self._tflite(crop) for crop in crops])


class TFLiteModel:
    """One TFLite interpreter: a raw uint8 RGB crop in, float class probabilities out.

    Quantized input and output (full-integer int8 files) are converted here, so callers feed
    pixels in [0, 255] to every variant alike. Not thread-safe on its own.
    """

    def __init__(self, path: str | os.PathLike, num_threads: int | None = None) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.num_threads = num_threads or DEFAULT_THREADS
        path = Path(path)
        if not path.is_file():
            raise ModelError(f"{path} is missing: export the model first (facemask export).")
        try:
            self._interpreter = Interpreter(model_path=str(path), num_threads=self.num_threads)
            self._interpreter.allocate_tensors()
        except (RuntimeError, ValueError) as exc:
            raise ModelError(f"{path} is not a valid TFLite model: {exc}.") from exc
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]

    def __call__(self, crop: np.ndarray) -> np.ndarray:
        detail = self._input
        if detail["dtype"] == np.float32:  # the pixels written straight into the input tensor
            self._interpreter.tensor(detail["index"])()[0] = crop
        else:
            scale, zero = detail["quantization"]
            info = np.iinfo(detail["dtype"])
            x = np.clip(np.round(crop[None].astype(np.float32) / scale + zero), info.min, info.max)
            self._interpreter.set_tensor(detail["index"], x.astype(detail["dtype"]))
        self._interpreter.invoke()
        out = self._interpreter.get_tensor(self._output["index"])[0]
        if self._output["dtype"] != np.float32:
            scale, zero = self._output["quantization"]
            out = (out.astype(np.float32) - zero) * scale
        return out.astype(np.float32)
