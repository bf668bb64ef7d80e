"""Sweep face-detector settings on a scenes folder: recall, precision and latency side by side.

    python bench/detector_settings.py --scenes ../shared/datasets/maskilc-scenes

Recall counts labelled faces whose shorter side is >= 24 px; precision is a lower bound (many
background faces carry no box). Boxes match at IoU >= 0.5 (the scene-AP criterion) and, to show
how much of the gap is box extent rather than missed faces, at IoU >= 0.3. "ms/img" is the mean
detect() time on the scene photos (up to 1024 px); "ms 640x480" the median on a webcam-sized
frame with one face. Results feed docs/detection.md (WEBCAM and PHOTO in facemask/detect.py).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from facemask.detect import PHOTO, WEBCAM, DetectorSettings, Face, FaceDetector  # noqa: E402
from facemask.images import load_image  # noqa: E402
from facemask.scenes import Scene, SceneFace, evaluate_detector, load_scenes  # noqa: E402

DEFAULT_SCENES = ROOT.parent / "shared" / "datasets" / "maskilc-scenes"
WEBCAM_FACE = ROOT / "tests" / "data" / "faces" / "astronaut.jpg"

SWEEP: dict[str, DetectorSettings] = {
    "short": DetectorSettings(model="short", min_score=0.5, min_face=12),
    "short s0.3": DetectorSettings(model="short", min_score=0.3, min_face=12),
    "full": DetectorSettings(model="full", min_score=0.5, min_face=12),
    "full s0.3": DetectorSettings(model="full", min_score=0.3, min_face=12),
    "full+close": DetectorSettings(model="full", min_face=12, close_up_pass=True),
    "full t2": DetectorSettings(model="full", min_face=12, tiles=2),
    "full t2 ov0.25": DetectorSettings(model="full", min_face=12, tiles=2, tile_overlap=0.25),
    "full t2+close s0.4": DetectorSettings(
        model="full", min_score=0.4, min_face=12, tiles=2, close_up_pass=True
    ),
    "full t2+close": DetectorSettings(model="full", min_face=12, tiles=2, close_up_pass=True),
    "full t2+close s0.6": DetectorSettings(
        model="full", min_score=0.6, min_face=12, tiles=2, close_up_pass=True
    ),
    "full t3+close": DetectorSettings(model="full", min_face=12, tiles=3, close_up_pass=True),
    "short t2": DetectorSettings(model="short", min_face=12, tiles=2),
    "short t3 s0.4": DetectorSettings(model="short", min_score=0.4, min_face=12, tiles=3),
    "short t3": DetectorSettings(model="short", min_face=12, tiles=3),
    "short t3 s0.6": DetectorSettings(model="short", min_score=0.6, min_face=12, tiles=3),
    "short t3 ov0.25": DetectorSettings(model="short", min_face=12, tiles=3, tile_overlap=0.25),
    "short t4": DetectorSettings(model="short", min_face=12, tiles=4),
    "short t4 s0.6": DetectorSettings(model="short", min_score=0.6, min_face=12, tiles=4),
    "WEBCAM": WEBCAM,
    "PHOTO": PHOTO,
}


@dataclass(frozen=True)
class CachedScene:
    """A scene whose pixels are decoded once and kept, so each setting times only detect()."""

    faces: tuple[SceneFace, ...]
    rgb: np.ndarray

    def load(self) -> np.ndarray:
        return self.rgb


class Replay:
    """Records a detector's answers, then plays them back (to score again at another IoU)."""

    def __init__(self, detector: FaceDetector) -> None:
        self.detector, self.answers, self.replaying = detector, [], False

    def detect(self, rgb: np.ndarray) -> list[Face]:
        if self.replaying:
            return self.answers.pop(0)
        faces = self.detector.detect(rgb)
        self.answers.append(faces)
        return faces


def webcam_frame() -> np.ndarray:
    """A 640x480 frame with one real face (the astronaut test photo, face about 100 px) in it."""
    frame = np.full((480, 640, 3), 90, dtype=np.uint8)
    frame[100:356, 200:456] = load_image(WEBCAM_FACE)[:256, 100:356]
    return frame


def median_ms(detector: FaceDetector, frame: np.ndarray, runs: int = 60) -> float:
    for _ in range(10):
        detector.detect(frame)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        detector.detect(frame)
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def latency_table(
    names: list[str], images: list[np.ndarray], frame: np.ndarray, rounds: int
) -> None:
    """Median ms per call, the settings taking turns image by image so that load hits all alike."""
    detectors = {name: FaceDetector(SWEEP[name]) for name in names}
    photos: dict[str, list[float]] = {name: [] for name in names}
    frames: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(rounds + 1):
        for image in images:
            for name, detector in detectors.items():
                for target, times in ((image, photos[name]), (frame, frames[name])):
                    start = time.perf_counter()
                    detector.detect(target)
                    if round_:  # the first round warms up
                        times.append(time.perf_counter() - start)
    print(f"| setting | median ms/img ({len(images)} scene photos) | median ms 640x480 |")
    print("|---|---|---|")
    for name in names:
        print(
            f"| {name} | {1000 * np.median(photos[name]):.1f} "
            f"| {1000 * np.median(frames[name]):.2f} |"
        )
    for detector in detectors.values():
        detector.close()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--scenes", type=Path, default=DEFAULT_SCENES, help="scenes folder")
    parser.add_argument("--limit", type=int, default=0, help="first N images only (0: all)")
    parser.add_argument("--only", nargs="*", default=None, help="setting names to run")
    parser.add_argument(
        "--latency",
        type=int,
        default=0,
        metavar="N",
        help="only time the settings, taking turns, on the first N photos (3 rounds)",
    )
    args = parser.parse_args()
    names = args.only or list(SWEEP)
    frame = webcam_frame()
    if args.latency:
        images = [s.load() for s in load_scenes(args.scenes)[: args.latency]]
        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores\n")
        latency_table(names, images, frame, rounds=3)
        print(f"\nload average at the end {os.getloadavg()[0]:.1f}")
        return 0

    scenes: list[Scene] = load_scenes(args.scenes)[: args.limit or None]
    cached = [CachedScene(s.faces, s.load()) for s in scenes]
    print(f"{len(cached)} images from {args.scenes}; load average {os.getloadavg()[0]:.1f}\n")
    print(
        "| setting | recall@.5 | precision@.5 | recall@.3 | precision@.3 "
        "| recall 24-48 / 48-96 / 96+ px | ms/img | ms 640x480 |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name in names:
        detector = FaceDetector(SWEEP[name])
        replay = Replay(detector)
        strict = evaluate_detector(cached, replay)
        replay.replaying = True
        loose = evaluate_detector(cached, replay, iou=0.3)
        by_size = " / ".join(f"{v:.2f}" for v in strict["recall_by_size"].values())
        print(
            f"| {name} | {strict['recall']:.3f} | {strict['precision']:.3f} "
            f"| {loose['recall']:.3f} | {loose['precision']:.3f} | {by_size} "
            f"| {strict['ms_per_image']:.1f} | {median_ms(detector, frame):.2f} |",
            flush=True,
        )
        detector.close()
    faces = strict["faces"]
    print(
        f"\n{faces} labelled faces >= 24 px ({strict['faces_by_size']}), "
        f"{strict['faces_ignored_small']} smaller ones ignored. "
        f"Load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
