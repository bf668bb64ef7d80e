"""Sweep face-detector settings on a scenes folder: recall, precision, AP and time side by side.

    python bench/detector_settings.py --scenes ../shared/datasets/maskilc-scenes [--model NAME]

Recall counts labelled faces whose shorter side is >= 24 px ("all": every labelled face);
precision is a lower bound (many background faces carry no box). Boxes match at IoU >= 0.5 (the
scene-AP criterion) and, to show how much of the gap is box extent rather than missed faces, at
IoU >= 0.3. With --model, each setting's faces are also classified as the app does (Pipeline)
and scored as per-class AP (mask / no mask, and their mean). "ms/img" is the median detect()
time on the scene photos (up to 1024 px); "ms 640x480" the median on a webcam-sized frame with
one face. Results feed docs/detection.md (WEBCAM and PHOTO in facemask/detect.py).
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

from facemask.detect import PHOTO, WEBCAM, DetectorSettings, FaceDetector  # noqa: E402
from facemask.images import load_image  # noqa: E402
from facemask.scenes import (  # noqa: E402
    Scene,
    SceneFace,
    evaluate_detector,
    evaluate_scenes,
    load_scenes,
)

DEFAULT_SCENES = ROOT.parent / "shared" / "datasets" / "maskilc-scenes"
WEBCAM_FACE = ROOT / "tests" / "data" / "faces" / "astronaut.jpg"

SWEEP: dict[str, DetectorSettings] = {
    "short": DetectorSettings(model="short", min_score=0.5, min_face=12),
    "short s0.3": DetectorSettings(model="short", min_score=0.3, min_face=12),
    "full": DetectorSettings(model="full", min_score=0.5, min_face=12),
    "full s0.3": DetectorSettings(model="full", min_score=0.3, min_face=12),
    "full+close": DetectorSettings(model="full", min_face=12, close_up_pass=True),
    "short litert": DetectorSettings(model="short", min_face=12, runtime="litert"),
    "yunet s0.5": DetectorSettings(model="yunet", min_score=0.5, min_face=12),
    "yunet": DetectorSettings(model="yunet", min_score=0.6, min_face=12),
    "yunet s0.7": DetectorSettings(model="yunet", min_score=0.7, min_face=12),
    "yunet uncut": DetectorSettings(model="yunet", min_score=0.6, min_face=12, top_cut=0.0),
    "yunet x2": DetectorSettings(model="yunet", min_score=0.6, min_face=12, scale=2.0),
    "yunet+close": DetectorSettings(
        model="yunet", min_score=0.6, min_face=12, close_up_pass=True, runtime="litert"
    ),
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
    """Plays recorded answers back in scene order, to score them several ways."""

    def __init__(self, answers: list) -> None:
        self.answers, self.next = answers, 0

    def __call__(self, _rgb: np.ndarray) -> list:
        self.next += 1
        return self.answers[(self.next - 1) % len(self.answers)]

    detect = __call__


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
    """Median wall and CPU ms per call, the settings taking turns image by image so that load
    hits all alike. CPU time (all threads of this process) barely depends on the machine's load;
    on a quiet machine wall time is CPU time spread over the threads a model uses."""
    detectors = {name: FaceDetector(SWEEP[name]) for name in names}
    kinds = ("photo", "photo cpu", "frame", "frame cpu")
    times = {(name, kind): [] for name in names for kind in kinds}
    for round_ in range(rounds + 1):
        for image in images:
            for name, detector in detectors.items():
                for target, kind in ((image, "photo"), (frame, "frame")):
                    wall, cpu = time.perf_counter(), time.process_time()
                    detector.detect(target)
                    if round_:  # the first round warms up
                        times[name, kind].append(time.perf_counter() - wall)
                        times[name, kind + " cpu"].append(time.process_time() - cpu)
    print(
        f"| setting | median ms/img ({len(images)} scene photos) | CPU ms/img "
        "| median ms 640x480 | CPU ms 640x480 |"
    )
    print("|---|---|---|---|---|")
    for name in names:
        cells = " | ".join(f"{1000 * np.median(times[name, kind]):.1f}" for kind in kinds)
        print(f"| {name} | {cells} |")
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
        "--model", default=None, help="also classify the faces and score per-class AP"
    )
    parser.add_argument(
        "--latency",
        type=int,
        default=0,
        metavar="N",
        help="only time the settings (wall, CPU), taking turns, on the first N photos (3 rounds)",
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
    classifier = None
    if args.model:
        from facemask.classify import MaskClassifier
        from facemask.pipeline import Pipeline
        from facemask.runs import RunStore

        model_dir = Path(args.model)
        model_dir = model_dir if model_dir.is_dir() else RunStore().resolve_model(args.model)
        classifier = MaskClassifier(model_dir)
    print(f"{len(cached)} images from {args.scenes}; load average {os.getloadavg()[0]:.1f}\n")
    ap_head = (
        " | AP@.5 mask / no mask (mean) | AP@.3 mean | AP@.5 all faces mean" if classifier else ""
    )
    print(
        "| setting | recall@.5 | precision@.5 | recall@.3 | precision@.3 | recall@.5 all faces "
        f"| recall 24-48 / 48-96 / 96+ px{ap_head} | ms/img | ms 640x480 |"
    )
    print("|---" * (9 + (3 if classifier else 0)) + "|")
    for name in names:
        detector = FaceDetector(SWEEP[name])
        answers, times = [], []
        for scene in cached:
            start = time.perf_counter()
            answers.append(detector.detect(scene.rgb))
            times.append(time.perf_counter() - start)
        strict = evaluate_detector(cached, Replay(answers))
        loose = evaluate_detector(cached, Replay(answers), iou=0.3)
        every = evaluate_detector(cached, Replay(answers), min_face=1)
        by_size = " / ".join(
            "-" if v is None else f"{v:.2f}" for v in strict["recall_by_size"].values()
        )
        ap_cells = ""
        if classifier:
            pipeline = Pipeline(detector, classifier)
            found = [
                pipeline.classify_faces(scene.rgb, faces)
                for scene, faces in zip(cached, answers, strict=True)
            ]
            ap = {
                (size, iou): evaluate_scenes(
                    cached, Replay(found), pipeline.labels, min_face=size, iou=iou
                )
                for size, iou in ((24, 0.5), (24, 0.3), (1, 0.5))
            }
            per_class = " / ".join(
                f"{row['ap']:.3f}" for row in ap[24, 0.5]["classes"].values() if row["scored"]
            )
            ap_cells = (
                f" | {per_class} ({ap[24, 0.5]['mean_ap']:.3f}) | {ap[24, 0.3]['mean_ap']:.3f} "
                f"| {ap[1, 0.5]['mean_ap']:.3f}"
            )
        print(
            f"| {name} | {strict['recall']:.3f} | {strict['precision']:.3f} "
            f"| {loose['recall']:.3f} | {loose['precision']:.3f} | {every['recall']:.3f} "
            f"| {by_size}{ap_cells} | {1000 * np.median(times):.1f} "
            f"| {median_ms(detector, frame):.2f} |",
            flush=True,
        )
        detector.close()
    faces = strict["faces"]
    print(
        f"\n{faces} labelled faces >= 24 px ({strict['faces_by_size']}), "
        f"{strict['faces_ignored_small']} smaller ones. "
        f"Load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
