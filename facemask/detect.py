"""Face detection: the detector presets (webcam, photo, training) and FaceDetector, which runs a
preset's model passes (facemask.face_models) and merges them into faces in image pixels."""

from __future__ import annotations

import math
import threading
import weakref
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from facemask.face_models import (
    MODEL_FILES,
    Face,
    LiteRTBlazeFace,
    ModelPass,
    TasksBlazeFace,
    YuNet,
    box_iou,
)
from facemask.gate import MAX_DETECT_SIDE, fit_side

RUNTIMES = ("tasks", "litert")
"""How BlazeFace runs: the mediapipe Tasks graph, or the .tflite through LiteRT with our decoder."""
_NESTED = 0.6
"""Across passes, a box with this much of its area inside a better-scored box is a face part."""


@dataclass(frozen=True)
class DetectorSettings:
    """How to run the detector: which model, which filters, which extra passes."""

    model: str = "short"  # "short" (webcam) | "full" (BlazeFace full range) | "yunet" (photos)
    min_score: float = 0.5
    min_face: int = 20  # drop faces whose shorter box side is below this many px
    nms_iou: float = 0.3  # boxes overlapping more than this are one face (also each model's NMS)
    close_up_pass: bool = False  # model "full"/"yunet": also run "short" on the whole image
    runtime: str = "tasks"  # BlazeFace: "tasks" (mediapipe graph) | "litert" (LiteRT, direct)
    max_pixels: int = 0  # work on a scaled copy of at most this many pixels (0: no bound)
    scale: float = 1.0  # "yunet" only: run on the image resized by this factor
    # "yunet" only: share of each box's top cut off. YuNet's box reaches higher up the forehead
    # than BlazeFace's and the scene annotations; cut, it matches both (docs/detection.md).
    top_cut: float = 0.1

    def __post_init__(self) -> None:
        if self.model not in MODEL_FILES:
            raise ValueError(f"model must be one of {sorted(MODEL_FILES)}, not {self.model!r}.")
        if self.runtime not in RUNTIMES:
            raise ValueError(f"runtime must be one of {RUNTIMES}, not {self.runtime!r}.")
        if self.runtime == "litert" and self.model == "full":
            raise ValueError('runtime "litert" runs the "short" model only.')
        if not 0.0 <= self.min_score <= 1.0:
            raise ValueError(f"min_score must be in [0, 1], not {self.min_score}.")
        if min(self.min_face, self.max_pixels) < 0:
            raise ValueError("min_face and max_pixels must not be negative.")
        if not 0.0 < self.nms_iou <= 1.0:
            raise ValueError(f"nms_iou must be in (0, 1], not {self.nms_iou}.")
        if not 0.25 <= self.scale <= 4.0 or (self.scale != 1.0 and self.model != "yunet"):
            raise ValueError('scale must be in [0.25, 4], and 1 unless model is "yunet".')
        if not 0.0 <= self.top_cut < 0.5:
            raise ValueError(f"top_cut must be in [0, 0.5), not {self.top_cut}.")


WEBCAM = DetectorSettings(model="short", min_score=0.5, min_face=20, runtime="litert")
"""Live 640x480 frames: one short-range BlazeFace pass run directly through LiteRT, faster than
the same model through mediapipe's Tasks graph (bench/latency.py measures both)."""
PHOTO = DetectorSettings(
    model="yunet",
    min_score=0.6,
    min_face=16,
    close_up_pass=True,
    runtime="litert",
    max_pixels=1920 * 1440,
)
"""Uploaded photos: one YuNet pass at the photo's own size (scaled down to 2.8 megapixels, as
1920x1440, when larger), plus a short-range BlazeFace pass for faces too large for YuNet; see
docs/detection.md."""
TRAINING = DetectorSettings(model="short", min_score=0.5, min_face=12)
"""Training and evaluation crops (facemask.data): the short-range BlazeFace through mediapipe's
Tasks graph, small faces kept; tight face photos are retried padded. The short-range model finds
more of the training photos' faces than the full-range one (docs/measurements.md)."""


MODEL_NAMES = {
    "short": "short-range BlazeFace",
    "full": "full-range BlazeFace",
    "yunet": "YuNet",
}
"""Each bundled model as a sentence names it."""


def describe(settings: DetectorSettings) -> str:
    """What a preset does, in words, from its fields (the sidebar's caption says this)."""
    text = f"one {MODEL_NAMES[settings.model]} pass over the whole image"
    if settings.scale != 1.0:
        text += f" enlarged {settings.scale:g}x"
    if settings.close_up_pass and settings.model != "short":
        text += f", plus a {MODEL_NAMES['short']} pass for close-up faces"
    if settings.max_pixels:
        text += f", on at most {settings.max_pixels / 1e6:.1f} megapixels"
    return text


def _model_pass(model: str, settings: DetectorSettings, num_threads: int | None) -> ModelPass:
    if model == "yunet":
        return YuNet(settings.min_score, settings.nms_iou, settings.top_cut)
    if settings.runtime == "litert":
        return LiteRTBlazeFace(settings.min_score, settings.nms_iou, num_threads)
    return TasksBlazeFace(model, settings.min_score, settings.nms_iou)


