"""Streamlit custom component: the webcam processed entirely in the user's browser.

The frontend (frontend/src, bundled into frontend/build by `make browser`) runs MediaPipe Tasks
and TF.js; Streamlit serves the build folder at the component's URL, and each model's TF.js
folder at a URL of its own (Streamlit's component route only serves files inside the folder it
was given). Logic shared with the Python pipeline comes from facemask.browser.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Any

from streamlit.components import v1 as components

BUILD_DIR = Path(__file__).resolve().parent / "frontend" / "build"
BUILD_MARK = BUILD_DIR / "BUILT"
"""Written last by frontend/build.mjs: the build is complete."""


def is_built() -> bool:
    """Whether the frontend has been built (`make browser`, part of `make run`)."""
    return BUILD_MARK.is_file()


@functools.cache
def _component() -> components.CustomComponent:
    return components.declare_component("browser_live", path=str(BUILD_DIR))


def serve_model(tfjs_dir: Path) -> str:
    """Serve one model's TF.js folder (model.json + shards, nothing else) and return its
    model.json URL relative to the component's page. The URL changes with the model's files,
    so a browser never mixes a cached old shard with a new model.json."""
    model_json = tfjs_dir / "model.json"
    stamp = f"{tfjs_dir.resolve()}:{model_json.stat().st_mtime_ns}:{model_json.stat().st_size}"
    name = "model_" + hashlib.sha256(stamp.encode()).hexdigest()[:16]
    components.declare_component(name, path=str(tfjs_dir))
    return f"../{__name__}.{name}/model.json"


def live_in_browser(model_url: str, settings: dict[str, Any], key: str | None = None) -> None:
    """Render the in-browser live view (Start / Stop, video, boxes, FPS)."""
    _component()(modelUrl=model_url, **settings, key=key, default=None)
