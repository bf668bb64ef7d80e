"""Server-side live under load: N headless Chromium sessions stream a fake camera to the app.

    .venv/bin/python bench/live_load.py                     # 1 (baseline), then 2 and 4 sessions
    .venv/bin/python bench/live_load.py --sessions 2 --seconds 30 --profile profile.txt

For each N a fresh `streamlit run serve.py` (test mode: loopback WebRTC, status file) serves the
shipped default model; every browser presses Start, and once all of them get annotated frames
the script measures for `--seconds`: annotated frames per second per session (frames that went
through the pipeline, from the server's status file), the pipeline's median ms per frame, the
server's CPU (% of one core) and peak resident memory, the CPU of the browsers (they run on
the same machine: each one encodes the camera and decodes the answer), and the load average.
`--profile FILE` also samples the server with py-spy (requirements-dev.txt) during the last
N's window and writes a summary.
Not a test: the numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from facemask.images import load_image  # noqa: E402
from harness.browser import (  # noqa: E402  (the browser tests' harness: one way to do it)
    CAMERA_PHOTOS,
    WEBRTC_IFRAME,
    browsers,
    camera_picture,
    cpu_seconds,
    process_memory_mb,
    start_app,
    write_y4m,
)
from harness.browser import read_status as _read_status  # noqa: E402
from harness.browser import wait_for as _wait_for  # noqa: E402

SHIPPED_MODEL = REPO / "models" / "mobilenetv2"

HOT_FRAMES = {
    "gc.collect after each script run (runner.postScriptGC)": "ScriptRunner._on_script_finished",
    "keras clear_session after each script run": "clear_session (keras",
    "VP8 decode (aiortc)": "Vp8Decoder.decode",
    "VP8 encode (aiortc)": "Vp8Encoder.encode",
    "Pipeline.process": "Pipeline.process",
    "LiveProcessor.process (whole callback)": "LiveProcessor.process",
    "chart fragment (faces_chart)": "faces_chart",
    "script runs (ScriptRunner._run_script)": "ScriptRunner._run_script",
    "PollingPathWatcher (its thread asleep in time.sleep)": "PollingPathWatcher",
}


def py_spy() -> str:
    """The py-spy executable installed next to this Python (requirements-dev.txt)."""
    local = Path(sys.executable).with_name("py-spy")
    return str(local) if local.exists() else shutil.which("py-spy") or "py-spy"


def descendants(root: int) -> set[int]:
    """Process ids below `root` (Linux /proc): here the browsers and Playwright's driver."""
    children: dict[int, list[int]] = collections.defaultdict(list)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children[int(fields[1])].append(int(stat.parent.name))
    found, todo = set(), [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def browsers_cpu_seconds(server: int) -> dict[int, float]:
    """CPU seconds so far of every process this script started except the server."""
    seconds = {}
    for pid in descendants(os.getpid()) - {server}:
        try:
            seconds[pid] = cpu_seconds(pid)
        except (OSError, IndexError):
            pass
    return seconds


def sessions(status_file: Path) -> dict[str, dict]:
    return _read_status(status_file).get("sessions", {})


def summarise_profile(raw: Path, out: Path, label: str) -> None:
    """Share of samples (all threads, inclusive) in the frames that matter, and the top leaves."""
    total = 0
    hits = collections.Counter()
    leaves = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        for name, needle in HOT_FRAMES.items():
            if needle in stack:
                hits[name] += n
        leaves[stack.split(";")[-1]] += n
    lines = [f"## {label}: {total} samples (py-spy, all threads, 50 Hz)"]
    lines += [f"{100 * hits[name] / max(total, 1):5.1f}%  {name}" for name in HOT_FRAMES]
    lines.append("top leaf frames:")
    lines += [f"{100 * n / max(total, 1):5.1f}%  {leaf}" for leaf, n in leaves.most_common(15)]
    text = "\n".join(lines) + "\n"
    with out.open("a") as f:
        f.write(text)
    print(text)


def run(n: int, seconds: float, clip: Path, work: Path, profile: Path | None) -> dict:
    """Serve, connect n browsers, measure; returns the figures for one row of the table."""
    with start_app(work / f"app-{n}", SHIPPED_MODEL) as app, browsers(work / f"b-{n}") as launch:
        pages = [launch(clip) for _ in range(n)]
        for page in pages:
            page.goto(f"{app.base}/live", wait_until="domcontentloaded")
        for page in pages:
            webrtc = page.frame_locator(WEBRTC_IFRAME)
            webrtc.get_by_role("button", name="Start").click(timeout=120_000)
        started = lambda: sum(s["processed"] >= 10 for s in sessions(app.status).values())  # noqa: E731
        try:
            _wait_for(f"{n} sessions with annotated frames", lambda: started() >= n, 180, 0.5)
        except AssertionError:  # a result too: measure what there is
            print(f"after 180 s only {started()} of {n} sessions had 10 annotated frames")
        time.sleep(3)  # let the start-up burst of reruns settle
        spy = None
        if profile is not None:
            raw = profile.with_name(f"{profile.stem}-{n}.raw.txt")
            spy = subprocess.Popen(
                [py_spy(), "record", "-p", str(app.pid), "-d",
                 str(int(seconds)), "-r", "50", "-f", "raw", "-o", str(raw), "--nonblocking"],
                stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
            )  # fmt: skip
        browsers0 = browsers_cpu_seconds(app.pid)
        before, cpu0, t0 = sessions(app.status), cpu_seconds(app.pid), time.monotonic()
        load0 = os.getloadavg()[0]
        time.sleep(seconds)
        after, cpu1, t1 = sessions(app.status), cpu_seconds(app.pid), time.monotonic()
        browsers1 = browsers_cpu_seconds(app.pid)
        browser_s = sum(v - browsers0.get(k, 0.0) for k, v in browsers1.items())
        load1 = os.getloadavg()[0]
        if spy is not None:
            spy.wait(timeout=seconds + 60)
            summarise_profile(raw, profile, f"{n} session(s)")
        fps = sorted(
            (after[k]["processed"] - before.get(k, {}).get("processed", 0)) / (t1 - t0)
            for k in after
        )
        fps = [0.0] * (n - len(fps)) + fps  # sessions that never got an annotated frame
        return {
            "n": n,
            "fps": fps,
            "latency": [after[k]["latency_ms"] for k in after],
            "cpu": 100 * (cpu1 - cpu0) / (t1 - t0),
            "browsers_cpu": 100 * browser_s / (t1 - t0),
            "rss": process_memory_mb(app.pid)["peak_rss_mb"],
            "load": (load0, load1),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, nargs="+", default=[2, 4], help="N to measure")
    parser.add_argument("--seconds", type=float, default=30.0, help="measuring window per N")
    parser.add_argument("--profile", type=Path, help="write a py-spy summary here (largest N)")
    args = parser.parse_args()
    counts = [1, *[n for n in args.sessions if n != 1]]
    if args.profile is not None:
        args.profile.write_text("")
    with tempfile.TemporaryDirectory(prefix="live-load-") as tmp:
        work = Path(tmp)
        faces = {p.name: p for p in (REPO / "tests" / "data" / "faces").iterdir()}
        clip = work / "faces.y4m"
        write_y4m(clip, camera_picture([load_image(faces[name]) for name in CAMERA_PHOTOS]))
        rows = []
        for n in counts:
            spy = args.profile if n == max(counts) else None
            rows.append(run(n, args.seconds, clip, work, spy))
            print(f"{n} session(s) measured", flush=True)
    print(f"\n{os.cpu_count()} CPUs; annotated FPS per session over {args.seconds:.0f} s")
    print("| sessions | annotated FPS per session | pipeline ms (median) | server CPU % | "
          "browsers CPU % | server peak RSS MB | load average |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        fps = ", ".join(f"{f:.1f}" for f in row["fps"])
        latency = statistics.median(row["latency"]) if row["latency"] else float("nan")
        load = f"{row['load'][0]:.1f} -> {row['load'][1]:.1f}"
        print(f"| {row['n']} | {fps} | {latency:.1f} | {row['cpu']:.0f} | "
              f"{row['browsers_cpu']:.0f} | {row['rss']:.0f} | {load} |")  # fmt: skip


if __name__ == "__main__":
    main()
