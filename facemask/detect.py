"""Face detection: BlazeFace (mediapipe Tasks or LiteRT directly) and YuNet (OpenCV), plus tiling.

The models ship in facemask/assets (see its SOURCE.md); nothing is downloaded. mediapipe is
imported on first use only, once per process (it pulls in tensorflow: about 4 s); the LiteRT
and YuNet backends do not need it.
"""

from __future__ import annotations

import functools
import math
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from types import ModuleType
from typing import Any

import cv2
import numpy as np

from facemask.gate import MAX_DETECT_SIDE, fit_side

MODEL_FILES: dict[str, str] = {
    "short": "face_detection_short_range.tflite",  # BlazeFace, 128x128: faces near a webcam
    "full": "face_detection_full_range_sparse.tflite",  # BlazeFace, 192x192: smaller faces
    "yunet": "face_detection_yunet.onnx",  # YuNet (OpenCV Zoo): any input size, photos
}
BACKENDS = ("tasks", "litert")
"""How BlazeFace runs: the mediapipe Tasks graph, or the .tflite through LiteRT with our decoder."""
_EDGE_MARGIN = 0.02
"""A tile detection this close (fraction of the tile side) to an inner tile edge is cut: dropped."""
_NESTED = 0.6
"""Across passes, a box with this much of its area inside a better-scored box is a face part."""


@dataclass(frozen=True)
class Face:
    """One detected face, in pixels of the original image."""

    box: tuple[int, int, int, int]  # x1, y1, x2, y2, clipped to the image (x2, y2 exclusive)
    score: float  # detector confidence 0..1
    # (x, y) in image pixels. BlazeFace: right eye, left eye, nose tip, mouth, right ear, left
    # ear. YuNet: right eye, left eye, nose tip, right and left mouth corners.
    keypoints: tuple[tuple[float, float], ...] = ()


@dataclass(frozen=True)
class DetectorSettings:
    """How to run the detector. `tiles` > 0 adds passes over overlapping square tiles."""

    model: str = "short"  # "short" (webcam) | "full" (BlazeFace full range) | "yunet" (photos)
    min_score: float = 0.5
    min_face: int = 20  # drop faces whose shorter box side is below this many px
    tiles: int = 0  # 0: whole image only; n: also n overlapping square tiles across the short side
    tile_overlap: float = 0.5  # fraction of a tile shared with its neighbour
    min_tile: int = 0  # fewer tiles on small images, so that no tile side is below this many px
    nms_iou: float = 0.3  # boxes overlapping more than this are one face (also each model's NMS)
    close_up_pass: bool = False  # model "full"/"yunet": also run "short" on the whole image
    backend: str = "tasks"  # BlazeFace runtime: "tasks" (mediapipe graph) | "litert" (direct)
    max_pixels: int = 0  # work on a scaled copy of at most this many pixels (0: no bound)
    scale: float = 1.0  # "yunet" only: run on the image (or tiles) resized by this factor
    # "yunet" only: share of each box's top cut off. YuNet's box reaches higher up the forehead
    # than BlazeFace's and the scene annotations; cut, it matches both (docs/detection.md).
    top_cut: float = 0.1

    def __post_init__(self) -> None:
        if self.model not in MODEL_FILES:
            raise ValueError(f"model must be one of {sorted(MODEL_FILES)}, not {self.model!r}.")
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, not {self.backend!r}.")
        if self.backend == "litert" and self.model == "full":
            raise ValueError('backend "litert" runs the "short" model only.')
        if not 0.0 <= self.min_score <= 1.0:
            raise ValueError(f"min_score must be in [0, 1], not {self.min_score}.")
        if min(self.min_face, self.tiles, self.min_tile, self.max_pixels) < 0:
            raise ValueError("min_face, tiles, min_tile and max_pixels must not be negative.")
        if not 0.0 <= self.tile_overlap < 1.0:
            raise ValueError(f"tile_overlap must be in [0, 1), not {self.tile_overlap}.")
        if not 0.0 < self.nms_iou <= 1.0:
            raise ValueError(f"nms_iou must be in (0, 1], not {self.nms_iou}.")
        if not 0.25 <= self.scale <= 4.0 or (self.scale != 1.0 and self.model != "yunet"):
            raise ValueError('scale must be in [0.25, 4], and 1 unless model is "yunet".')
        if not 0.0 <= self.top_cut < 0.5:
            raise ValueError(f"top_cut must be in [0, 0.5), not {self.top_cut}.")


