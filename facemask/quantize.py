"""The in-browser export's weight plan: uint8 weights, float16 where 8 bits hurt, within a budget.

Also `compact_graph_json`, which shortens a TF.js model.json's node names (part of the download).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from facemask.errors import ModelError

SMALL_TENSOR = 10_000
"""Weights smaller than this (biases, depthwise and first-layer kernels, the head) stay float16
whenever the budget allows: they cost little and 8 bits hurt them most."""


def tfjs_weights(tfjs_dir: str | os.PathLike) -> dict[str, np.ndarray]:
    """The weights of an unquantized TF.js graph model, by name, read from its shards."""
    folder = Path(tfjs_dir)
    manifest = json.loads((folder / "model.json").read_text())["weightsManifest"]
    weights: dict[str, np.ndarray] = {}
    for group in manifest:
        data = b"".join((folder / Path(shard).name).read_bytes() for shard in group["paths"])
        offset = 0
        for spec in group["weights"]:
            if "quantization" in spec or spec["dtype"] not in ("float32", "int32"):
                raise ModelError(f"{folder} is quantized: read the float32 TF.js export.")
            dtype = np.dtype("<f4" if spec["dtype"] == "float32" else "<i4")
            count = int(np.prod(spec["shape"], dtype=np.int64))
            weights[spec["name"]] = np.frombuffer(data, dtype, count, offset).reshape(spec["shape"])
            offset += count * dtype.itemsize
    return weights


def uint8_noise(weights: np.ndarray) -> float:
    """Noise-to-signal power of 8-bit affine quantization of a tensor (step^2/12 over mean w^2):
    a tensor with outliers gets a coarse step for its many small values."""
    w = np.asarray(weights, dtype=np.float64)
    step = (w.max() - w.min()) / 255.0
    return float(step**2 / 12.0 / max(float(np.mean(w**2)), 1e-20))


def mixed_quantization(weights: dict[str, np.ndarray], max_weight_bytes: int) -> dict[str, Any]:
    """The converter's quantization map for at most `max_weight_bytes` of weights: every float
    tensor uint8, except those kept float16 (2 bytes each instead of 1): small tensors first,
    then the ones 8 bits hurt most (uint8_noise), while the budget allows."""
    floats = {name: w for name, w in weights.items() if w.dtype == np.float32}
    total = sum(w.size for w in floats.values())
    total += sum(w.nbytes for name, w in weights.items() if name not in floats)
    keep: list[str] = []
    for name in sorted(
        floats, key=lambda n: (floats[n].size >= SMALL_TENSOR, -uint8_noise(floats[n]))
    ):
        if total + floats[name].size <= max_weight_bytes:
            keep.append(name)
            total += floats[name].size
    return {"float16": keep, "uint8": True} if keep else {"uint8": True}


def compact_graph_json(spec: dict[str, Any]) -> str:
    """A TF.js graph model.json with short node names (`n12`), written without spaces.

    The converter keeps TensorFlow's node names (about 90 characters each, repeated in every
    input reference and in the weights manifest): a sizeable share of the download. Names the
    signature refers to (the model's input and output) are kept; every reference is renamed
    consistently, so the graph is unchanged (the export is measured in real TF.js anyway).
    """
    spec = json.loads(json.dumps(spec))  # a private copy
    signature = spec.get("signature", {})
    kept = {
        entry["name"].split(":")[0]
        for side in ("inputs", "outputs")
        for entry in signature.get(side, {}).values()
    }
    nodes = spec["modelTopology"]["node"]
    names = {n["name"]: n["name"] if n["name"] in kept else f"n{i}" for i, n in enumerate(nodes)}

    def rename(ref: str) -> str:
        control, base = ("^", ref[1:]) if ref.startswith("^") else ("", ref)
        base, colon, index = base.partition(":")
        return f"{control}{names.get(base, base)}{colon}{index}"

    for node in nodes:
        node["name"] = names[node["name"]]
        node["input"] = [rename(ref) for ref in node.get("input", [])]
    for group in spec["weightsManifest"]:
        for weight in group["weights"]:
            weight["name"] = names.get(weight["name"], weight["name"])
    return json.dumps(spec, separators=(",", ":"))
