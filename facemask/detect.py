"""Face detection: BlazeFace through the mediapipe Tasks FaceDetector, plus tiling for photos.

The .tflite models ship in facemask/assets (see its SOURCE.md); nothing is downloaded. mediapipe
is imported on first use only, once per process (it pulls in tensorflow: about 4 s).
"""

from __future__ import annotations

import functools
import math
import threading
import weakref
from dataclasses import dataclass
from importlib import resources
from types import ModuleType
from typing import Any

import numpy as np

from facemask.gate import fit_side

MODEL_FILES: dict[str, str] = {
    "short": "face_detection_short_range.tflite",  # 128x128 input: faces near a webcam
    "full": "face_detection_full_range_sparse.tflite",  # 192x192 input: smaller faces in photos
}
_EDGE_MARGIN = 0.02
"""A tile detection this close (fraction of the tile side) to an inner tile edge is cut: dropped."""
_NESTED = 0.6
"""Across passes, a box with this much of its area inside a better-scored box is a face part."""


@dataclass(frozen=True)
class Face:
    """One detected face, in pixels of the original image."""

    box: tuple[int, int, int, int]  # x1, y1, x2, y2, clipped to the image (x2, y2 exclusive)
    score: float  # detector confidence 0..1
    keypoints: tuple[tuple[float, float], ...] = ()  # (x, y): eyes, nose, mouth, ears


@dataclass(frozen=True)
class DetectorSettings:
    """How to run the detector. `tiles` > 0 adds passes over overlapping square tiles."""

    model: str = "short"  # "short" (webcam, faces near camera) | "full" (small faces in photos)
    min_score: float = 0.5
    min_face: int = 20  # drop faces whose shorter box side is below this many px
    tiles: int = 0  # 0: whole image only; n: also n overlapping square tiles across the short side
    tile_overlap: float = 0.5  # fraction of a tile shared with its neighbour
    min_tile: int = 0  # fewer tiles on small images, so that no tile side is below this many px
    nms_iou: float = 0.3  # boxes overlapping more than this are one face (also mediapipe's NMS)
    close_up_pass: bool = False  # model "full": also run "short" on the whole image (big faces)

    def __post_init__(self) -> None:
        if self.model not in MODEL_FILES:
            raise ValueError(f"model must be one of {sorted(MODEL_FILES)}, not {self.model!r}.")
        if not 0.0 <= self.min_score <= 1.0:
            raise ValueError(f"min_score must be in [0, 1], not {self.min_score}.")
        if min(self.min_face, self.tiles, self.min_tile) < 0:
            raise ValueError("min_face, tiles and min_tile must not be negative.")
        if not 0.0 <= self.tile_overlap < 1.0:
            raise ValueError(f"tile_overlap must be in [0, 1), not {self.tile_overlap}.")
        if not 0.0 < self.nms_iou <= 1.0:
            raise ValueError(f"nms_iou must be in (0, 1], not {self.nms_iou}.")


WEBCAM = DetectorSettings(model="short", min_score=0.5, min_face=20)
"""Live 640x480 frames: one short-range pass, about 1.5-2 ms (docs/detection.md)."""
PHOTO = DetectorSettings(model="short", min_score=0.6, min_face=16, tiles=4, min_tile=128)
"""Uploaded photos: short-range on the whole image plus 4 tiles across; see docs/detection.md."""


@functools.cache
def _mediapipe() -> tuple[ModuleType, ModuleType, ModuleType]:
    """Import mediapipe once, on first use (it imports tensorflow)."""
    import mediapipe
    from mediapipe.tasks.python import vision
    from mediapipe.tasks.python.core import base_options

    return mediapipe, vision, base_options


@functools.cache
def model_bytes(model: str) -> bytes:
    """The bundled .tflite model for "short" or "full"."""
    return resources.files("facemask").joinpath("assets", MODEL_FILES[model]).read_bytes()


