"""The watcher under load: N cameras served over RTSP on 127.0.0.1, one `facemask watch`.

    .venv/bin/python bench/monitor_load.py                      # 8 cameras, 20 s
    .venv/bin/python bench/monitor_load.py --cameras 4 --seconds 60 --stream-fps 25

A clip of faces walking past (640x480 H.264, made from tests/data/faces) is served by
GStreamer's RTSP server (harness/rtsp.py) at one mount per camera; the watcher reads them all
with the shipped default model and the webcam detector into a throwaway SQLite database. Once
every camera is online and analysed, the script measures for `--seconds`: analysed frames per
second per camera and the frame age (decoded -> analysed, from the watcher's live status), the
watcher's CPU (% of one core) and peak resident memory, and the load average, side by side with
the target (issue 13): 5 analysed FPS per camera, frame age <= 0.5 s, the watcher within one
core and 800 MB. Not a test: the numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from harness import free_port, rtsp  # noqa: E402
from harness.clips import write_clip  # noqa: E402

TARGET = {"fps": 5.0, "age_s": 0.5, "cpu_pct": 100.0, "rss_mb": 800.0}
PEOPLE = ["without_mask_00597.jpg", "with_mask_00002.jpg", "with_mask_00820.jpg"]


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def statuses(live: Path, names: list[str]) -> dict[str, dict]:
    out = {}
    for name in names:
        try:
            out[name] = json.loads((live / f"{name}.json").read_text())
        except (OSError, ValueError):
            continue
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cameras", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--fps", type=float, default=5.0, help="analysed FPS per camera")
    parser.add_argument("--stream-fps", type=int, default=15, help="each camera's own rate")
    parser.add_argument("--warmup-timeout", type=float, default=50.0)
    args = parser.parse_args()
    if not rtsp.available():
        sys.exit("GStreamer's RTSP server is missing: scripts/install-test-services.sh")

    folder = Path(tempfile.mkdtemp(prefix="facemask-monitor-load-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    # long enough for the warm-up and the measurement (the server plays each clip once)
    cycles = int((args.seconds + 60) // 7) + 1
    scenes = ([(p, 2.0) for p in PEOPLE] + [(None, 1.0)]) * cycles
    clip = write_clip(folder / "door.mp4", scenes, fps=args.stream_fps)
    names = [f"cam{i}" for i in range(args.cameras)]
    live = folder / "live"
    with rtsp.serve(free_port(), {n: clip for n in names}) as urls:
        cmd = [sys.executable, "-m", "facemask", "watch", "--db", f"sqlite:///{folder / 'r.db'}",
               "--live-dir", str(live), "--fps", str(args.fps),
               *(arg for n in names for arg in ("--camera", f"{n}={urls[n]}"))]  # fmt: skip
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        watcher = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)
        try:
            end = time.monotonic() + args.warmup_timeout
            while time.monotonic() < end:
                now = statuses(live, names)
                if len(now) == len(names) and all(
                    s["state"] == "online" and s["analysed"] >= 5 for s in now.values()
                ):
                    break
                if watcher.poll() is not None:
                    sys.exit(f"the watcher ended: {watcher.stderr.read()[-2000:]}")
                time.sleep(0.5)
            else:
                sys.exit(f"not every camera came online in {args.warmup_timeout:g} s")
            reconnects0 = sum(s["reconnects"] for s in statuses(live, names).values())
            first, cpu0, t0 = statuses(live, names), cpu_seconds(watcher.pid), time.monotonic()
            ages: dict[str, list[float]] = {n: [] for n in names}
            while time.monotonic() - t0 < args.seconds:
                time.sleep(1.0)
                for name, status in statuses(live, names).items():
                    if status.get("frame_age_s") is not None:
                        ages[name].append(float(status["frame_age_s"]))
            last, cpu1, t1 = statuses(live, names), cpu_seconds(watcher.pid), time.monotonic()
            rss = peak_rss_mb(watcher.pid)
            reconnects = sum(s["reconnects"] for s in last.values()) - reconnects0
        finally:
            watcher.terminate()
            try:
                watcher.wait(timeout=60)
            except subprocess.TimeoutExpired:
                watcher.kill()
    load = Path("/proc/loadavg").read_text().split()[:3]
    with sqlite3.connect(folder / "r.db") as conn:  # the watcher has flushed and ended
        faces = conn.execute("SELECT coalesce(sum(n), 0) FROM face_minutes").fetchone()[0]
    analysed = sum(s["analysed"] for s in statuses(live, names).values())
    wall = t1 - t0
    print(f"{args.cameras} cameras, 640x480 at {args.stream_fps} FPS over RTSP, analysed at "
          f"{args.fps:g} FPS, measured {wall:.0f} s; load average {' '.join(load)} "
          f"({os.cpu_count()} cores)")  # fmt: skip
    print(f"{'camera':<8} {'analysed FPS':>13} {'target':>7} {'frame age med':>14} "
          f"{'max':>6} {'target':>7}")  # fmt: skip
    fps_all = []
    for name in names:
        fps = (last[name]["analysed"] - first[name]["analysed"]) / wall
        fps_all.append(fps)
        med = statistics.median(ages[name]) if ages[name] else float("nan")
        top = max(ages[name]) if ages[name] else float("nan")
        print(f"{name:<8} {fps:>13.2f} {TARGET['fps']:>7.1f} {med:>13.2f}s {top:>5.2f}s "
              f"{TARGET['age_s']:>6.1f}s")  # fmt: skip
    cpu = 100 * (cpu1 - cpu0) / wall
    print(f"{'all':<8} {sum(fps_all):>13.2f} {TARGET['fps'] * len(names):>7.1f}   "
          f"({faces} faces in {analysed} analysed frames: the detector did work)")  # fmt: skip
    print(f"watcher CPU {cpu:.0f}% of one core (target <= {TARGET['cpu_pct']:.0f}%), "
          f"peak RSS {rss:.0f} MB (target <= {TARGET['rss_mb']:.0f} MB); "
          f"{reconnects} reconnects while measuring")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
