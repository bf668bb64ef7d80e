"""The accuracy / latency trade-off across trained models (e.g. one backbone at several input
sizes), as a table for the model card and the README.

    .venv/bin/python tools/tradeoff.py MODEL_DIR... [--scenes DIR] [--output FILE.json]

Accuracy and per-crop latency come from each model's card (measured when it was exported);
with --scenes, each served model is also run on the annotated faces of a scene set, cropped
from their ground-truth boxes: real faces from another source than the training data.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from facemask.card import tradeoff_markdown  # noqa: E402
from facemask.classify import MaskClassifier, read_card  # noqa: E402


def row(model_dir: Path, scenes: list | None) -> dict[str, Any]:
    card = read_card(model_dir)
    metrics, exports = card["metrics"], card.get("exports", {})
    served = metrics.get("served", {})
    result: dict[str, Any] = {
        "model": card.get("name", model_dir.name),
        "architecture": card.get("architecture"),
        "input_size": card["input_size"],
        "test_accuracy": metrics["test"]["accuracy"],
        "small_faces_accuracy": metrics["test_small_faces"]["accuracy"],
        "served_file": card["serving"]["file"],
        "served_test_accuracy": served.get("test", {}).get("accuracy"),
        "served_small_faces_accuracy": served.get("test_small_faces", {}).get("accuracy"),
        "ms_per_crop": {
            e["file"]: e.get("ms_per_crop") for k, e in exports.items() if k.startswith("tflite")
        },
    }
    if scenes is not None:
        from facemask.detect import WEBCAM, FaceDetector
        from facemask.pipeline import Pipeline
        from facemask.scenes import classify_annotated_faces

        classifier = MaskClassifier(model_dir)
        pipeline = Pipeline(FaceDetector(WEBCAM), classifier)
        faces = classify_annotated_faces(scenes, pipeline.classify_boxes, classifier.labels)
        result["scene_faces"] = {
            "n": faces["n"],
            "accuracy": faces["accuracy"],
            "roc_auc": faces["roc_auc"],
            "confusion": faces["confusion"],
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("models", nargs="+", type=Path, help="model or run folders")
    parser.add_argument("--scenes", type=Path, help="scene folder with annotations.json")
    parser.add_argument("--output", type=Path, help="also write the rows to this JSON file")
    args = parser.parse_args()
    scenes = None
    if args.scenes:
        from facemask.scenes import load_scenes

        scenes = load_scenes(args.scenes)
    rows = sorted((row(m, scenes) for m in args.models), key=lambda r: r["input_size"])
    print(tradeoff_markdown(rows))
    if args.output:
        args.output.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
