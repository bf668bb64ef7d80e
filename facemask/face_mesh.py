"""MediaPipe's face-landmark model (468 points), run through LiteRT on one face at a time.

Used by the worn-mask generator (facemask/worn_masks.py) to place a mask on a bare face. The model
ships in facemask/assets (see its SOURCE.md); nothing is downloaded.
"""

from __future__ import annotations

import functools
import math
import threading
from importlib import resources

import cv2
import numpy as np

MODEL_FILE = "face_landmark.tflite"
INPUT_SIZE = 192
ROI_SCALE = 1.5  # the landmark model expects the face box enlarged 1.5x (as mediapipe's graph)
MIN_PRESENCE = 0.5

# Named points of the 468 (mediapipe's canonical face mesh).
NOSE_BRIDGE, NOSE_MID, NOSE_TIP, SUBNASALE = 168, 197, 1, 2
UPPER_LIP, LOWER_LIP, CHIN = 0, 17, 152
MOUTH_RIGHT, MOUTH_LEFT = 61, 291
EYE_RIGHT_OUTER, EYE_LEFT_OUTER = 33, 263
FACE_OVAL = (
    10,
    338,
    297,
    332,
    284,
    251,
    389,
    356,
    454,
    323,
    361,
    288,
    397,
    365,
    379,
    378,
    400,
    377,
    152,
    148,
    176,
    149,
    150,
    136,
    172,
    58,
    132,
    93,
    234,
    127,
    162,
    21,
    54,
    103,
    67,
    109,
)


@functools.cache
def _model_bytes() -> bytes:
    return resources.files("facemask").joinpath("assets", MODEL_FILE).read_bytes()


class FaceMesh:
    """468 face landmarks for a face box in an RGB image; thread-safe (one lock)."""

    def __init__(self) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self._interpreter = Interpreter(model_content=_model_bytes(), num_threads=1)
        self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]["index"]
        outputs = {d["name"]: d["index"] for d in self._interpreter.get_output_details()}
        self._points, self._presence = outputs["conv2d_21"], outputs["conv2d_31"]
        self._lock = threading.Lock()

    def landmarks(
        self,
        rgb: np.ndarray,
        box: tuple[float, float, float, float],
        min_presence: float = MIN_PRESENCE,
    ) -> np.ndarray | None:
        """(468, 2) points in image pixels for the face in `box` (x1, y1, x2, y2), or None.

        The box is enlarged 1.5x to a square, resized to 192x192 and scaled to [0, 1]; None when the
        model's face-presence score is below `min_presence` (no face there, or too little of one:
        a masked face often scores low, so a caller that knows a face is there may pass 0).
        """
        x1, y1, x2, y2 = box
        side = max(x2 - x1, y2 - y1) * ROI_SCALE
        cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
        scale = INPUT_SIZE / side
        # affine: image -> ROI pixels (border replicated where the square leaves the image)
        matrix = np.array(
            [[scale, 0.0, INPUT_SIZE / 2 - cx * scale], [0.0, scale, INPUT_SIZE / 2 - cy * scale]],
            dtype=np.float64,
        )
        roi = cv2.warpAffine(
            rgb,
            matrix,
            (INPUT_SIZE, INPUT_SIZE),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )
        with self._lock:
            self._interpreter.set_tensor(self._input, (roi[None].astype(np.float32) / 255.0))
            self._interpreter.invoke()
            points = self._interpreter.get_tensor(self._points).reshape(-1, 3)[:, :2].copy()
            logit = float(self._interpreter.get_tensor(self._presence).reshape(-1)[0])
        if 1.0 / (1.0 + math.exp(min(-logit, 700.0))) < min_presence:  # no overflow
            return None
        return np.stack(
            [(points[:, 0] - matrix[0, 2]) / scale, (points[:, 1] - matrix[1, 2]) / scale], 1
        )
