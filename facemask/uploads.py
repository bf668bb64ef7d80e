"""The Upload page's work, testable without Streamlit: photos in, results and downloads out.

Each uploaded file goes through the gate (`load_image`) and the one pipeline; a file that cannot
be used becomes its own one-sentence error and never stops the others.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from facemask.errors import FacemaskError
from facemask.gate import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS
from facemask.images import encode_image, load_image
from facemask.pipeline import LABEL_TEXT, Detection, Pipeline, annotate
from facemask.predict import image_result
from facemask.video import VideoSummary

IMAGE_TYPES = tuple(extension.lstrip(".") for extension in IMAGE_EXTENSIONS)
"""Extensions the Upload page offers; the gate checks the content whatever the name says."""
VIDEO_TYPES = tuple(extension.lstrip(".") for extension in VIDEO_EXTENSIONS)
NO_FACE_HINT = (
    "No face was found in this image. If it is a close-up of one face, "
    "classify the whole image as that face."
)


@dataclass(frozen=True)
class ImageOutcome:
    """One uploaded photo: its `predict --json` object, annotated PNG and face rows, or an error."""

    name: str
    result: dict[str, Any] | None = None
    png: bytes = b""
    rows: list[dict[str, Any]] = field(default_factory=list)
    error: FacemaskError | None = None


def face_rows(detections: Sequence[Detection]) -> list[dict[str, Any]]:
    """The page's face table: one row per face, labels in words."""
    return [
        {
            "face": i,
            "box": ", ".join(str(v) for v in det.box),
            "label": LABEL_TEXT.get(det.label, det.label),
            "confidence": round(det.confidence, 4),
            "detection score": round(det.detection_score, 4),
        }
        for i, det in enumerate(detections, start=1)
    ]


def analyse_image(
    data: bytes, name: str, pipeline: Pipeline, whole_image: bool = False
) -> ImageOutcome:
    """Gate, detect, classify and draw one uploaded photo; a user's bad file is its `error`.

    With whole_image and no face found, the whole image is drawn as one classified face.
    """
    try:
        rgb = load_image(data, name=name)
        result, detections, whole = image_result(pipeline, rgb, name, whole_image=whole_image)
        shown = [whole] if whole is not None and not detections else detections
        png = encode_image(annotate(rgb, shown, legend=pipeline.labels), "PNG")
    except FacemaskError as exc:
        return ImageOutcome(name, error=exc)
    return ImageOutcome(name, result, png, face_rows(detections))


def whole_image_sentence(result: dict[str, Any]) -> str:
    """'Whole image: **Mask** (97% confident).' for a result made with whole_image."""
    label = LABEL_TEXT.get(result["image_label"], result["image_label"])
    return f"Whole image: **{label}** ({result['image_confidence']:.0%} confident)."


def results_jsonl(results: Iterable[dict[str, Any]]) -> str:
    """One JSON object per image, as `facemask predict --json` prints them."""
    return "".join(json.dumps(r) + "\n" for r in results)


RESULTS_NAME = "facemask_results"
"""The file name of the results download (.csv, .jsonl)."""


def annotated_name(name: str, suffix: str = ".png") -> str:
    """The file name an annotated image (or video, `suffix` ".mp4") of `name` is saved under."""
    return f"{Path(name).stem}_annotated{suffix}"


def annotated_zip(outcomes: Iterable[ImageOutcome]) -> bytes:
    """Every annotated PNG in one zip (names made unique when two uploads share a stem)."""
    buffer = io.BytesIO()
    seen: set[str] = set()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for outcome in outcomes:
            if outcome.error is not None:
                continue
            base = annotated_name(outcome.name)
            name, n = base, 1
            while name in seen:
                n += 1
                name = f"{Path(base).stem}-{n}.png"
            seen.add(name)
            archive.writestr(name, outcome.png)  # PNG is compressed already
    return buffer.getvalue()


def video_result(summary: VideoSummary) -> dict[str, Any]:
    """What the page keeps of a finished video: the MP4 bytes and the summary's numbers."""
    return {
        "mp4": summary.output.read_bytes(),
        "frames": summary.frames,
        "seconds": summary.seconds,
        "fps": summary.fps,
        "width": summary.width,
        "height": summary.height,
        "faces": summary.faces_per_label,
        "notes": list(summary.notes),
    }


def video_sentence(done: dict[str, Any]) -> str:
    """'N frames (S s at F fps), W x H px; faces: ...' for a finished video."""
    counts = ", ".join(
        f"{n} {LABEL_TEXT.get(label, label).lower()}" for label, n in done["faces"].items()
    )
    return (
        f"{done['frames']} frames ({done['seconds']:.1f} s at {done['fps']:.3g} fps), "
        f"{done['width']} x {done['height']} px; faces: {counts or 'none found'}."
    )
