"""The accuracy / latency trade-off across trained models (e.g. one backbone at several input
sizes), as a table for the model card and docs/measurements.md.

    .venv/bin/python tools/tradeoff.py MODEL_DIR... [--scenes DIR] [--output FILE.json]
                                       [--threshold-for LABEL --min-recall R]
                                       [--crop-margins M ...]

Accuracy on the test split (and on it degraded to small faces) comes from each model's card.
Latency is measured here, for every model's float and int8 TFLite files in interleaved rounds,
so load on a shared CPU weighs on all of them alike. With --scenes, each float model also
classifies the annotated faces of a scene set, cropped from their ground-truth boxes: real
faces from another source than the training data; labels are decided by each card's
`thresholds` (argmax without). With --threshold-for, each model also gets the threshold on that
label's probability that keeps its recall on those faces at --min-recall with the fewest other
faces given that label (evaluate.choose_threshold), and the scene figures at it. Scene faces
are cut with each card's `crop_margin`; --crop-margins scores them at each margin given instead
(one row per model and margin), which is how a published model's margin is chosen
(tools/publish_model.py --crop-margin).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from facemask.card import scene_errors_markdown, tradeoff_markdown  # noqa: E402
from facemask.classify import MaskClassifier, read_card  # noqa: E402
from facemask.evaluate import (  # noqa: E402
    choose_threshold,
    classification_metrics,
    mask_figures,
)
from facemask.files import TFLITE_FILE, TFLITE_INT8_FILE  # noqa: E402
from facemask.verify import interleaved_ms_per_crop  # noqa: E402

TIMED_FILES = (TFLITE_FILE, TFLITE_INT8_FILE)


def scene_figures(
    y_true: np.ndarray, probs: np.ndarray, labels: tuple[str, ...], thresholds: dict | None
) -> dict[str, Any]:
    """Scene-face accuracy under a decision rule, with the two errors that matter in a crowd:
    bare faces called masked, and masked faces recalled."""
    m = classification_metrics(y_true, probs, labels, thresholds)
    figures = {k: m[k] for k in ("n", "accuracy", "roc_auc", "confusion")}
    return {**figures, **mask_figures(m, labels)}


def photo_detections():
    """The PHOTO detector, each scene photo's faces found once however many rows ask."""
    from facemask.detect import PHOTO, FaceDetector
    from facemask.scenes import FoundFaces

    return FoundFaces(FaceDetector(PHOTO))


def row(
    model_dir: Path,
    scenes: list | None,
    threshold_for: str | None = None,
    min_recall: float = 0.98,
    margin: float | None = None,
    photo_faces: Any = None,
) -> dict[str, Any]:
    """Accuracy figures of one model: its card's, plus scene faces when scenes are given, cut
    with `margin` (None: the card's crop_margin); `photo_faces` (scenes.FoundFaces around the
    PHOTO detector) shares detections across rows."""
    card = read_card(model_dir)
    metrics, exports = card["metrics"], card.get("exports", {})
    result: dict[str, Any] = {
        "model": card.get("name", model_dir.name),
        "architecture": card.get("architecture"),
        "input_size": card["input_size"],
        "test_accuracy": metrics["test"]["accuracy"],
        "small_faces_accuracy": metrics["test_small_faces"]["accuracy"],
        "int8_agreement": exports.get("tflite_int8", {}).get("agreement"),
    }
    if scenes is not None:
        from facemask.pipeline import Pipeline
        from facemask.scenes import annotated_face_probabilities

        photo_faces = photo_faces or photo_detections()
        classifier = MaskClassifier(model_dir, tflite_file=TFLITE_FILE)
        pipeline = Pipeline(photo_faces.detector, classifier, margin=margin)
        labels = classifier.labels
        result["crop_margin"] = pipeline.margin
        y_true, probs, _ = annotated_face_probabilities(scenes, pipeline.classify_boxes, labels)
        # the same faces as the app crops them: from the PHOTO detector's boxes that found them
        y_found, found_probs, _ = annotated_face_probabilities(
            scenes, pipeline.classify_boxes, labels, detect=photo_faces
        )
        result["thresholds"] = classifier.thresholds
        result["scene_faces"] = scene_figures(y_true, probs, labels, classifier.thresholds)
        result["scene_faces_argmax"] = scene_figures(y_true, probs, labels, None)
        result["detected_scene_faces"] = scene_figures(
            y_found, found_probs, labels, classifier.thresholds
        )
        if threshold_for:
            positive = labels.index(threshold_for)
            chosen = choose_threshold(y_true, probs[:, positive], positive, min_recall)
            rule = {threshold_for: chosen}
            result["chosen_threshold"] = {
                "label": threshold_for,
                "threshold": chosen,
                "min_recall": min_recall,
                "scene_faces": scene_figures(y_true, probs, labels, rule),
                "detected_scene_faces": scene_figures(y_found, found_probs, labels, rule),
            }
    return result


def time_models(model_dirs: list[Path], rows: list[dict[str, Any]], rounds: int) -> None:
    """ms per crop of every model's TFLite files, all timed in the same interleaved rounds.
    Random pixels: a convolutional net's time does not depend on what the pixels show."""
    rng = np.random.default_rng(0)
    for model_dir, result in zip(model_dirs, rows, strict=True):
        size = result["input_size"]
        crops = rng.integers(0, 256, (20, size, size, 3), dtype=np.uint8)
        files = [model_dir / name for name in TIMED_FILES if (model_dir / name).is_file()]
        result["ms_per_crop"] = dict(
            zip((f.name for f in files), interleaved_ms_per_crop(files, crops, rounds), strict=True)
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("models", nargs="+", type=Path, help="model or run folders")
    parser.add_argument("--scenes", type=Path, help="scene folder with annotations.json")
    parser.add_argument("--output", type=Path, help="also write the rows to this JSON file")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds")
    parser.add_argument("--threshold-for", help="label to choose a threshold for (with --scenes)")
    parser.add_argument(
        "--min-recall", type=float, default=0.98, help="that label's recall to keep on scene faces"
    )
    parser.add_argument(
        "--crop-margins",
        nargs="+",
        type=float,
        help="score scene faces at each of these crop margins (default: each card's own)",
    )
    args = parser.parse_args()
    scenes = None
    if args.scenes:
        from facemask.scenes import load_scenes

        scenes = load_scenes(args.scenes)
    margins = args.crop_margins if scenes is not None and args.crop_margins else [None]
    runs = [(model, margin) for model in args.models for margin in margins]
    found = photo_detections() if scenes is not None else None
    rows = [
        row(model, scenes, args.threshold_for, args.min_recall, margin, found)
        for model, margin in runs
    ]
    time_models([model for model, _ in runs], rows, args.rounds)
    rows.sort(key=lambda r: r["input_size"])
    print(tradeoff_markdown(rows))
    if scenes is not None:
        print(scene_errors_markdown(rows))
    if args.output:
        args.output.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
