"""FPS of "Live in your browser" next to the server-side Live page, on the same camera clips.

    .venv/bin/python bench/browser_fps.py [--seconds 20] [--faces 1 3] [--no-server] [--no-pair]

Starts the app (`streamlit run serve.py`; another checkout with --root DIR --entry app.py) and
headless Chromium whose fake camera plays a 640x480
clip of 1 or 3 real faces (tests/data/faces). For each clip it measures:
- in the browser: frames processed per second by the page, the detect and classify ms per frame
  and the faces classified per frame it reports (window.facemaskStats; a face that stays put
  reuses a recent classification), and the server's CPU meanwhile;
- on the server (the Live page, WebRTC): frames the server processed per second, its CPU;
then the server's CPU while TWO browsers stream in the in-browser mode. Prints the load average
next to every figure. Not a test: numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from harness.browser import (  # noqa: E402
    BROWSER_IFRAME,
    WEBRTC_IFRAME,
    browsers,
    cpu_seconds,
    load_average,
    people_clip,
    read_status,
    start_app,
)

WARM_UP_S = 6.0


def component_frame(page, part: str):
    for _ in range(240):
        frame = next((f for f in page.frames if part in f.url), None)
        if frame is not None:
            return frame
        page.wait_for_timeout(500)
    raise SystemExit(f"no {part} frame")


def start_in_browser(page, base: str):
    page.goto(f"{base}/browser" if BASELINE else f"{base}/")
    page.frame_locator(BROWSER_IFRAME).get_by_role("button", name="Start").click(timeout=120_000)
    frame = component_frame(page, "browser_live.browser_live")
    frame.wait_for_function("() => window.facemaskStats.frames > 0", timeout=180_000)
    return frame


def browser_run(context, base: str, server_pid: int, seconds: float) -> dict:
    """In-browser FPS over `seconds` (after a warm-up) and the server's CPU meanwhile."""
    page = context.new_page() if context.pages[0].url != "about:blank" else context.pages[0]
    frame = start_in_browser(page, base)
    time.sleep(WARM_UP_S)
    stats = frame.evaluate("() => window.facemaskStats")
    cpu0, t0 = cpu_seconds(server_pid), time.monotonic()
    detect, classify, classified = [], [], []
    while time.monotonic() - t0 < seconds:
        time.sleep(1.0)
        now = frame.evaluate("() => window.facemaskStats")
        detect.append(now["detectMs"])
        classify.append(now["classifyMs"])
        classified.append(now.get("classified", float("nan")))
    elapsed = time.monotonic() - t0
    server_cpu = 100 * (cpu_seconds(server_pid) - cpu0) / elapsed
    page.close()
    return {
        "fps": (now["frames"] - stats["frames"]) / elapsed,
        "detect_ms": sorted(detect)[len(detect) // 2],
        "classify_ms": sorted(classify)[len(classify) // 2],
        "classified": sorted(classified)[len(classified) // 2],
        "faces": len(now["faces"]),
        "backend": now["backend"],
        "server_cpu_pct": server_cpu,
    }


def server_run(context, base: str, status: Path, server_pid: int, seconds: float) -> dict:
    """Frames per second the server-side Live page processed, and the server's CPU."""
    status.unlink(missing_ok=True)  # each session's processor counts from 0
    page = context.new_page()
    page.goto(base if BASELINE else f"{base}/live")
    page.frame_locator(WEBRTC_IFRAME).get_by_role("button", name="Start").click(timeout=120_000)

    def processed() -> int:
        return read_status(status).get("processed", 0)

    deadline = time.monotonic() + 180
    while processed() == 0 and time.monotonic() < deadline:
        time.sleep(0.5)
    time.sleep(WARM_UP_S)
    count0, cpu0, t0 = processed(), cpu_seconds(server_pid), time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - t0
    result = {
        "fps": (processed() - count0) / elapsed,
        "server_cpu_pct": 100 * (cpu_seconds(server_pid) - cpu0) / elapsed,
    }
    page.frame_locator(WEBRTC_IFRAME).get_by_role("button", name="Stop").click()
    page.close()
    return result


def two_browsers(launch, app, clip: Path, args) -> tuple[list[float], float]:
    """FPS of two browsers streaming the in-browser page at once, and the server's CPU."""
    contexts = [launch(clip).context for _ in range(2)]
    frames = [start_in_browser(c.pages[0], app.base) for c in contexts]
    time.sleep(WARM_UP_S)
    counts0 = [f.evaluate("() => window.facemaskStats.frames") for f in frames]
    cpu0, t0 = cpu_seconds(app.pid), time.monotonic()
    time.sleep(args.seconds)
    elapsed = time.monotonic() - t0
    two_cpu = 100 * (cpu_seconds(app.pid) - cpu0) / elapsed
    two_fps = [
        (f.evaluate("() => window.facemaskStats.frames") - c) / elapsed
        for f, c in zip(frames, counts0, strict=True)
    ]
    return two_fps, two_cpu


BASELINE = False
"""Measuring another checkout (--root): its in-browser page is at /browser, Live at the root."""


def main() -> None:
    global BASELINE
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds per run")
    parser.add_argument("--faces", type=int, nargs="+", default=[1, 3], choices=[1, 2, 3])
    parser.add_argument("--no-server", action="store_true", help="skip the server-side Live runs")
    parser.add_argument(
        "--no-pair", action="store_true", help="skip the run with two browsers streaming"
    )
    parser.add_argument(
        "--root", type=Path, default=REPO, help="checkout to run (default: this one)"
    )
    parser.add_argument("--entry", default="serve.py", help="the script `streamlit run` starts")
    args = parser.parse_args()
    BASELINE = args.root.resolve() != REPO
    tmp = Path(tempfile.mkdtemp(prefix="facemask-browser-fps-"))
    rows = []
    with start_app(tmp, None, entry=args.entry, root=args.root) as app, browsers(tmp) as launch:
        for n in args.faces:
            clip = people_clip(tmp / f"faces-{n}.y4m", n)
            page = launch(clip)
            in_browser = {**browser_run(page.context, app.base, app.pid, args.seconds)}
            in_browser["load"] = load_average()
            on_server = {"fps": float("nan"), "server_cpu_pct": float("nan"), "load": "-"}
            if not args.no_server:
                on_server = {
                    **server_run(page.context, app.base, app.status, app.pid, args.seconds),
                    "load": load_average(),
                }
            page.context.close()
            rows.append((n, in_browser, on_server))
            print(f"{n} face(s): browser {in_browser} | server {on_server}", flush=True)

        if args.no_pair:
            two_fps = []
        else:
            two_fps, two_cpu = two_browsers(launch, app, tmp / f"faces-{args.faces[0]}.y4m", args)

    print(f"\n{os.cpu_count()} CPUs; measured {args.seconds:.0f} s per run after {WARM_UP_S:.0f} s")
    print(
        "| faces | in browser: FPS | detect ms | classify ms (faces) | server CPU | load | "
        "server-side Live: FPS | server CPU | load |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for n, b, s in rows:
        print(
            f"| {n} | {b['fps']:.1f} ({b['backend']}) | {b['detect_ms']:.1f} | "
            f"{b['classify_ms']:.1f} ({b['classified']:.1f}) | "
            f"{b['server_cpu_pct']:.1f}% | {b['load']} | "
            f"{s['fps']:.1f} | {s['server_cpu_pct']:.0f}% | {s['load']} |"
        )
    if not two_fps:
        return
    print(
        f"\nTwo browsers streaming in the browser mode: {two_fps[0]:.1f} and {two_fps[1]:.1f} FPS;"
        f" server CPU {two_cpu:.1f}% of one core (load {load_average()})."
    )


if __name__ == "__main__":
    main()
