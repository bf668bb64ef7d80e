"""Per-frame latency of Pipeline.process on 640x480 frames with 1 and 3 real faces, beside the
floor (the detector's and the classifier's LiteRT invokes alone) and the naive baseline (same
detector and crops, Keras model.predict per frame).

    .venv/bin/python bench/latency.py [--model mobilenetv2] [--frames 300]

The pipeline and the floor take turns frame by frame, so that load from other work hits both
alike; "x floor" is the ratio of their medians. Also prints the WEBCAM detector alone, the same
BlazeFace model through mediapipe's Tasks FaceDetector, and peak resident memory. Takes about a
minute. Not a test: numbers depend on the machine and its load (printed).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from facemask.classify import DEFAULT_THREADS, MaskClassifier, load_keras_model  # noqa: E402
from facemask.detect import WEBCAM, FaceDetector  # noqa: E402
from facemask.face_models import model_bytes  # noqa: E402
from facemask.files import KERAS_FILE  # noqa: E402
from facemask.images import load_image  # noqa: E402
from facemask.pipeline import Pipeline, crop_faces  # noqa: E402
from facemask.runs import RunStore  # noqa: E402

FACES = REPO / "tests" / "data" / "faces"
PHOTOS = ("without_mask_00597.jpg", "with_mask_00002.jpg", "without_mask_00001.jpg")


def webcam_frame(n_faces: int) -> np.ndarray:
    """A 640x480 frame with n real face photos side by side on a plain background."""
    frame = np.full((480, 640, 3), 96, np.uint8)
    width = 640 // max(n_faces, 2)
    for i, name in enumerate(PHOTOS[:n_faces]):
        photo = load_image(FACES / name)
        scale = min((width - 20) / photo.shape[1], 300 / photo.shape[0])
        photo = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        x = i * width + (width - photo.shape[1]) // 2
        y = (480 - photo.shape[0]) // 2
        frame[y : y + photo.shape[0], x : x + photo.shape[1]] = photo
    return frame


class Floor:
    """The work no pipeline can skip: one detector invoke and one classifier invoke per face,
    on inputs set beforehand, with the thread count the package uses."""

    def __init__(self, classifier_file: Path, n_faces: int) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.detector = Interpreter(model_content=model_bytes("short"), num_threads=DEFAULT_THREADS)
        self.classifier = Interpreter(model_path=str(classifier_file), num_threads=DEFAULT_THREADS)
        for interpreter in (self.detector, self.classifier):
            interpreter.allocate_tensors()
            detail = interpreter.get_input_details()[0]
            interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], detail["dtype"]))
        self.n_faces = n_faces

    def __call__(self, _frame: np.ndarray) -> None:
        self.detector.invoke()
        for _ in range(self.n_faces):
            self.classifier.invoke()


def take_turns(fns: dict[str, Callable], frame: np.ndarray, runs: int, warmup: int = 10):
    """ms per call for each function, the functions taking turns call by call."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for i in range(warmup + runs):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn(frame)
            if i >= warmup:
                times[name].append((time.perf_counter() - start) * 1000)
    return times


def summary(times: list[float]) -> str:
    return f"{statistics.median(times):.2f} / {float(np.percentile(times, 95)):.2f}"


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--model", default="mobilenetv2", help="model folder or name")
    parser.add_argument("--frames", type=int, default=300, help="timed frames per case")
    parser.add_argument("--baseline-frames", type=int, default=30, help="timed frames, baseline")
    args = parser.parse_args()

    model_dir = (
        Path(args.model) if Path(args.model).is_dir() else RunStore().resolve_model(args.model)
    )
    detector = FaceDetector(WEBCAM)
    classifier = MaskClassifier(model_dir)
    pipeline = Pipeline(detector, classifier)
    size = classifier.input_size
    print(
        f"model: {model_dir.name} ({classifier.card.get('architecture')}, {size} px), "
        f"served: {classifier.served_file} via {classifier.runtime}; detector: WEBCAM "
        f"({WEBCAM.model}, {WEBCAM.runtime}); {DEFAULT_THREADS} LiteRT threads; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    frames = {n: webcam_frame(n) for n in (1, 3)}
    take_turns({"process": pipeline.process}, frames[3], runs=20)
    fast_peak = peak_mb()  # before mediapipe and Keras come in

    tasks = FaceDetector(dataclasses.replace(WEBCAM, runtime="tasks"))
    keras_model = load_keras_model(model_dir / KERAS_FILE)

    def naive(frame: np.ndarray) -> None:
        faces = detector.detect(frame)
        if faces:
            crops = crop_faces(frame, [f.box for f in faces], size, pipeline.margin)
            keras_model.predict(crops.astype(np.float32), verbose=0)

    print(
        "\n| 640x480 frame | faces found | `Pipeline.process` ms, median / p95 "
        "| floor ms, median / p95 | x floor | naive Keras `predict` ms, median / p95 "
        "| WEBCAM detector alone ms | same model via mediapipe Tasks ms |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for n, frame in frames.items():
        found = len(pipeline.process(frame))
        floor = Floor(model_dir / classifier.served_file, found)
        fns = {"process": pipeline.process, "floor": floor, "detect": detector.detect}
        times = take_turns({**fns, "tasks": tasks.detect}, frame, args.frames)
        slow = take_turns({"naive": naive}, frame, args.baseline_frames, warmup=3)["naive"]
        ratio = statistics.median(times["process"]) / statistics.median(times["floor"])
        print(
            f"| {n} face{'s' if n > 1 else ''} | {found} | {summary(times['process'])} "
            f"| {summary(times['floor'])} | {ratio:.2f} | {summary(slow)} "
            f"| {summary(times['detect'])} | {summary(times['tasks'])} |"
        )
    print(
        f"\npeak resident memory: {fast_peak:.0f} MB with the pipeline alone; {peak_mb():.0f} MB "
        f"at the end (Keras and mediapipe loaded too). "
        f"Load average at the end {os.getloadavg()[0]:.1f}."
    )


if __name__ == "__main__":
    main()
