"""A crowd on one server: many visitors of "Live in your browser", a few of them streaming.

    .venv/bin/python bench/browser_crowd.py [--visitors 20] [--streaming 3] [--seconds 20]

Starts the app (`streamlit run serve.py`) behind a byte-counting relay and one headless Chromium
in which each visitor has a context of its own (its own cache, as another person's browser),
all with a fake camera playing three faces. It then prints, each with the load average:
- the bytes each visitor's first visit cost over the wire (counted at the relay);
- the server's resident memory (RSS) before the crowd, with it, once every page is closed and
  the sessions have ended (--ttl), and after each of --rounds more crowds came and went; the
  growth per visitor;
- the server's CPU while the crowd sits idle and while `--streaming` of them stream, per
  streaming visitor (% of one core).
Targets (issue 16): CPU per streaming visitor <= 0.5% of a core; RSS growth per visitor <= 15 MB;
RSS back down once the pages are closed. Not a test: the figures depend on the machine's load.
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
    ByteCounter,
    cpu_seconds,
    load_average,
    people_clip,
    process_memory_mb,
    shared_browser,
    start_app,
    wait_for,
)

COMPONENT = "browser_live.browser_live"


def rss(pid: int) -> float:
    return process_memory_mb(pid)["rss_mb"]


def server_cpu(pid: int, seconds: float) -> float:
    """The server's CPU over `seconds`, in % of one core."""
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return 100 * (cpu_seconds(pid) - cpu0) / (time.monotonic() - t0)


def visit(page, url: str):
    """Open the app's root; wait until the page's models are ready; return the component frame."""
    page.goto(url, wait_until="domcontentloaded")
    component = page.frame_locator(BROWSER_IFRAME)
    component.get_by_role("button", name="Start").wait_for(state="visible", timeout=180_000)
    status = component.locator("#status")
    wait_for("the models", lambda: "ready" in status.inner_text(), timeout=300, poll=0.5)
    return next(f for f in page.frames if COMPONENT in f.url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--visitors", type=int, default=20, help="pages open at once")
    parser.add_argument("--streaming", type=int, default=3, help="of them, pages that stream")
    parser.add_argument("--seconds", type=float, default=20.0, help="each CPU window")
    parser.add_argument("--ttl", type=int, default=10, help="Streamlit's disconnectedSessionTTL")
    parser.add_argument("--rounds", type=int, default=3, help="crowds that come and go after")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="facemask-crowd-"))
    clip = people_clip(work / "faces.y4m", 3)
    options = ("--server.disconnectedSessionTTL", str(args.ttl))
    with start_app(work, None, options=options) as app:
        port = int(app.base.rsplit(":", 1)[1])
        with ByteCounter(port) as relay, shared_browser(work, clip) as visitor:
            pages, bytes_each = [], []
            empty = rss(app.pid)
            # The first visitor loads what every session shares (imports, the model card).
            page = visitor()
            frames = [visit(page, relay.url)]
            pages.append(page)
            bytes_each.append(sum(relay.reset()))
            time.sleep(3)
            before = rss(app.pid)
            print(
                f"server RSS at start {empty:.0f} MB, after the first visitor {before:.0f} MB "
                f"(load {load_average()})"
            )
            for _ in range(args.visitors - 1):
                page = visitor()
                frames.append(visit(page, relay.url))
                pages.append(page)
                bytes_each.append(sum(relay.reset()))
            time.sleep(3)
            crowd = rss(app.pid)
            idle_cpu = server_cpu(app.pid, args.seconds)
            print(
                f"{args.visitors} visitors idle: RSS {crowd:.0f} MB, server CPU {idle_cpu:.2f}% "
                f"(load {load_average()})",
                flush=True,
            )
            for frame, page in zip(frames[: args.streaming], pages, strict=False):
                page.frame_locator(BROWSER_IFRAME).get_by_role("button", name="Start").click()
                frame.wait_for_function("() => window.facemaskStats.frames > 5", timeout=180_000)
            relay.reset()
            streaming_cpu = server_cpu(app.pid, args.seconds)
            streamed = sum(relay.reset())
            fps = [f.evaluate("() => window.facemaskStats.fps") for f in frames[: args.streaming]]
            print(
                f"{args.streaming} streaming + {args.visitors - args.streaming} idle: server CPU "
                f"{streaming_cpu:.2f}%, {streamed} bytes over the wire in {args.seconds:.0f} s, "
                f"page FPS {[round(v, 1) for v in fps]} (load {load_average()})",
                flush=True,
            )
            for page in pages:
                page.context.close()
            time.sleep(args.ttl + 15)  # the app ends disconnected sessions after the TTL
            after = rss(app.pid)
            print(f"pages closed: RSS {after:.0f} MB", flush=True)
            # More crowds come and go: what one left behind must not add up.
            later = []
            for round_ in range(args.rounds):
                again = [visitor() for _ in range(args.visitors)]
                for page in again:
                    visit(page, relay.url)
                for page in again:
                    page.context.close()
                time.sleep(args.ttl + 15)
                later.append(rss(app.pid))
                print(f"crowd {round_ + 2} came and went: RSS {later[-1]:.0f} MB", flush=True)
        peak = process_memory_mb(app.pid)["peak_rss_mb"]

    first, rest = bytes_each[0], bytes_each[1:]
    per_visitor_mb = (crowd - before) / max(args.visitors - 1, 1)
    per_stream = max(streaming_cpu - idle_cpu, 0.0) / max(args.streaming, 1)
    print(f"\n{os.cpu_count()} CPUs, load {load_average()}")
    print("| figure | value | target |")
    print("|---|---|---|")
    print(f"| bytes, first visitor (empty cache) | {first / 1e6:.2f} MB | <= 4 MB |")
    print(
        f"| bytes, each other visitor (own empty cache) | {sum(rest) / len(rest) / 1e6:.2f} MB "
        f"(min {min(rest) / 1e6:.2f}, max {max(rest) / 1e6:.2f}) | <= 4 MB |"
    )
    later_text = " / ".join(f"{v:.0f}" for v in later)
    print(f"| server RSS: at start / after 1 visitor / with {args.visitors} / pages closed / "
          f"after each of {args.rounds} more crowds came and went | {empty:.0f} / {before:.0f} / "
          f"{crowd:.0f} / {after:.0f} / {later_text} MB (peak {peak:.0f}) | back down, "
          "no growth from crowd to crowd |")  # fmt: skip
    print(f"| server RSS growth per visitor | {per_visitor_mb:.1f} MB | <= 15 MB |")
    print(f"| server CPU, {args.visitors} idle visitors | {idle_cpu:.2f}% of a core | |")
    print(
        f"| server CPU per streaming visitor | {per_stream:.2f}% of a core over the idle crowd; "
        f"at most {streaming_cpu / max(args.streaming, 1):.2f}% ({streaming_cpu:.2f}% in all "
        f"with {args.streaming} streaming) | <= 0.5% |"
    )


if __name__ == "__main__":
    main()