class FaceDetector:
    """Finds faces in RGB images. One instance may be shared by threads (calls are serialised).

    `num_threads` bounds LiteRT's threads (default: the classifier's); several detectors in
    processes that share the cores (a scan's workers) each take their share.
    """

    def __init__(self, settings: DetectorSettings = WEBCAM, num_threads: int | None = None) -> None:
        self.settings = settings
        models = {settings.model} | ({"short"} if settings.close_up_pass else set())
        self._passes: dict[str, ModelPass] = {
            m: _model_pass(m, settings, num_threads) for m in sorted(models)
        }
        tasks = [p.task for p in self._passes.values() if isinstance(p, TasksBlazeFace)]
        self._finalizer = weakref.finalize(self, _close_quietly, tasks)
        self._lock = threading.Lock()

    def close(self) -> None:
        """Release the mediapipe graphs; the detector cannot be used afterwards."""
        self._finalizer()

    def __enter__(self) -> FaceDetector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def detect(self, rgb: np.ndarray) -> list[Face]:
        """Faces in an RGB uint8 image (HxWx3; gray and RGBA accepted), best score first."""
        image = _as_rgb(rgb)
        height, width = image.shape[:2]
        if height == 0 or width == 0:
            return []
        settings = self.settings
        # the gate's bound on the longest side, and the preset's on the pixels (the work)
        max_side = float(MAX_DETECT_SIDE)
        if settings.max_pixels and width * height > settings.max_pixels:
            max_side = min(
                max_side, max(width, height) * math.sqrt(settings.max_pixels / (width * height))
            )
        image, shrink = fit_side(image, max(1, int(max_side)))
        models = [settings.model]
        if settings.close_up_pass and settings.model != "short":
            models.append("short")
        faces: list[Face] = []
        with self._lock:
            for model in models:
                zoom = settings.scale if model == "yunet" else 1.0
                faces += _run_pass(self._passes[model], image, zoom)
        faces = _suppress(faces, settings.nms_iou) if len(models) > 1 else faces
        faces = [_to_original(f, shrink, width, height) for f in faces]
        faces = [f for f in faces if f.box[2] > f.box[0] and f.box[3] > f.box[1]]
        faces = [f for f in faces if _short_side(f.box) >= settings.min_face]
        return sorted(faces, key=lambda f: f.score, reverse=True)


def _run_pass(model_pass: ModelPass, image: np.ndarray, zoom: float) -> list[Face]:
    """One model over the whole image resized by `zoom`, its faces in the image's pixels (float
    boxes: they are rounded once, in the original image's pixels)."""
    if zoom == 1.0:
        return model_pass(image)  # the one pass of a live frame: already in image pixels
    size = (max(1, round(image.shape[1] * zoom)), max(1, round(image.shape[0] * zoom)))
    faces = []
    for face in model_pass(cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)):
        box = tuple(v / zoom for v in face.box)
        keypoints = tuple((x / zoom, y / zoom) for x, y in face.keypoints)
        faces.append(Face(box=box, score=face.score, keypoints=keypoints))
    return faces


def _to_original(face: Face, shrink: float, width: int, height: int) -> Face:
    """A face found on the work copy, in whole pixels of the original image, clipped to it."""
    limits = (width, height, width, height)
    box = tuple(
        int(round(min(max(v / shrink, 0), limit)))
        for v, limit in zip(face.box, limits, strict=True)
    )
    keypoints = tuple((x / shrink, y / shrink) for x, y in face.keypoints)
    return Face(box=box, score=face.score, keypoints=keypoints)


def _close_quietly(tasks: list[Any]) -> None:
    """Close mediapipe tasks, also at interpreter exit."""
    for task in tasks:
        try:
            task.close()
        except RuntimeError:
            # NOTE: at exit mediapipe's dispatcher thread is already gone, and its own __del__
            # would then fail noisily during module teardown; drop the handle, the OS frees it.
            task._handle = None


def _as_rgb(rgb: np.ndarray) -> np.ndarray:
    """A C-contiguous uint8 HxWx3 view of gray, RGB or RGBA input."""
    image = np.asarray(rgb)
    if image.dtype != np.uint8:
        raise ValueError(f"detect() needs a uint8 image, not {image.dtype}.")
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise ValueError(f"detect() needs an HxW, HxWx3 or HxWx4 image, not shape {image.shape}.")
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    return np.ascontiguousarray(image[:, :, :3])


def _short_side(box: tuple[int, int, int, int]) -> int:
    return min(box[2] - box[0], box[3] - box[1])


def _suppress(faces: list[Face], iou: float) -> list[Face]:
    """Greedy NMS over faces from several passes: the best score of each overlap group wins.

    Besides IoU, a box mostly inside a better box goes too: a model may report a face part.
    """
    if len(faces) < 2:
        return faces
    faces = sorted(faces, key=lambda f: f.score, reverse=True)
    boxes = np.array([f.box for f in faces], dtype=np.float64)
    overlaps = box_iou(boxes, boxes)
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    # intersection / smaller area, from IoU: inter = iou * union = iou * (a + b) / (1 + iou)
    inter = overlaps * (areas[:, None] + areas[None, :]) / (1.0 + overlaps)
    nested = inter / np.minimum(areas[:, None], areas[None, :])
    keep: list[int] = []
    for i in range(len(faces)):
        if all(overlaps[i, k] <= iou and nested[i, k] < _NESTED for k in keep):
            keep.append(i)
    return [faces[i] for i in keep]
