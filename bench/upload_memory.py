"""Server memory of one session uploading big photos, and how soon it is released.

    .venv/bin/python bench/upload_memory.py                  # 20 photos of about 17 MB
    .venv/bin/python bench/upload_memory.py --photos 5 --mb 8 --after 60

A fresh `streamlit run app.py` serves the shipped default model. A first headless Chromium
session warms it up (models loaded, one small photo analysed) and leaves; the server's resident
memory (RSS) then is the baseline. A second session uploads `--photos` JPEGs of about `--mb` MB
each (a real face photo scaled up to 5600 x 4200 px with grain, so each file is that big and
different) and waits until every photo is analysed; RSS is sampled all along (peak). The browser
then closes, and RSS is read every few seconds for `--after` seconds.
The target (issue 18): the session raises RSS by at most 1 GB, released within a minute.
Not a test: the numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import io
import re
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from harness.browser import browsers, process_memory_mb, start_app  # noqa: E402

SHIPPED_MODEL = REPO / "models" / "mobilenetv2"

PHOTO = REPO / "tests" / "data" / "faces" / "astronaut.jpg"
SIZE = (5600, 4200)
TARGET_GROWTH_MB = 1024
RELEASED_MB = 200
"""RSS within this much of the baseline counts as released."""


def big_photos(folder: Path, count: int, megabytes: float) -> list[Path]:
    """`count` different JPEGs of about `megabytes` MB: the face photo scaled up, with grain."""
    base = np.asarray(Image.open(PHOTO).convert("RGB").resize(SIZE, Image.BICUBIC), np.int16)
    rng = np.random.default_rng(0)
    grain, paths = 24, []
    for i in range(count):
        while True:
            noisy = base + rng.integers(-grain, grain + 1, size=base.shape, dtype=np.int16)
            buffer = io.BytesIO()
            Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(
                buffer, "JPEG", quality=92
            )
            size_mb = len(buffer.getvalue()) / 2**20
            if i or abs(size_mb - megabytes) < 0.5 or not 2 <= grain <= 120:
                break
            grain = max(grain + 1, round(grain * (megabytes / size_mb) ** 1.5))  # tune it
            if size_mb > megabytes:
                grain = min(grain - 2, round(grain * (megabytes / size_mb) ** 1.5))
        paths.append(folder / f"big-{i:02d}.jpg")
        paths[-1].write_bytes(buffer.getvalue())
    return paths


class Sampler:
    """RSS of a process every `period` seconds, on a thread; `peak()` since the last reset."""

    def __init__(self, pid: int, period: float = 0.25) -> None:
        self.pid, self.period, self._peak = pid, period, 0.0
        self.samples: list[tuple[float, float]] = []  # (monotonic time, RSS MB)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            rss = self.rss()
            self.samples.append((time.monotonic(), rss))
            self._peak = max(self._peak, rss)
            time.sleep(self.period)

    def rss(self) -> float:
        return process_memory_mb(self.pid)["rss_mb"]

    def peak(self) -> float:
        return max(self._peak, self.rss())

    def reset(self) -> None:
        self._peak = 0.0

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def upload(page, base: str, photos: list[Path], timeout_s: float) -> None:
    page.goto(base, wait_until="domcontentloaded")
    page.get_by_role("link", name="Upload", exact=True).first.click()
    page.get_by_role("heading", name="Upload photos or a video").first.wait_for(timeout=90_000)
    page.locator('input[type="file"][accept*=".png"]').first.set_input_files(photos)
    summary = page.get_by_text(re.compile(rf"face\(s\) in {len(photos)} image\(s\)"))
    summary.wait_for(timeout=timeout_s * 1000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photos", type=int, default=20, help="photos in the session")
    parser.add_argument("--mb", type=float, default=17.0, help="size of each photo (MB)")
    parser.add_argument("--after", type=int, default=90, help="seconds watched after it ends")
    parser.add_argument("--trace", action="store_true", help="print RSS every 2 s of the session")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="facemask-bench-") as tmp:
        tmp_path = Path(tmp)
        photos = big_photos(tmp_path, args.photos, args.mb)
        sizes = [p.stat().st_size / 2**20 for p in photos]
        print(f"{len(photos)} photos, {min(sizes):.1f}-{max(sizes):.1f} MB, {SIZE[0]}x{SIZE[1]} px")
        with start_app(tmp_path / "app", SHIPPED_MODEL) as app, browsers(tmp_path) as launch:
            sampler = Sampler(app.pid)
            warm = launch(None)
            upload(warm, app.base, [PHOTO], 300)
            warm.context.close()
            time.sleep(20)  # the warm-up session ends and is cleaned up
            baseline = sampler.rss()
            sampler.reset()
            page = launch(None)
            started = time.monotonic()
            upload(page, app.base, photos, 3600)
            analysed_s = time.monotonic() - started
            during, after_analysis = sampler.peak(), sampler.rss()
            trace_during = [(t - started, rss) for t, rss in sampler.samples if t >= started]
            page.context.close()
            closed = time.monotonic()
            released_s, trace = None, []
            while time.monotonic() - closed < args.after:
                time.sleep(5)
                rss = sampler.rss()
                trace.append((time.monotonic() - closed, rss))
                if released_s is None and rss - baseline <= RELEASED_MB:
                    released_s = time.monotonic() - closed
            sampler.stop()
    print(f"analysed in {analysed_s:.0f} s")
    if args.trace:
        shown = -2.0
        for seconds, rss in trace_during:
            if seconds - shown >= 2:
                print(f"  {seconds:5.1f} s into the session: {rss:.0f} MB")
                shown = seconds
    print(f"{'server RSS':<40} {'MB':>8}")
    print(f"{'baseline (models loaded, warmed up)':<40} {baseline:>8.0f}")
    print(f"{'peak during the session':<40} {during:>8.0f}  (+{during - baseline:.0f})")
    print(f"{'all photos analysed':<40} {after_analysis:>8.0f}  (+{after_analysis - baseline:.0f})")
    for seconds, rss in trace:
        label = f"{seconds:.0f} s after the session closed"
        print(f"{label:<40} {rss:>8.0f}  (+{rss - baseline:.0f})")
    growth_ok = during - baseline <= TARGET_GROWTH_MB
    released = f"{released_s:.0f} s" if released_s is not None else f"not within {args.after} s"
    print(f"growth {during - baseline:.0f} MB (target <= {TARGET_GROWTH_MB}): "
          f"{'met' if growth_ok else 'MISSED'}; released (within {RELEASED_MB} MB of the "
          f"baseline) after {released}: "
          f"{'met' if released_s is not None and released_s <= 60 else 'MISSED'}")  # fmt: skip


if __name__ == "__main__":
    main()
