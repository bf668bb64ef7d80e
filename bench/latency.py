"""Per-frame latency of Pipeline.process on 640x480 frames with 1 and 3 real faces, side by side
with the naive baseline (same detector and crops, Keras model.predict per frame).

    .venv/bin/python bench/latency.py [--model mobilenetv2] [--frames 200]

Prints median / p95 ms per frame and peak resident memory. Not a test: numbers depend on the
machine and its load.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from facemask.classify import MaskClassifier  # noqa: E402
from facemask.detect import WEBCAM, FaceDetector  # noqa: E402
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


def timed(fn, frame: np.ndarray, runs: int, warmup: int = 10) -> list[float]:
    for _ in range(warmup):
        fn(frame)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn(frame)
        times.append((time.perf_counter() - start) * 1000)
    return times


def summary(times: list[float]) -> str:
    p95 = float(np.percentile(times, 95))
    return f"{statistics.median(times):7.2f} / {p95:7.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--model", default="mobilenetv2", help="model folder or name")
    parser.add_argument("--frames", type=int, default=200, help="timed frames per case")
    parser.add_argument("--baseline-frames", type=int, default=40, help="timed frames, baseline")
    args = parser.parse_args()

    model_dir = (
        Path(args.model) if Path(args.model).is_dir() else RunStore().resolve_model(args.model)
    )
    detector = FaceDetector(WEBCAM)
    classifier = MaskClassifier(model_dir)
    pipeline = Pipeline(detector, classifier)
    import keras

    keras_model = keras.saving.load_model(model_dir / "model.keras", compile=False, safe_mode=True)
    size = classifier.input_size

    def naive(frame: np.ndarray) -> None:
        faces = detector.detect(frame)
        if faces:
            crops = crop_faces(frame, [f.box for f in faces], size)
            keras_model.predict(crops.astype(np.float32), verbose=0)

    print(
        f"model: {model_dir.name} ({classifier.card.get('architecture')}, {size} px), "
        f"served: {classifier.served_file} via {classifier.runtime}"
    )
    print(
        f"{'640x480 frame':<16}{'faces found':>12}  {'Pipeline.process ms':>22}  "
        f"{'naive Keras predict ms':>24}  {'detector only ms':>18}"
    )
    print(f"{'':<16}{'':>12}  {'median / p95':>22}  {'median / p95':>24}  {'median / p95':>18}")
    for n in (1, 3):
        frame = webcam_frame(n)
        found = len(pipeline.process(frame))
        fast = timed(pipeline.process, frame, args.frames)
        slow = timed(naive, frame, args.baseline_frames, warmup=3)
        det = timed(detector.detect, frame, args.frames)
        row = f"{summary(fast):>22}  {summary(slow):>24}  {summary(det):>18}"
        print(f"{f'{n} face(s)':<16}{found:>12}  {row}")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory: {peak_mb:.0f} MB (this process, both paths loaded)")


if __name__ == "__main__":
    main()
