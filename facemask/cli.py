"""The `facemask` command: train, evaluate, predict, export, video."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from facemask.errors import FacemaskError

DETECTOR_CHOICES = ("webcam", "photo")


def _model_dir(name_or_path: str) -> Path:
    """A model folder given as a path, or the name of a shipped model or finished run."""
    from facemask.runs import RunStore

    path = Path(name_or_path)
    if path.is_dir():
        return path
    return RunStore().resolve_model(name_or_path)


def _pipeline(model: str, detector: str, runtime: str = "auto"):
    from facemask.classify import MaskClassifier
    from facemask.detect import PHOTO, WEBCAM, FaceDetector
    from facemask.pipeline import Pipeline

    classifier = MaskClassifier(_model_dir(model), runtime=runtime)  # a bad name fails first
    return Pipeline(FaceDetector(WEBCAM if detector == "webcam" else PHOTO), classifier)


def _progress_bar(desc: str, total: int | None = None):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="frame", file=sys.stderr, dynamic_ncols=True)


# -- train -----------------------------------------------------------------------------
def cmd_train(args: argparse.Namespace) -> int:
    from facemask.runs import RunStore
    from facemask.train import TrainConfig, TrainingCancelled, train

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
    config = TrainConfig(
        data=str(args.data or ""),
        backbone=args.backbone,
        input_size=args.input_size,
        epochs_head=args.epochs_head,
        epochs_fine=args.epochs_fine,
        fine_tune_layers=args.fine_tune_layers,
        batch_size=args.batch_size,
        lr_head=args.lr_head,
        lr_fine=args.lr_fine,
        augment=not args.no_augment,
        bare_weight=args.bare_weight,
        hard_negatives=args.hard_negatives,
        weights=args.weights,
        patience=args.patience,
        seed=args.seed,
        limit_per_class=args.limit_per_class,
        export_tfjs=not args.no_tfjs,
        name=args.name,
    )
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
    if not args.model or not args.data:
        raise FacemaskError("Give a model and --data DIR (or --scenes DIR for scene photos).")
    from facemask.classify import MaskClassifier
    from facemask.data import extract_crops, resize_crops, scan_dataset, split_dataset
    from facemask.detect import FaceDetector
    from facemask.evaluate import classification_metrics, format_metrics, small_face_metrics
    from facemask.runs import write_json
    from facemask.train import TRAINING_DETECTOR

    classifier = MaskClassifier(_model_dir(args.model), runtime=args.runtime)
    labels = classifier.labels
    scan = scan_dataset(args.data, labels=labels)
    indices = list(range(len(scan.items)))
    if args.split != "all":
        indices = split_dataset(scan, seed=classifier.card.get("seed", 0))[args.split]
    items = [scan.items[i] for i in indices]
    print(
        f"{len(items)} images ({args.split}) from {args.data}; cropping faces...", file=sys.stderr
    )
    crops = extract_crops(items, FaceDetector(TRAINING_DETECTOR))
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
    from facemask.detect import PHOTO, WEBCAM, FaceDetector
    from facemask.runs import write_json
    from facemask.scenes import (
        classify_annotated_faces,
        evaluate_detector,
        evaluate_scenes,
        load_scenes,
    )

    scenes = load_scenes(args.scenes)[: args.limit or None]
    settings = WEBCAM if args.detector == "webcam" else PHOTO
    detector = FaceDetector(settings)
    result = {
        "scenes": str(args.scenes),
        "images": len(scenes),
        "detector": args.detector,
        "detection": evaluate_detector(scenes, detector),
    }
    if args.model:
        pipeline = _pipeline(args.model, args.detector, args.runtime)
        result["classification"] = evaluate_scenes(
            scenes,
            lambda rgb: [(d.box, d.label, d.confidence) for d in pipeline.process(rgb)],
            pipeline.labels,
        )
        result["classifier_on_annotated_faces"] = classify_annotated_faces(
            scenes, pipeline.classify_boxes, pipeline.labels, pipeline.classifier.thresholds
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

    pipeline = _pipeline(args.model, args.detector, args.runtime)
    failures = 0
    for file in args.images:
        try:  # the gate (in load_image and Pipeline.process) refuses what is unsafe to decode
            rgb = load_image(file, name=file)
            result, detections = image_result(pipeline, rgb, file, whole_image=args.whole_image)
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
            out = Path(args.annotate) / (Path(file).stem + "_annotated.png")
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(encode_image(annotate(rgb, detections)))
    return 1 if failures == len(args.images) else 0


# -- export ----------------------------------------------------------------------------
def cmd_export(args: argparse.Namespace) -> int:
    from facemask.classify import read_card
    from facemask.data import extract_crops, resize_crops, scan_dataset, split_dataset
    from facemask.detect import FaceDetector
    from facemask.train import TRAINING_DETECTOR, export_and_record

    model_dir = _model_dir(args.model)
    card = read_card(model_dir)
    data = args.data or card.get("dataset", {}).get("path")
    if not data or not Path(data).is_dir():
        raise FacemaskError("Export checks the exports on real face crops: give --data DIR.")
    scan = scan_dataset(data, labels=card["labels"])
    test = split_dataset(scan, seed=card.get("seed", 0))["test"]
    crops = extract_crops([scan.items[i] for i in test], FaceDetector(TRAINING_DETECTOR))
    x_test = resize_crops(crops.crops, card["input_size"])
    exports = export_and_record(
        model_dir, x_test, crops.labels, tfjs=not args.no_tfjs, check=args.check_images
    )
    print(json.dumps(exports, indent=2))
    return 0


# -- video -----------------------------------------------------------------------------
def cmd_video(args: argparse.Namespace) -> int:
    from facemask.video import annotate_video

    pipeline = _pipeline(args.model, args.detector, args.runtime)
    bar = _progress_bar(Path(args.input).name)

    def progress(done: int, total: int | None) -> None:
        if total and bar.total != total:
            bar.total = total
        bar.n = done
        bar.refresh()

    try:
        summary = annotate_video(args.input, args.output, pipeline, progress=progress)
    finally:
        bar.close()
    print(summary)
    return 0


def build_parser() -> argparse.ArgumentParser:
    from facemask.runs import DEFAULT_MODEL

    fmt = argparse.ArgumentDefaultsHelpFormatter
    parser = argparse.ArgumentParser(
        prog="facemask",
        description="Real-time face-mask detection: train, evaluate, predict, export, video.",
        formatter_class=fmt,
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def model_options(p: argparse.ArgumentParser, detector: str = "photo") -> None:
        p.add_argument(
            "--model",
            default=DEFAULT_MODEL,
            help="a model folder, or the name of a shipped model or finished run",
        )
        p.add_argument(
            "--detector",
            choices=DETECTOR_CHOICES,
            default=detector,
            help="face-detector settings: webcam (fast) or photo (small faces)",
        )
        p.add_argument(
            "--runtime",
            choices=("auto", "tflite", "keras"),
            default="auto",
            help="classifier runtime",
        )

    p = sub.add_parser(
        "train",
        formatter_class=fmt,
        help="train a classifier on a dataset folder",
        description="Two-phase transfer learning (frozen base, then fine-tuning) "
        "on a folder of class folders; writes a run to runs/<id>.",
    )
    p.add_argument("--data", help="dataset folder: one sub-folder of images per class")
    p.add_argument("--backbone", choices=("mobilenetv2", "vgg16"), default="mobilenetv2")
    p.add_argument("--input-size", type=int, default=128, help="model input side in px")
    p.add_argument("--epochs-head", type=int, default=6, help="epochs with the base frozen")
    p.add_argument("--epochs-fine", type=int, default=6, help="fine-tuning epochs (0: none)")
    p.add_argument(
        "--fine-tune-layers",
        type=int,
        default=None,
        help="layers at the top of the base to unfreeze (default: per backbone; 0: none)",
    )
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr-head", type=float, default=1e-3)
    p.add_argument("--lr-fine", type=float, default=1e-4)
    p.add_argument("--no-augment", action="store_true", help="turn augmentation off")
    p.add_argument(
        "--bare-weight", type=float, default=1.0, help="loss weight of without_mask faces"
    )
    p.add_argument(
        "--hard-negatives",
        type=float,
        default=0.0,
        help="share of without_mask training faces, the most mask-like, repeated in fine-tuning",
    )
    p.add_argument(
        "--weights",
        default="imagenet",
        help="imagenet (from the Keras cache), none (from scratch), or a .h5 file",
    )
    p.add_argument("--patience", type=int, default=3, help="early-stopping patience (epochs)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--limit-per-class", type=int, default=None, help="use at most N images per class"
    )
    p.add_argument("--no-tfjs", action="store_true", help="skip the TF.js export")
    p.add_argument("--name", help="model name written in the card (default: the run id)")
    p.add_argument("--run-id", help="run id (default: date-time-backbone)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run")
    p.add_argument("--runs-dir", help="run store folder (default: runs/ or $FACEMASK_RUNS_DIR)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "evaluate",
        formatter_class=fmt,
        help="measure a model on a dataset or scenes",
        description="Accuracy, per-class precision/recall/F1, confusion matrix and "
        "ROC AUC on a dataset folder; or face recall/precision and per-class AP@0.5 "
        "on annotated scene photos (--scenes).",
    )
    p.add_argument("model", nargs="?", help="model folder or name (optional with --scenes)")
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
    p.add_argument("--detector", choices=DETECTOR_CHOICES, default="photo")
    p.add_argument("--runtime", choices=("auto", "tflite", "keras"), default="auto")
    p.add_argument("--limit", type=int, default=0, help="use the first N scenes only")
    p.add_argument("--output", help="also write the metrics to this JSON file")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser(
        "predict",
        formatter_class=fmt,
        help="find faces and say mask / no mask",
        description="Detect and classify every face in each image. --json prints "
        "JSON Lines, one object per image (the contract in DESIGN.md).",
    )
    p.add_argument("images", nargs="+", help="image files (JPEG, PNG, WebP, GIF or BMP)")
    p.add_argument("--json", action="store_true", help="print JSON Lines")
    p.add_argument(
        "--whole-image", action="store_true", help="also classify each whole image as one face crop"
    )
    p.add_argument("--annotate", metavar="DIR", help="write annotated PNGs into DIR")
    model_options(p)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser(
        "export",
        formatter_class=fmt,
        help="export a model to TFLite and TF.js",
        description="Write model.tflite, model_int8.tflite, tfjs/ and tfjs_float16/ "
        "into the model folder, each checked against Keras on real face crops.",
    )
    p.add_argument("model", help="model folder or name")
    p.add_argument(
        "--data",
        help="dataset whose test split gives the check crops (default: the one in the card)",
    )
    p.add_argument("--check-images", type=int, default=200)
    p.add_argument("--no-tfjs", action="store_true")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser(
        "video",
        formatter_class=fmt,
        help="annotate a video file",
        description="Detect and classify faces on every frame of IN and write an "
        "annotated H.264 MP4 to OUT.",
    )
    p.add_argument("input", help="video file to read")
    p.add_argument("output", help="annotated .mp4 to write")
    model_options(p, detector="webcam")
    p.set_defaults(func=cmd_video)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (FacemaskError, ValueError) as exc:
        print(f"facemask: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("facemask: interrupted", file=sys.stderr)
        return 130
