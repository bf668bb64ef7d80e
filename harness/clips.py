"""Face clips for the camera tests and the monitor bench, made at run time from the labelled
photos in tests/data/faces (nothing stored): a grey 640x480 canvas with a face drifting right."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import av
import numpy as np
from PIL import Image

FACES = Path(__file__).resolve().parent.parent / "tests" / "data" / "faces"
CANVAS = (640, 480)


def face_canvas(photo: str | None, x: int = 200, height: int = 240) -> np.ndarray:
    """A 640x480 grey frame with a face photo (scaled to `height` px) at column x, or empty."""
    canvas = Image.new("RGB", CANVAS, (96, 96, 96))
    if photo is not None:
        face = Image.open(FACES / photo).convert("RGB")
        face = face.resize((round(face.width * height / face.height), height))
        canvas.paste(face, (x, (CANVAS[1] - height) // 2))
    return np.asarray(canvas)


def write_clip(path: Path, scenes: Sequence[tuple[str | None, float]], fps: int = 10) -> Path:
    """An H.264 mp4 of (photo or None, seconds) scenes, the face drifting right 2 px a frame."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height = CANVAS
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "ultrafast", "g": str(fps)}
        for photo, seconds in scenes:
            for i in range(round(seconds * fps)):
                rgb = face_canvas(photo, x=160 + 2 * i)
                for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                    out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path
