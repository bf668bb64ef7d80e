"""`facemask scan` against `facemask predict` in one process, on the same photos; video frames
per second; peak memory as the archive grows.

    .venv/bin/python bench/scan.py [--photos 1000] [--rss-photos 1000,5000]
                                   [--data DIR] [--video-seconds 30]

Photos come from --data (default: the chandrikadeb7 face-mask dataset when the datasets folder
next to the repository holds it, else tests/data), repeated under new names (symbolic
links) until there are enough. For each worker count the scan runs as its own process, as a user
runs it; "once started" is its rate after the first block came back (Ray up, models loaded), set
beside the time per photo of the same calls `facemask predict` makes (load_image, image_result)
in this process after its models loaded. One worker runs with the cores' threads, as predict
does (the default); the scaling from one worker to two is measured with one thread per worker,
so that each worker is one core. Peak memory is the most the scan's whole process tree
(driver, Ray's processes, the workers) held at once, sampled every 0.2 s. Video: one worker's
frames per second through scan's path (every frame, the webcam detector) beside
`facemask video`'s annotate_video on the same 25 fps 720p clip, and what an hour of such video
costs at scan's default 2 fps. Not a test: numbers depend on the machine and
its load (printed).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from facemask.cli import _pipeline  # noqa: E402
from facemask.gate import IMAGE_EXTENSIONS  # noqa: E402
from facemask.images import load_image  # noqa: E402
from facemask.predict import image_result  # noqa: E402
from facemask.runs import DEFAULT_MODEL  # noqa: E402
from facemask.scan_work import scan_video  # noqa: E402
from facemask.video import annotate_video  # noqa: E402

SHARED_DATA = REPO.parent / "shared" / "datasets" / "chandrikadeb7-face-mask"
SUMMARY = re.compile(
    r"in ([\d.]+) s on (\d+) workers of (\d+) threads .*: ([\d.]+) files/s, ([\d.]+) once"
)
RAY_START = re.compile(r"Ray started in ([\d.]+) s")


def photo_folder(source: Path, count: int, into: Path) -> Path:
    """`count` photos from `source` as links in one folder, repeated under new names if short."""
    photos = sorted(p for p in source.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
    if not photos:
        raise SystemExit(f"no photos under {source}")
    folder = into / f"photos-{count}"
    folder.mkdir()
    for i in range(count):
        photo = photos[i % len(photos)]
        (folder / f"{i:06d}{photo.suffix.lower()}").symlink_to(photo.resolve())
    return folder


def tree_rss(pid: int) -> int:
    """Resident bytes of a process and all its descendants."""
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for proc in procs:
        try:
            total += proc.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def run_scan(folder: Path, workers: int, out: Path, threads: int | None = None) -> dict:
    """One `facemask scan` process; its summary figures and the peak RSS of its process tree."""
    command = [sys.executable, "-m", "facemask", "scan", str(folder), "--out", str(out)]
    command += ["--workers", str(workers)] + (["--threads", str(threads)] if threads else [])
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    peak, done = 0, threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, tree_rss(process.pid))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, stderr = process.communicate()
    done.set()
    sampler.join()
    found, ray = SUMMARY.search(stdout), RAY_START.search(stderr)
    if process.returncode or not found or not ray:
        raise SystemExit(f"scan failed ({process.returncode}):\n{stdout}\n{stderr}")
    return {
        "seconds": float(found.group(1)),
        "threads": int(found.group(3)),
        "files_per_s": float(found.group(4)),
        "steady_per_s": float(found.group(5)),
        "ray_start_s": float(ray.group(1)),
        "peak_rss_mb": peak / 2**20,
    }


def predict_rate(folder: Path) -> tuple[float, float]:
    """(start-up seconds, photos per second after) of predict's calls in this process."""
    started = time.perf_counter()
    pipeline = _pipeline(DEFAULT_MODEL, "photo")
    loaded = time.perf_counter()
    photos = sorted(folder.iterdir())
    for photo in photos:
        image_result(pipeline, load_image(photo, name=photo.name), str(photo))
    return loaded - started, len(photos) / (time.perf_counter() - loaded)


