"""Per-image results in the `predict --json` contract (README), shared by CLI and app."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any

import numpy as np

from facemask.pipeline import Detection, Pipeline


def image_result(
    pipeline: Pipeline,
    rgb: np.ndarray,
    file: str,
    *,
    whole_image: bool = False,
) -> tuple[dict[str, Any], list[Detection], Detection | None]:
    """Detect and classify every face of one image.

    Returns the JSON Lines object of the contract, the detections (for drawing) and, with
    whole_image, the image classified as one face crop (else None).
    """
    detections = pipeline.process(rgb)
    height, width = rgb.shape[:2]
    result: dict[str, Any] = {
        "file": file,
        "width": int(width),
        "height": int(height),
        "faces": [d.as_json() for d in detections],
    }
    whole = pipeline.classify_whole(rgb) if whole_image else None
    if whole is not None:
        result["image_label"] = whole.label
        result["image_confidence"] = round(whole.confidence, 4)
    return result, detections, whole


CSV_COLUMNS = ("file", "face", "x1", "y1", "x2", "y2", "label", "confidence", "detection_score")


def results_csv(results: Iterable[dict[str, Any]]) -> str:
    """One CSV row per face of each result object."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for result in results:
        for i, face in enumerate(result["faces"], start=1):
            writer.writerow(
                [
                    result["file"],
                    i,
                    *face["box"],
                    face["label"],
                    face["confidence"],
                    face["detection_score"],
                ]
            )
    return buffer.getvalue()