class FaceDetector:
    """Finds faces in RGB images. One instance may be shared by threads (calls are serialised)."""

    def __init__(self, settings: DetectorSettings = WEBCAM) -> None:
        self.settings = settings
        mediapipe, vision, base_options = _mediapipe()
        self._image_cls = mediapipe.Image
        self._srgb = mediapipe.ImageFormat.SRGB
        models = {settings.model} | ({"short"} if settings.close_up_pass else set())
        self._detectors: dict[str, Any] = {}
        for model in sorted(models):
            options = vision.FaceDetectorOptions(
                base_options=base_options.BaseOptions(model_asset_buffer=model_bytes(model)),
                running_mode=vision.RunningMode.IMAGE,
                min_detection_confidence=settings.min_score,
                min_suppression_threshold=settings.nms_iou,
            )
            self._detectors[model] = vision.FaceDetector.create_from_options(options)
        self._finalizer = weakref.finalize(self, _close_quietly, list(self._detectors.values()))
        self._lock = threading.Lock()

    def close(self) -> None:
        """Release the mediapipe graph; the detector cannot be used afterwards."""
        self._finalizer()

    def __enter__(self) -> FaceDetector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def detect(self, rgb: np.ndarray) -> list[Face]:
        """Faces in an RGB uint8 image (HxWx3; gray and RGBA accepted), best score first."""
        image = _as_rgb(rgb)
        if image.shape[0] == 0 or image.shape[1] == 0:
            return []
        image, scale = fit_side(image)  # what every native library downstream accepts
        height, width = image.shape[:2]
        settings = self.settings
        whole = (0, 0, width, height)
        tiles = tile_windows(
            width, height, settings.tiles, settings.tile_overlap, settings.min_tile
        )
        passes = [(settings.model, whole)] + [(settings.model, w) for w in tiles if w != whole]
        if settings.close_up_pass and settings.model != "short":
            passes.append(("short", whole))
        faces: list[Face] = []
        with self._lock:
            for model, window in passes:
                faces += self._detect_window(self._detectors[model], image, window)
        faces = _suppress(faces, settings.nms_iou) if len(passes) > 1 else faces
        if scale != 1.0:
            faces = [_unscaled(f, scale, rgb.shape[1], rgb.shape[0]) for f in faces]
        faces = [f for f in faces if _short_side(f.box) >= settings.min_face]
        return sorted(faces, key=lambda f: f.score, reverse=True)

    def _detect_window(
        self, detector: Any, image: np.ndarray, window: tuple[int, int, int, int]
    ) -> list[Face]:
        """Run mediapipe on one window (x0, y0, x1, y1) and map results to image pixels."""
        x0, y0, x1, y1 = window
        height, width = image.shape[:2]
        whole = window == (0, 0, width, height)
        crop = image if whole else np.ascontiguousarray(image[y0:y1, x0:x1])
        result = detector.detect(self._image_cls(image_format=self._srgb, data=crop))
        tile_w, tile_h = x1 - x0, y1 - y0
        margin = _EDGE_MARGIN * max(tile_w, tile_h)
        faces = []
        for detection in result.detections:
            bb = detection.bounding_box
            bx1, by1 = x0 + bb.origin_x, y0 + bb.origin_y
            bx2, by2 = bx1 + bb.width, by1 + bb.height
            if not whole and _touches_inner_edge(
                (bx1, by1, bx2, by2), window, (width, height), margin
            ):
                continue  # cut by the tile border: a neighbouring tile or the whole pass has it
            box = (
                int(np.clip(bx1, 0, width)),
                int(np.clip(by1, 0, height)),
                int(np.clip(bx2, 0, width)),
                int(np.clip(by2, 0, height)),
            )
            if box[2] <= box[0] or box[3] <= box[1]:
                continue
            score = max((c.score for c in detection.categories), default=0.0)
            keypoints = tuple(
                (x0 + kp.x * tile_w, y0 + kp.y * tile_h) for kp in detection.keypoints or ()
            )
            faces.append(Face(box=box, score=float(score), keypoints=keypoints))
        return faces


def _close_quietly(detectors: list[Any]) -> None:
    """Close mediapipe tasks, also at interpreter exit."""
    for detector in detectors:
        try:
            detector.close()
        except RuntimeError:
            # NOTE: at exit mediapipe's dispatcher thread is already gone, and its own __del__
            # would then fail noisily during module teardown; drop the handle, the OS frees it.
            detector._handle = None


def tile_windows(
    width: int, height: int, tiles: int, overlap: float, min_tile: int = 0
) -> list[tuple[int, int, int, int]]:
    """Square windows (x0, y0, x1, y1), `tiles` across the short side, evenly spread.

    Fewer across when tiles would be smaller than `min_tile` px; none if even one would be.
    """
    short = min(width, height)
    for across in range(tiles, 0, -1):
        side = min(short, math.ceil(short / (across - (across - 1) * overlap)))
        if side >= min_tile:
            break
    else:
        return []
    stride = side * (1.0 - overlap)

    def starts(length: int) -> list[int]:
        count = max(1, math.ceil((length - side) / stride - 1e-9) + 1)
        return sorted({round(s) for s in np.linspace(0, length - side, count)})

    return [(x, y, x + side, y + side) for y in starts(height) for x in starts(width)]


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


def _unscaled(face: Face, scale: float, width: int, height: int) -> Face:
    """A face found in a scaled-down image, in pixels of the original."""
    x1, y1, x2, y2 = (v / scale for v in face.box)
    box = (
        int(np.clip(round(x1), 0, width)),
        int(np.clip(round(y1), 0, height)),
        int(np.clip(round(x2), 0, width)),
        int(np.clip(round(y2), 0, height)),
    )
    keypoints = tuple((x / scale, y / scale) for x, y in face.keypoints)
    return Face(box=box, score=face.score, keypoints=keypoints)


def _short_side(box: tuple[int, int, int, int]) -> int:
    return min(box[2] - box[0], box[3] - box[1])


def _touches_inner_edge(
    box: tuple[float, float, float, float],
    window: tuple[int, int, int, int],
    size: tuple[int, int],
    margin: float,
) -> bool:
    """Whether the box reaches a window edge that is not also an image edge."""
    x1, y1, x2, y2 = box
    wx0, wy0, wx1, wy1 = window
    width, height = size
    return bool(
        (wx0 > 0 and x1 <= wx0 + margin)
        or (wy0 > 0 and y1 <= wy0 + margin)
        or (wx1 < width and x2 >= wx1 - margin)
        or (wy1 < height and y2 >= wy1 - margin)
    )


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix between boxes a (N x 4) and b (M x 4), x1 y1 x2 y2."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    ix = np.clip(
        np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None
    )
    iy = np.clip(
        np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None
    )
    inter = ix * iy
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def _suppress(faces: list[Face], iou: float) -> list[Face]:
    """Greedy NMS over faces from several passes: the best score of each overlap group wins.

    Besides IoU, a box mostly inside a better box goes too: zoomed-in tiles see face parts.
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