WEBCAM = DetectorSettings(model="short", min_score=0.5, min_face=20, backend="litert")
"""Live 640x480 frames: one short-range BlazeFace pass run directly through LiteRT. bench/latency.py
measured 1.2 ms median per frame with one face (1.3 ms with three) on a quiet 2-core machine; the
same model through mediapipe's Tasks graph took 2.0 ms (2.2 ms) in that run."""
PHOTO = DetectorSettings(
    model="yunet",
    min_score=0.6,
    min_face=16,
    close_up_pass=True,
    backend="litert",
    max_pixels=1920 * 1440,
)
"""Uploaded photos: one YuNet pass at the photo's own size (scaled down to 2.8 megapixels, as
1920x1440, when larger), plus a short-range BlazeFace pass for faces too large for YuNet; see
docs/detection.md."""


@functools.cache
def _mediapipe() -> tuple[ModuleType, ModuleType, ModuleType]:
    """Import mediapipe once, on first use (it imports tensorflow)."""
    import mediapipe
    from mediapipe.tasks.python import vision
    from mediapipe.tasks.python.core import base_options

    return mediapipe, vision, base_options


@functools.cache
def model_bytes(model: str) -> bytes:
    """The bundled model file for "short", "full" or "yunet"."""
    return resources.files("facemask").joinpath("assets", MODEL_FILES[model]).read_bytes()


Backend = Callable[[np.ndarray], list[Face]]
"""One model pass: RGB uint8 image -> faces with float boxes and keypoints in its own pixels."""


class TasksBlazeFace:
    """BlazeFace through mediapipe's Tasks FaceDetector (IMAGE mode)."""

    def __init__(self, model: str, min_score: float, nms_iou: float) -> None:
        mediapipe, vision, base_options = _mediapipe()
        self._image = functools.partial(mediapipe.Image, image_format=mediapipe.ImageFormat.SRGB)
        options = vision.FaceDetectorOptions(
            base_options=base_options.BaseOptions(model_asset_buffer=model_bytes(model)),
            running_mode=vision.RunningMode.IMAGE,
            min_detection_confidence=min_score,
            min_suppression_threshold=nms_iou,
        )
        self.task = vision.FaceDetector.create_from_options(options)

    def __call__(self, rgb: np.ndarray) -> list[Face]:
        height, width = rgb.shape[:2]
        faces = []
        for detection in self.task.detect(self._image(data=rgb)).detections:
            bb = detection.bounding_box
            box = (bb.origin_x, bb.origin_y, bb.origin_x + bb.width, bb.origin_y + bb.height)
            score = max((c.score for c in detection.categories), default=0.0)
            keypoints = tuple((kp.x * width, kp.y * height) for kp in detection.keypoints or ())
            faces.append(Face(box=box, score=float(score), keypoints=keypoints))
        return faces


_SHORT_INPUT = 128
_SHORT_STRIDES = (8, 16, 16, 16)
"""MediaPipe's face_detection_short_range SSD anchor options: 2 anchors per layer and cell."""


def ssd_anchors(
    input_size: int = _SHORT_INPUT, strides: tuple[int, ...] = _SHORT_STRIDES
) -> np.ndarray:
    """Anchor centres (N, 2), x y in [0, 1], in the order BlazeFace's outputs use.

    MediaPipe's SsdAnchorsCalculator with fixed_anchor_size: layers sharing a stride share a grid,
    each layer adds two anchors per cell (aspect ratio 1 and the interpolated scale).
    """
    grids = []
    layer = 0
    while layer < len(strides):
        same = sum(1 for s in strides[layer:] if s == strides[layer])
        cells = math.ceil(input_size / strides[layer])
        ys, xs = np.meshgrid(np.arange(cells), np.arange(cells), indexing="ij")
        centres = (np.stack([xs, ys], axis=-1).reshape(-1, 2) + 0.5) / cells
        grids.append(np.repeat(centres, 2 * same, axis=0))
        layer += same
    return np.concatenate(grids).astype(np.float32)


def weighted_nms(
    boxes: np.ndarray, scores: np.ndarray, keypoints: np.ndarray, iou: float
) -> list[tuple[np.ndarray, float, np.ndarray]]:
    """MediaPipe's weighted NMS: each group overlapping the best box by IoU > `iou` is merged
    into one box (and keypoints) averaged by score; the group keeps its best score."""
    order = np.argsort(-scores, kind="stable")
    boxes, scores, keypoints = boxes[order], scores[order], keypoints[order]
    points = keypoints.reshape(len(keypoints), -1)
    free = np.ones(len(boxes), dtype=bool)
    merged = []
    for top in range(len(boxes)):  # a live frame has one group per face: a pass or two
        if not free[top]:
            continue
        group = free & (box_iou(boxes[top], boxes)[0] > iou)  # one IoU row per group
        group[top] = True  # the best box is always in its own group (even with no area)
        free &= ~group
        weights = scores[group] / scores[group].sum()
        merged.append(
            (
                weights @ boxes[group],
                float(scores[top]),
                (weights @ points[group]).reshape(keypoints.shape[1:]),
            )
        )
    return merged