def write_camera_clip(path: Path, seconds: int, fps: int = 10) -> Path:
    """A 1280x720 clip, as a camera records: a face crossing a grey hall."""
    import av
    import cv2
    import numpy as np

    face = cv2.resize(load_image(REPO / "tests" / "data" / "faces" / "astronaut.jpg"), (240, 240))
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 1280, 720, "yuv420p"
        for i in range(seconds * fps):
            frame = np.full((720, 1280, 3), 110, np.uint8)
            x = (i * 8) % (1280 - 240)
            frame[240:480, x : x + 240] = face
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def video_rates(seconds: int, into: Path) -> dict:
    """On a 25 fps camera clip: frames/s of scan and of `facemask video` on every frame, and
    scan's cost per hour of video at its default 2 fps (it still decodes every frame)."""
    clip = write_camera_clip(into / "clip.mp4", seconds, fps=25)
    pipeline = _pipeline(DEFAULT_MODEL, "webcam")
    size = clip.stat().st_size
    started = time.perf_counter()
    every = scan_video(pipeline, str(clip), size, fps=0)
    every_s = time.perf_counter() - started
    started = time.perf_counter()
    sampled = scan_video(pipeline, str(clip), size, fps=2)
    sampled_s = time.perf_counter() - started
    started = time.perf_counter()
    summary = annotate_video(clip, into / "annotated.mp4", pipeline)
    return {
        "frames": every.frames,
        "scan_fps": every.frames / every_s,
        "video_fps": summary.frames / (time.perf_counter() - started),
        "hour_minutes": sampled_s / sampled.seconds * 3600 / 60,
        "sampled": sampled.frames,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=1000, help="photos for the speed runs")
    parser.add_argument("--rss-photos", default="1000,5000", help="archive sizes for peak RSS")
    parser.add_argument("--data", type=Path, help="photo folder (default: chandrikadeb7 or tests)")
    parser.add_argument("--video-seconds", type=int, default=30, help="clip length (10 fps)")
    args = parser.parse_args()
    source = args.data or (SHARED_DATA if SHARED_DATA.is_dir() else REPO / "tests" / "data")
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
    print(f"photos from {source.name}")
    with tempfile.TemporaryDirectory(prefix="bench-scan-") as tmp:
        tmp = Path(tmp)
        folder = photo_folder(source, args.photos, tmp)
        startup, baseline = predict_rate(folder)
        print(f"\n{args.photos} photos: photos/s once started (ms per photo)   start-up s")
        rate = f"{baseline:7.1f} ({1000 / baseline:6.1f})"
        print(f"  predict, one process      {rate}    {startup:5.1f}")
        runs = {}
        for workers, threads in ((1, None), (1, 1), (2, 1)):
            run = runs[workers, threads] = run_scan(
                folder, workers, tmp / f"out-{workers}-{threads}", threads
            )
            print(
                f"  scan, {workers} worker(s) x {run['threads']} thread(s)"
                f" {run['steady_per_s']:7.1f} ({1000 / run['steady_per_s']:6.1f})"
                f"    {run['ray_start_s']:5.1f} Ray + models; {run['files_per_s']:.1f}/s over the"
                f" {run['seconds']:.0f} s in all, peak RSS {run['peak_rss_mb']:.0f} MB"
            )
        one, single, double = runs[1, None], runs[1, 1], runs[2, 1]
        print(
            f"  1 worker vs predict (both with {one['threads']} threads):"
            f" {baseline / one['steady_per_s']:.2f}x the time per photo (target <= 1.25)"
        )
        print(
            "  2 workers vs 1, one thread each:"
            f" {double['steady_per_s'] / single['steady_per_s']:.2f}x the photos/s (target >= 1.7)"
        )
        print("\npeak RSS of the scan's process tree (driver, Ray, workers), 2 workers")
        peaks = []
        for count in map(int, args.rss_photos.split(",")):
            sized = photo_folder(source, count, tmp) if count != args.photos else folder
            run = run_scan(sized, 2, tmp / f"rss-{count}")
            peaks.append(run["peak_rss_mb"])
            print(f"  {count:6d} photos: {run['peak_rss_mb']:6.0f} MB in {run['seconds']:.0f} s")
        if len(peaks) > 1:
            print(f"  growth: {peaks[-1] / peaks[0]:.2f}x (target: flat)")
        video = video_rates(args.video_seconds, tmp)
        print(f"\nvideo, 1280x720 at 25 fps, {video['frames']} frames, one worker: frames/s")
        print(f"  facemask video, every frame (annotates, encodes) {video['video_fps']:6.1f}")
        print(f"  scan, every frame                                {video['scan_fps']:6.1f}")
        print(
            f"  scan at --fps 2 ({video['sampled']} frames analysed, every frame decoded):"
            f" {video['hour_minutes']:.1f} worker-minutes per hour of video"
        )
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
