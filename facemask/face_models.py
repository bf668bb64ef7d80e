"""The bundled face-detection models, each run as one pass over one image.

BlazeFace short and full range through mediapipe's Tasks graph; BlazeFace short range directly
through LiteRT with its SSD decoder (anchors, weighted NMS) in numpy; YuNet through OpenCV. The
models ship in facemask/assets (see its SOURCE.md); nothing is downloaded. mediapipe is imported
on first use only, once per process (it pulls in tensorflow); LiteRT and YuNet do not need it.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from types import ModuleType

import cv2
import numpy as np

MODEL_FILES: dict[str, str] = {
    "short": "face_detection_short_range.tflite",  # BlazeFace, 128x128: faces near a webcam
    "full": "face_detection_full_range_sparse.tflite",  # BlazeFace, 192x192: smaller faces
    "yunet": "face_detection_yunet.onnx",  # YuNet (OpenCV Zoo): any input size, photos
}


@dataclass(frozen=True)
class Face:
    """One detected face, in pixels of the original image."""

    box: tuple[int, int, int, int]  # x1, y1, x2, y2, clipped to the image (x2, y2 exclusive)
    score: float  # detector confidence 0..1
    # (x, y) in image pixels. BlazeFace: right eye, left eye, nose tip, mouth, right ear, left
    # ear. YuNet: right eye, left eye, nose tip, right and left mouth corners.
    keypoints: tuple[tuple[float, float], ...] = ()


ModelPass = Callable[[np.ndarray], list[Face]]
"""One model pass: RGB uint8 image -> faces with float boxes and keypoints in its own pixels."""


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


def ssd_anchors() -> np.ndarray:
    """Anchor centres (N, 2), x y in [0, 1], in the order BlazeFace's outputs use.

    MediaPipe's SsdAnchorsCalculator with fixed_anchor_size: layers sharing a stride share a grid,
    each layer adds two anchors per cell (aspect ratio 1 and the interpolated scale).
    """
    grids = []
    layer = 0
    strides = _SHORT_STRIDES
    while layer < len(strides):
        same = sum(1 for s in strides[layer:] if s == strides[layer])
        cells = math.ceil(_SHORT_INPUT / strides[layer])
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
