"""The in-browser live mode's side of the package: which TF.js export a browser loads, and the
settings it must share with the Python pipeline (labels, colours, crop, smoothing, detector).

No Streamlit here: browser_live/ (the component) and app_pages/browser.py (the page) call this.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from facemask.classify import crop_margin, read_card
from facemask.detect import WEBCAM
from facemask.errors import ModelError
from facemask.pipeline import LABEL_TEXT, FaceTracker, label_color

TFJS_FORMAT = "tfjs_graph_model"
CAMERA_MESSAGES = {
    "refused": (
        "The browser blocked the camera: allow it for this site (the camera icon in the address "
        "bar) and press Start again."
    ),
    "noCamera": "No camera was found: connect one and press Start again.",
    "busy": (
        "The camera is in use by another application or could not be started: close that "
        "application and press Start again."
    ),
    "insecure": (
        "Browsers only allow the camera on secure pages: open the app over https or on localhost "
        "(this page was opened over plain http from another machine)."
    ),
    "noWebAssembly": (
        "This browser cannot run WebAssembly, which the in-browser models need: use a current "
        "Chrome, Edge, Firefox or Safari, or the server-side Live page."
    ),
}
"""One sentence for each way a live page's camera can fail, shared by both live pages: the
in-browser page gets them as component arguments (its no-WebAssembly check, which runs before
any of its code, repeats that one sentence; a test holds the two equal), the server-side page
gives them to streamlit-webrtc."""


def browser_export(model_dir: str | os.PathLike) -> Path:
    """The TF.js folder a browser should load for a model directory.

    The card's `serving_browser` entry when it names one (the export chosen for download size
    and agreement with Keras), else the smallest TF.js graph export the card lists. Only a
    plain folder name inside the model directory holding a model.json is accepted.
    Raises ModelError (one sentence) when the model has no usable TF.js export.
    """
    root = Path(model_dir).resolve()
    card = read_card(root)
    exports = card.get("exports", {})
    candidates = [card.get("serving_browser", {}).get("dir")]
    tfjs = [e for e in exports.values() if isinstance(e, dict) and e.get("format") == TFJS_FORMAT]
    candidates += [e.get("dir") for e in sorted(tfjs, key=lambda e: e.get("bytes", float("inf")))]
    for name in candidates:
        if not isinstance(name, str) or not name or Path(name).name != name or name in (".", ".."):
            continue
        folder = (root / name).resolve()
        if folder.parent == root and (folder / "model.json").is_file():
            return folder
    raise ModelError(
        f"The model {card.get('name', root.name)!r} has no TF.js export, so it cannot run in "
        "the browser: export it with `facemask export MODEL_DIR`, or choose another model."
    )


def export_bytes(folder: str | os.PathLike) -> int:
    """Total bytes a browser downloads for a TF.js export (model.json + weight shards)."""
    return sum(p.stat().st_size for p in Path(folder).iterdir() if p.is_file())


def component_args(card: dict[str, Any], min_score: float, min_face: int) -> dict[str, Any]:
    """Everything the page's JavaScript must share with facemask.pipeline, as JSON.

    Labels, thresholds and crop margin from the model card; colours, label texts and the
    smoothing parameters from facemask.pipeline; the detector's NMS from the WEBCAM preset;
    the detector thresholds from the sidebar; the camera error sentences.
    """
    labels = list(card["labels"])
    tracker = {f.name: f.default for f in dataclasses.fields(FaceTracker) if f.name[0] != "_"}
    return {
        "labels": labels,
        "thresholds": dict(card.get("thresholds", {})),
        "inputSize": int(card["input_size"]),
        "labelText": {label: LABEL_TEXT.get(label, label) for label in labels},
        "colors": {label: list(label_color(label)) for label in labels},
        "fallbackColor": list(label_color("")),
        "margin": crop_margin(card),
        "tracker": tracker,
        "minScore": float(min_score),
        "minFace": int(min_face),
        "nmsIou": WEBCAM.nms_iou,
        "messages": CAMERA_MESSAGES,
    }
