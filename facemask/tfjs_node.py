"""Real TF.js under node: run a TF.js graph model on face crops (facemask/js/run_tfjs.mjs).

TF.js results always come from TF.js 4.22 itself, never from a Python re-implementation.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from facemask.convert import check_crops
from facemask.errors import ModelError
from facemask.files import REPO_ROOT

RUN_TFJS_SCRIPT = Path(__file__).resolve().parent / "js" / "run_tfjs.mjs"


TFJS_TIMEOUT_S = 900


def tfjs_unavailable() -> str | None:
    """Why real TF.js cannot run here (one sentence), or None when node and the module exist."""
    if shutil.which("node") is None:
        return "node is not installed, so the TF.js export cannot be run."
    if _node_modules() is None:
        return (
            "node_modules/@tensorflow/tfjs is missing (run `npm ci` in the repository root), "
            "so the TF.js export cannot be run."
        )
    return None


def _node_modules() -> Path | None:
    candidates = [Path(p) for p in os.environ.get("NODE_PATH", "").split(os.pathsep) if p]
    candidates += [
        Path.cwd() / "node_modules",
        REPO_ROOT / "node_modules",
    ]
    for folder in candidates:
        if (folder / "@tensorflow" / "tfjs" / "package.json").is_file():
            return folder
    return None


def run_tfjs(tfjs_dir: str | os.PathLike, crops: np.ndarray) -> dict[str, Any]:
    """Run a TF.js graph model on crops with real TF.js under node (run_tfjs.mjs).

    Returns the script's JSON: probabilities, ms_per_crop, backend, tfjs_version, inputs, outputs.
    Raises ModelError when TF.js is unavailable or fails on the model.
    """
    reason = tfjs_unavailable()
    if reason:
        raise ModelError(reason)
    crops = check_crops(crops)
    dtype = "uint8" if crops.dtype == np.uint8 else "float32"
    modules = _node_modules()
    env = {**os.environ, "NODE_PATH": str(modules)}
    with tempfile.TemporaryDirectory(prefix="facemask-tfjs-") as tmp:
        raw = Path(tmp) / "crops.bin"
        raw.write_bytes(np.ascontiguousarray(crops, dtype=dtype).tobytes())
        args = {
            "model": str(Path(tfjs_dir).resolve()),
            "input": str(raw),
            "dtype": dtype,
            "shape": list(crops.shape),
        }
        try:
            done = subprocess.run(
                ["node", str(RUN_TFJS_SCRIPT), json.dumps(args)],
                capture_output=True,
                text=True,
                timeout=TFJS_TIMEOUT_S,
                env=env,
                cwd=str(modules.parent),
            )
        except subprocess.TimeoutExpired as exc:
            raise ModelError(f"TF.js took over {TFJS_TIMEOUT_S} s on {tfjs_dir}.") from exc
    lines = done.stdout.strip().splitlines()
    try:
        result = json.loads(lines[-1])
    except (IndexError, ValueError):
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise ModelError(f"TF.js could not run {tfjs_dir}: {tail[0]}") from None
    if done.returncode != 0 or "error" in result:
        raise ModelError(f"TF.js could not run {tfjs_dir}: {result.get('error', 'it failed')}.")
    return result
