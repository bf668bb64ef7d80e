"""Streamlit custom component: the webcam processed entirely in the user's browser.

The frontend (frontend/src, bundled into frontend/build by `make browser`) runs both models on
TF.js: the package's BlazeFace .tflite and the chosen model's TF.js export. Streamlit serves the
build folder at the component's URL, and each model's TF.js folder at a URL of its own, named by
a hash of its content (Streamlit's component route only serves files inside the folder it was
given); serving.py lets browsers keep all of these for good. Logic shared with the Python
pipeline comes from facemask.browser.
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


@functools.lru_cache(maxsize=64)
def _content_hash(folder: Path, stamp: tuple) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def serve_model(tfjs_dir: Path) -> str:
    """Serve one model's TF.js folder (model.json + shards, nothing else) and return its
    model.json URL relative to the component's page. The URL is named by a hash of the
    folder's content, so browsers may keep its files for good (serving.py) and never mix a
    cached old shard with a new model.json."""
    folder = tfjs_dir.resolve()
    stamp = tuple(
        (p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in sorted(folder.iterdir())
    )
    name = "model_" + _content_hash(folder, stamp)
    components.declare_component(name, path=str(folder))
    return f"../{__name__}.{name}/model.json"


def live_in_browser(model_url: str, settings: dict[str, Any], key: str | None = None) -> None:
    """Render the in-browser live view (Start / Stop, video, boxes, FPS)."""
    _component()(modelUrl=model_url, **settings, key=key, default=None)
