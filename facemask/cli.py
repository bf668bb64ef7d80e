"""The `facemask` command: train, evaluate, predict, export, video, scan, watch, report."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from facemask.errors import FacemaskError

NATIVE_LOG_ENV = {"TF_CPP_MIN_LOG_LEVEL": "3", "GLOG_minloglevel": "3"}
"""Quiets what TensorFlow and glog read at start-up; the rest logs to fd 2 regardless."""


def quiet_native_logs() -> None:
    """Keep TensorFlow, LiteRT, mediapipe and CUDA-stub log lines off the terminal.

    Those libraries write from C++ straight to file descriptor 2, most of them whatever the
    environment says. So fd 2 goes to /dev/null and Python's sys.stderr moves to a copy of the
    real one: the command's own messages, progress bars, warnings and tracebacks still show.
    Called once per process, before any of those libraries loads (`--verbose` skips it).
    """
    for key, value in NATIVE_LOG_ENV.items():
        os.environ.setdefault(key, value)
    try:  # TensorFlow's Python side logs through absl, to sys.stderr
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)
    except ImportError:  # pragma: no cover - absl comes with TensorFlow and mediapipe
        pass
    sys.stderr.flush()
    real = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    sys.stderr = os.fdopen(real, "w", buffering=1, errors="backslashreplace")


def _model_dir(name_or_path: str) -> Path:
    """A model folder given as a path, or the name of a shipped model or finished run."""
    from facemask.runs import RunStore

    path = Path(name_or_path)
    if path.is_dir():
        return path
    return RunStore().resolve_model(name_or_path)


def _pipeline(model: str, detector: str, runtime: str = "auto"):
    from facemask.classify import MaskClassifier
    from facemask.detect import FaceDetector
    from facemask.pipeline import DETECTOR_PRESETS, Pipeline

    classifier = MaskClassifier(_model_dir(model), runtime=runtime)  # a bad name fails first
    return Pipeline(FaceDetector(DETECTOR_PRESETS[detector]), classifier)


# -- train -----------------------------------------------------------------------------
def cmd_train(args: argparse.Namespace) -> int:
    from facemask.config import config_from_args
    from facemask.runs import RunStore
    from facemask.train import TrainingCancelled, train

    store = RunStore(args.runs_dir) if args.runs_dir else RunStore()
    if args.resume and not args.run_id:
        unfinished = [p.name for p in store.in_progress()]
        if not unfinished:
            raise FacemaskError("There is no unfinished run to resume.")
        args.run_id = unfinished[0]
    if not args.resume and not args.data:
        raise FacemaskError(
            "Say which dataset to train on: --data DIR (a folder of class folders)."
        )
    config = config_from_args(args)
    try:
        run_dir = train(config, store, run_id=args.run_id, resume=args.resume)
    except TrainingCancelled:
        return 130
    print(run_dir)
    return 0


# -- evaluate --------------------------------------------------------------------------
def cmd_evaluate(args: argparse.Namespace) -> int:
    if args.scenes:
        return _evaluate_scenes(args)
    if not _model_arg(args) or not args.data:
        raise FacemaskError("Give a model and --data DIR (or --scenes DIR for scene photos).")
    from facemask.classify import MaskClassifier
    from facemask.data import extract_crops, resize_crops, scan_dataset, split_dataset
    from facemask.detect import TRAINING, FaceDetector
    from facemask.evaluate import classification_metrics, format_metrics, small_face_metrics
    from facemask.files import write_json
    from facemask.progress import ProgressReport

    classifier = MaskClassifier(_model_dir(_model_arg(args)), runtime=args.runtime)
    labels = classifier.labels
    scan = scan_dataset(args.data, labels=labels)
    indices = list(range(len(scan.items)))
    if args.split != "all":
        indices = split_dataset(scan, seed=classifier.card.get("seed", 0))[args.split]
    items = [scan.items[i] for i in indices]
    print(
        f"{len(items)} images ({args.split}) from {args.data}; cropping faces...", file=sys.stderr
    )
    with ProgressReport("face crops", unit="image") as progress:
        crops = extract_crops(
            items, FaceDetector(TRAINING), classifier.crop_margin, progress=progress
        )
    x = resize_crops(crops.crops, classifier.input_size)
    metrics = {
        "model": str(classifier.model_dir),
        "runtime": classifier.runtime,
        "data": str(args.data),
        "split": args.split,
        "faces_found": int(crops.face_found.sum()),
        "skipped": len(scan.skipped),
        "thresholds": classifier.thresholds,
        "all": classification_metrics(
            crops.labels, classifier.predict(x), labels, classifier.thresholds
        ),
    }
    print(
        format_metrics(metrics["all"], labels, f"{classifier.name} on {args.data} ({args.split})")
    )
    if args.small_faces:
        metrics["small_faces"] = small_face_metrics(
            classifier.predict, x, crops.labels, labels, thresholds=classifier.thresholds
        )
        print(format_metrics(metrics["small_faces"], labels, "degraded to small faces"))
    if args.output:
        write_json(Path(args.output), metrics)
        print(f"metrics written to {args.output}", file=sys.stderr)
    return 0


def _evaluate_scenes(args: argparse.Namespace) -> int:
    from facemask.detect import FaceDetector
    from facemask.files import write_json
    from facemask.pipeline import DETECTOR_PRESETS
    from facemask.scenes import (
        FoundFaces,
        classify_annotated_faces,
        evaluate_detector,
        evaluate_scenes,
        load_scenes,
    )

    scenes = load_scenes(args.scenes)[: args.limit or None]
    detector = FaceDetector(DETECTOR_PRESETS[args.detector])
    result = {
        "scenes": str(args.scenes),
        "images": len(scenes),
        "detector": args.detector,
        "detection": evaluate_detector(scenes, detector),
    }
    if _model_arg(args):
        pipeline = _pipeline(_model_arg(args), args.detector, args.runtime)
        found = FoundFaces(pipeline.detector)  # this pass detects; the detected-faces one reuses

        def detect_and_classify(rgb):  # an RGB frame -> (box, label, confidence) items
            detections = pipeline.classify_faces(rgb, found(rgb))
            return [(d.box, d.label, d.confidence) for d in detections]

        result["classification"] = evaluate_scenes(scenes, detect_and_classify, pipeline.labels)
        rule = pipeline.classifier.thresholds
        result["classifier_on_annotated_faces"] = classify_annotated_faces(
            scenes, pipeline.classify_boxes, pipeline.labels, rule
        )
        result["classifier_on_detected_faces"] = classify_annotated_faces(
            scenes, pipeline.classify_boxes, pipeline.labels, rule, detect=found
        )
    print(json.dumps(result, indent=2))
    if args.output:
        write_json(Path(args.output), result)
    return 0


# -- predict ---------------------------------------------------------------------------
def cmd_predict(args: argparse.Namespace) -> int:
    from facemask.errors import ImageError
    from facemask.images import encode_image, load_image
    from facemask.pipeline import annotate
    from facemask.predict import image_result
    from facemask.uploads import annotated_name

    pipeline = _pipeline(args.model, args.detector, args.runtime)
    failures = 0
    for file in args.images:
        try:  # the gate (in load_image and Pipeline.process) refuses what is unsafe to decode
            rgb = load_image(file, name=file)
            result, detections, _ = image_result(pipeline, rgb, file, whole_image=args.whole_image)
        except ImageError as exc:
            failures += 1
            print(f"error: {exc}", file=sys.stderr)
            if args.json:
                print(json.dumps({"file": file, "error": str(exc)}), flush=True)
            continue
        if args.json:
            print(json.dumps(result), flush=True)
        else:
            faces = ", ".join(f"{f['label']} {f['confidence']:.0%}" for f in result["faces"])
            whole = (
                f"; whole image: {result['image_label']} {result['image_confidence']:.0%}"
                if args.whole_image
                else ""
            )
            print(f"{file}: {len(result['faces'])} face(s){': ' + faces if faces else ''}{whole}")
        if args.annotate:
            out = Path(args.annotate) / annotated_name(file)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(encode_image(annotate(rgb, detections, legend=pipeline.labels)))
    return 1 if failures == len(args.images) else 0


# -- export ----------------------------------------------------------------------------
def cmd_export(args: argparse.Namespace) -> int:
    from facemask.classify import read_card
    from facemask.data import model_test_crops
    from facemask.datasets import find_dataset
    from facemask.export import export_and_record

    if not _model_arg(args):
        raise FacemaskError("Say which model to export: a model folder or name.")
    model_dir = _model_dir(_model_arg(args))
    card = read_card(model_dir)
    recorded = card.get("dataset", {}).get("path")  # portable: files.portable_path
    data = args.data or (find_dataset(recorded) if recorded else None)
    if not data or not Path(data).is_dir():
        raise FacemaskError("Export checks the exports on real face crops: give --data DIR.")
    x_test, y_test = model_test_crops(card, data)
    exports = export_and_record(
        model_dir, x_test, y_test, tfjs=not args.no_tfjs, check=args.check_images
    )
    print(json.dumps(exports, indent=2))
    return 0


# -- video -----------------------------------------------------------------------------
def cmd_video(args: argparse.Namespace) -> int:
    from facemask.progress import ProgressReport
    from facemask.video import annotate_video

    pipeline = _pipeline(args.model, args.detector, args.runtime)
    with ProgressReport(Path(args.input).name, unit="frame") as progress:
        summary = annotate_video(args.input, args.output, pipeline, progress=progress)
    print(summary)
    return 0


def _model_arg(args: argparse.Namespace) -> str | None:
    """The model a command was given: `--model`, or evaluate's and export's first argument."""
    positional = getattr(args, "model_name", None)
    if positional and args.model and positional != args.model:
        raise FacemaskError(f"Two models given ({positional} and --model {args.model}): give one.")
    return positional or args.model


def build_parser() -> argparse.ArgumentParser:
    from facemask.config import add_train_arguments
    from facemask.gate import IMAGE_FORMAT_NAMES
    from facemask.pipeline import DETECTOR_PRESETS
    from facemask.runs import DEFAULT_MODEL

    fmt = argparse.ArgumentDefaultsHelpFormatter
    parser = argparse.ArgumentParser(
        prog="facemask",
        description="Real-time face-mask detection: train, evaluate, predict, export, video, "
        "watch, report.",
        formatter_class=fmt,
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--verbose",
        action="store_true",
        help="also show TensorFlow, LiteRT, mediapipe and CUDA log lines",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, **kwargs) -> argparse.ArgumentParser:
        return sub.add_parser(name, formatter_class=fmt, parents=[common], **kwargs)

    def model_option(p: argparse.ArgumentParser, default: str | None, positional: bool) -> None:
        """Every command names its model the same way: `--model NAME_OR_DIR`."""
        if positional:  # evaluate and export also take it as their first argument
            p.add_argument("model_name", nargs="?", metavar="MODEL", help="same as --model")
        p.add_argument(
            "--model",
            default=default,
            help="a model folder, or the name of a shipped model (models/) or finished run (runs/)",
        )

    def pipeline_options(p: argparse.ArgumentParser, detector: str) -> None:
        p.add_argument(
            "--detector",
            choices=tuple(DETECTOR_PRESETS),
            default=detector,
            help="face-detector preset (facemask.detect): webcam (fast) or photo (small faces)",
        )
        p.add_argument(
            "--runtime",
            choices=("auto", "tflite", "keras"),
            default="auto",
            help="classifier runtime",
        )

    p = command(
        "train",
        help="train a classifier on a dataset folder",
        description="Two-phase transfer learning (frozen base, then fine-tuning) "
        "on a folder of class folders; writes a run to runs/<id>.",
    )
    add_train_arguments(p)
    p.add_argument("--run-id", help="run id (default: date-time-backbone)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run")
    p.add_argument("--runs-dir", help="run store folder (default: runs/ or $FACEMASK_RUNS_DIR)")
    p.set_defaults(func=cmd_train)

    p = command(
        "evaluate",
        help="measure a model on a dataset or scenes",
        description="Accuracy, per-class precision/recall/F1, confusion matrix and "
        "ROC AUC on a dataset folder; or face recall/precision and per-class AP@0.5 "
        "on annotated scene photos (--scenes; the model is optional there).",
    )
    model_option(p, None, positional=True)
    p.add_argument("--data", help="dataset folder of class folders")
    p.add_argument(
        "--split",
        choices=("all", "train", "val", "test"),
        default="all",
        help="which part of --data (the training split is deterministic)",
    )
    p.add_argument(
        "--small-faces",
        action="store_true",
        help="also measure on crops degraded to 24-48 px faces",
    )
    p.add_argument("--scenes", help="scene folder with annotations.json (face boxes + labels)")
    pipeline_options(p, "photo")
    p.add_argument("--limit", type=int, default=0, help="use the first N scenes only")
    p.add_argument("--output", help="also write the metrics to this JSON file")
    p.set_defaults(func=cmd_evaluate)

    p = command(
        "predict",
        help="find faces and say mask / no mask",
        description="Detect and classify every face in each image. --json prints "
        "JSON Lines, one object per image (the contract in the README).",
    )
    p.add_argument("images", nargs="+", help=f"image files ({IMAGE_FORMAT_NAMES})")
    p.add_argument("--json", action="store_true", help="print JSON Lines")
    p.add_argument(
        "--whole-image", action="store_true", help="also classify each whole image as one face crop"
    )
    p.add_argument("--annotate", metavar="DIR", help="write annotated PNGs into DIR")
    model_option(p, DEFAULT_MODEL, positional=False)
    pipeline_options(p, "photo")
    p.set_defaults(func=cmd_predict)

    p = command(
        "export",
        help="export a model to TFLite and TF.js",
        description="Write model.tflite, model_int8.tflite, tfjs/, tfjs_float16/ and "
        "tfjs_mixed/ (the in-browser export: uint8 weights, float16 where 8 bits hurt; written "
        "when node and TF.js can measure it) into the model folder, each checked against Keras "
        "on real face crops; card.json records which ones are served.",
    )
    model_option(p, None, positional=True)
    p.add_argument(
        "--data",
        help="dataset whose test split gives the check crops (default: the one in the card)",
    )
    p.add_argument(
        "--check-images", type=int, default=200, help="test crops each export is checked on"
    )
    p.add_argument("--no-tfjs", action="store_true", help="TFLite only: no TF.js folders")
    p.set_defaults(func=cmd_export)

    p = command(
        "video",
        help="annotate a video file",
        description="Detect and classify faces on every frame of IN and write an "
        "annotated H.264 MP4 to OUT.",
    )
    p.add_argument("input", help="video file to read")
    p.add_argument("output", help="annotated .mp4 to write")
    model_option(p, DEFAULT_MODEL, positional=False)
    pipeline_options(p, "webcam")
    p.set_defaults(func=cmd_video)

    from facemask.scan_cli import add_scan_command

    add_scan_command(command, model_option, pipeline_options, _model_dir)

    from facemask.watch_cli import add_watch_commands

    add_watch_commands(command, model_option, pipeline_options, _pipeline)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. As a process (argv None) it keeps native log lines off stderr unless
    --verbose is given (quiet_native_logs)."""
    args = build_parser().parse_args(argv)
    if argv is None and not args.verbose:
        quiet_native_logs()
    try:
        return args.func(args)
    except (FacemaskError, ValueError) as exc:
        print(f"facemask: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("facemask: interrupted", file=sys.stderr)
        return 130