class LiteRTBlazeFace:
    """BlazeFace short range run directly through LiteRT: the Tasks graph's steps, in numpy.

    Letterbox to 128x128 (the image centred, zero padding, bilinear as mediapipe's
    ImageToTensor), scale to [-1, 1], invoke, decode the 896 SSD anchors, sigmoid scores, keep
    those >= min_score, weighted NMS. Not thread-safe on its own (FaceDetector holds a lock).
    """

    def __init__(self, min_score: float, nms_iou: float, num_threads: int | None = None) -> None:
        from ai_edge_litert.interpreter import Interpreter

        from facemask.classify import DEFAULT_THREADS

        self.min_score, self.nms_iou = min_score, nms_iou
        self._interpreter = Interpreter(
            model_content=model_bytes("short"), num_threads=num_threads or DEFAULT_THREADS
        )
        self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]["index"]
        outputs = {d["name"]: d["index"] for d in self._interpreter.get_output_details()}
        self._regressors, self._scores = outputs["regressors"], outputs["classificators"]
        self._anchors = ssd_anchors()
        # logit of min_score: compare raw scores before the sigmoid (most anchors fail)
        clipped = min(max(min_score, 1e-7), 1 - 1e-7)
        self._min_logit = math.log(clipped / (1.0 - clipped))

    def __call__(self, rgb: np.ndarray) -> list[Face]:
        height, width = rgb.shape[:2]
        side = max(width, height)
        left, top = (width - side) / 2.0, (height - side) / 2.0  # the square ROI, centred
        s = _SHORT_INPUT / side
        matrix = np.array([[s, 0.0, -left * s], [0.0, s, -top * s]])
        letterboxed = cv2.warpAffine(
            rgb,
            matrix,
            (_SHORT_INPUT, _SHORT_INPUT),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0,
        )
        tensor = self._interpreter.tensor(self._input)()  # the input tensor itself, in place
        tensor[0] = letterboxed
        np.multiply(tensor, np.float32(2.0 / 255.0), out=tensor)
        np.subtract(tensor, np.float32(1.0), out=tensor)  # [0, 255] -> [-1, 1]
        del tensor  # LiteRT refuses to invoke while a view of its buffers is held
        self._interpreter.invoke()
        logits = np.clip(self._interpreter.get_tensor(self._scores)[0, :, 0], -100.0, 100.0)
        keep = np.flatnonzero(logits >= self._min_logit)
        if keep.size == 0:
            return []
        raw = self._interpreter.get_tensor(self._regressors)[0, keep] / _SHORT_INPUT
        anchors = self._anchors[keep]
        centres = raw[:, 0:2] + anchors
        half = raw[:, 2:4] / 2.0
        boxes = np.concatenate([centres - half, centres + half], axis=1)
        keypoints = raw[:, 4:16].reshape(-1, 6, 2) + anchors[:, None, :]
        scores = 1.0 / (1.0 + np.exp(-logits[keep]))
        faces = []
        origin = np.array([left, top])
        for box, score, points in weighted_nms(boxes, scores, keypoints, self.nms_iou):
            x1, y1, x2, y2 = box * side + np.concatenate([origin, origin])
            # whole pixels as the Tasks API reports them: origin and size truncated
            x, y = int(x1), int(y1)
            faces.append(
                Face(
                    box=(x, y, x + int(x2 - x1), y + int(y2 - y1)),
                    score=score,
                    keypoints=tuple((float(x), float(y)) for x, y in points * side + origin),
                )
            )
        return faces


_YUNET_MIN_SIDE = 64


class YuNet:
    """YuNet through OpenCV's FaceDetectorYN, its input size set to each image's own size."""

    def __init__(self, min_score: float, nms_iou: float, top_cut: float = 0.0) -> None:
        self.top_cut = top_cut
        model = resources.files("facemask").joinpath("assets", MODEL_FILES["yunet"])
        with resources.as_file(model) as path:
            self._net = cv2.FaceDetectorYN.create(
                str(path), "", (320, 320), min_score, nms_iou, 5000
            )

    def __call__(self, rgb: np.ndarray) -> list[Face]:
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        height, width = bgr.shape[:2]
        if min(height, width) < _YUNET_MIN_SIDE:
            # NOTE: on inputs 32 px high or less, OpenCV 4.14's YuNet returns a garbage face
            # (score 1, coordinates about 1e25); black padding to 64 px avoids it.
            bgr = cv2.copyMakeBorder(
                bgr,
                0,
                max(0, _YUNET_MIN_SIDE - height),
                0,
                max(0, _YUNET_MIN_SIDE - width),
                cv2.BORDER_CONSTANT,
                value=0,
            )
        self._net.setInputSize((bgr.shape[1], bgr.shape[0]))
        _, rows = self._net.detect(bgr)
        faces = []
        for row in () if rows is None else rows:
            if not np.isfinite(row).all():
                continue
            x, y, w, h = (float(v) for v in row[:4])
            keypoints = tuple((float(px), float(py)) for px, py in row[4:14].reshape(5, 2))
            box = (x, y + self.top_cut * h, x + w, y + h)
            faces.append(Face(box=box, score=float(row[14]), keypoints=keypoints))
        return faces


def _backend(model: str, settings: DetectorSettings) -> Backend:
    if model == "yunet":
        return YuNet(settings.min_score, settings.nms_iou, settings.top_cut)
    if settings.backend == "litert":
        return LiteRTBlazeFace(settings.min_score, settings.nms_iou)
    return TasksBlazeFace(model, settings.min_score, settings.nms_iou)


class FaceDetector:
    """Finds faces in RGB images. One instance may be shared by threads (calls are serialised)."""

    def __init__(self, settings: DetectorSettings = WEBCAM) -> None:
        self.settings = settings
        models = {settings.model} | ({"short"} if settings.close_up_pass else set())
        self._backends: dict[str, Backend] = {m: _backend(m, settings) for m in sorted(models)}
        tasks = [b.task for b in self._backends.values() if isinstance(b, TasksBlazeFace)]
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
        work_h, work_w = image.shape[:2]
        whole = (0, 0, work_w, work_h)
        tiles = tile_windows(
            work_w, work_h, settings.tiles, settings.tile_overlap, settings.min_tile
        )
        passes = [(settings.model, whole)] + [(settings.model, w) for w in tiles if w != whole]
        if settings.close_up_pass and settings.model != "short":
            passes.append(("short", whole))
        faces: list[Face] = []
        with self._lock:
            for model, window in passes:
                zoom = settings.scale if model == "yunet" else 1.0
                faces += self._detect_window(self._backends[model], image, window, zoom)
        faces = _suppress(faces, settings.nms_iou) if len(passes) > 1 else faces
        faces = [_to_original(f, shrink, width, height) for f in faces]
        faces = [f for f in faces if f.box[2] > f.box[0] and f.box[3] > f.box[1]]
        faces = [f for f in faces if _short_side(f.box) >= settings.min_face]
        return sorted(faces, key=lambda f: f.score, reverse=True)

    @staticmethod
    def _detect_window(
        backend: Backend, image: np.ndarray, window: tuple[int, int, int, int], zoom: float
    ) -> list[Face]:
        """Run one model on one window (x0, y0, x1, y1), resized by `zoom`; map to image pixels.

        Boxes stay float here (rounded once, in the original image's pixels)."""
        x0, y0, x1, y1 = window
        height, width = image.shape[:2]
        whole = window == (0, 0, width, height)
        if whole and zoom == 1.0:
            return backend(image)  # the one pass of a live frame: already in image pixels
        crop = image if whole else np.ascontiguousarray(image[y0:y1, x0:x1])
        if zoom != 1.0:
            size = (max(1, round(crop.shape[1] * zoom)), max(1, round(crop.shape[0] * zoom)))
            crop = cv2.resize(crop, size, interpolation=cv2.INTER_LINEAR)
        margin = _EDGE_MARGIN * max(x1 - x0, y1 - y0)
        faces = []
        for face in backend(crop):
            bx1, by1, bx2, by2 = (v / zoom for v in face.box)
            box = (x0 + bx1, y0 + by1, x0 + bx2, y0 + by2)
            if not whole and _touches_inner_edge(box, window, (width, height), margin):
                continue  # cut by the tile border: a neighbouring tile or the whole pass has it
            keypoints = tuple((x0 + x / zoom, y0 + y / zoom) for x, y in face.keypoints)
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
