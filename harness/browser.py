"""The app and headless Chromium for tests and benchmarks (see harness/__init__.py).

- `start_app`: `streamlit run serve.py` on a free port, serving a copy of a model, in test mode
  (loopback-only WebRTC, a status file the server writes after each processed frame).
- `browsers`: Debian's chromium driven by Playwright; its fake camera plays a .y4m clip
  (`write_y4m`, `camera_picture`), or the camera is refused.
- `ByteCounter`: a TCP proxy between browser and server that counts what goes over the wire.
- `cpu_seconds`, `process_memory_mb`: a process's CPU time and resident memory (Linux /proc).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import cv2
import numpy as np

from harness import free_port

REPO = Path(__file__).resolve().parents[1]
FRAME_SIZE = (640, 480)
FACES_DIR = REPO / "tests" / "data" / "faces"
CAMERA_PHOTOS = ("with_mask_00002.jpg", "without_mask_00599.jpg")
"""Two people from tests/data/faces, side by side in front of the fake camera."""
THIRD_PERSON = "without_mask_00001.jpg"
"""Who joins them for a three-face clip (the benches)."""
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/lib/chromium/chromium")
BROWSER_IFRAME = 'iframe[title="browser_live.browser_live"]'
WEBRTC_IFRAME = 'iframe[title="streamlit_webrtc.component.webrtc_streamer"]'

# Chromium honours only its last --disable-features switch: Playwright's own list (1.56,
# chromiumSwitches.js) plus WebRtcHideLocalIpsWithMdns, so ICE offers 127.0.0.1 itself and
# opens no mDNS socket.
DISABLED_FEATURES = (
    "AcceptCHFrame,AvoidUnnecessaryBeforeUnloadCheckSync,DestroyProfileOnBrowserClose,"
    "DialMediaRouteProvider,GlobalMediaControls,HttpsUpgrades,LensOverlay,MediaRouter,"
    "PaintHolding,ThirdPartyStoragePartitioning,Translate,AutoDeElevate,RenderDocument,"
    "WebRtcHideLocalIpsWithMdns"
)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-default-apps",
    "--disable-extensions",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--allow-loopback-in-peer-connection",
    f"--disable-features={DISABLED_FEATURES}",
]


class BrowserMissing(RuntimeError):
    """Debian's chromium (or Playwright) is not installed."""


def chromium() -> str:
    """The chromium executable; BrowserMissing when there is none."""
    for path in CHROMIUM_CANDIDATES:
        if os.access(path, os.X_OK):
            return path
    raise BrowserMissing(
        "Debian's chromium is not installed (scripts/install-browser.sh installs it)"
    )


def wait_for(what: str, check: Callable[[], Any], timeout: float, poll: float = 0.25) -> Any:
    """Poll `check` until it returns something truthy; AssertionError naming `what` after
    `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(poll)


def read_status(path: Path) -> dict:
    """The server's test status file (facemask.live), or {} while there is none."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def tail(path: Path, lines: int = 60) -> str:
    """The last lines of a log file."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no server log)"


def camera_picture(photos: list[np.ndarray]) -> np.ndarray:
    """A 640x480 RGB picture with the photos side by side on gray, like people at a webcam."""
    width, height = FRAME_SIZE
    canvas = np.full((height, width, 3), 110, dtype=np.uint8)
    slot = width // len(photos)
    for i, rgb in enumerate(photos):
        scale = min(0.9 * height / rgb.shape[0], 0.9 * slot / rgb.shape[1])
        size = (round(rgb.shape[1] * scale), round(rgb.shape[0] * scale))
        face = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        y, x = (height - face.shape[0]) // 2, i * slot + (slot - face.shape[1]) // 2
        canvas[y : y + face.shape[0], x : x + face.shape[1]] = face
    return canvas


def write_y4m(path: Path, rgb: np.ndarray, frames: int = 30) -> None:
    """A YUV4MPEG2 clip of one picture at 30 fps for Chromium's fake camera (no ffmpeg needed)."""
    height, width = rgb.shape[:2]
    i420 = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420).tobytes()
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F30:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            out.write(b"FRAME\n" + i420)


def people_clip(path: Path, people: int, frames: int = 60) -> Path:
    """A y4m clip of 1 to 3 people from tests/data/faces side by side (see camera_picture)."""
    from facemask.images import load_image

    names = [*CAMERA_PHOTOS, THIRD_PERSON][:people]
    write_y4m(path, camera_picture([load_image(FACES_DIR / name) for name in names]), frames)
    return path


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, for figures measured on a shared machine."""
    return " ".join(f"{v:.1f}" for v in os.getloadavg())


class App(NamedTuple):
    """A running app server: its URL, status file, log file and process id."""

    base: str
    status: Path
    log: Path
    pid: int


@contextmanager
def start_app(
    work: Path,
    model_dir: Path | None = None,
    entry: str = "serve.py",
    root: Path = REPO,
    options: tuple[str, ...] = (),
    address: str = "127.0.0.1",
    **env_vars: str,
) -> Iterator[App]:
    """`streamlit run <entry>` in `root` (this repository, or another checkout to compare with)
    on a free port in test mode (loopback-only WebRTC, the status file), serving a copy of
    `model_dir` (root's models/ when None); `options` add to its command line (e.g.
    "--server.disconnectedSessionTTL", "5") and `env_vars` to its environment. `address` is
    where it listens (0.0.0.0: as if reachable from a network); it is reached on 127.0.0.1
    either way. Stopped (terminate, then kill) on exit."""
    env = {
        **os.environ,
        "FACEMASK_RUNS_DIR": str(work / "runs"),
        "FACEMASK_WEBRTC_LOOPBACK_ONLY": "1",
        "FACEMASK_TEST_STATUS_FILE": str(work / "live-status.json"),
        "FACEMASK_ICE_SERVERS": "",
        "FACEMASK_ICE_SERVERS_FILE": "",
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": str(root),
        **env_vars,
    }
    if model_dir is not None:
        shutil.copytree(model_dir, work / "models" / model_dir.name)
        env["FACEMASK_MODELS_DIR"] = str(work / "models")
    log_path = work / "streamlit.log"
    port = free_port()
    command = [sys.executable, "-m", "streamlit", "run", entry, "--server.port", str(port)]
    command += ["--server.headless", "true", "--server.address", address]
    command += ["--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]
    command += list(options)
    with log_path.open("wb") as log:
        server = subprocess.Popen(command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        if server.poll() is not None:
            raise AssertionError(f"streamlit exited early:\n{tail(log_path)}")
        try:
            with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    try:
        wait_for("the Streamlit server's health check", healthy, timeout=90, poll=0.5)
        yield App(base, work / "live-status.json", log_path, server.pid)
    finally:
        print(f"--- streamlit log (last lines) ---\n{tail(log_path, 80)}")  # shown on failure
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)


@contextmanager
def browsers(work: Path) -> Iterator[Callable[..., Any]]:
    """Headless Chromium: `launch(clip)` gives a page whose camera plays that y4m clip;
    `launch(None)` a page whose camera permission is refused. Each call is its own browser
    (own profile and cache)."""
    executable = chromium()
    try:
        from playwright import sync_api
    except ImportError as exc:
        raise BrowserMissing("Playwright is not installed (requirements-dev.txt)") from exc

    home = work / "browser-home"
    for sub in ("config", "cache", "data"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_CACHE_HOME": str(home / "cache"),
        "XDG_DATA_HOME": str(home / "data"),
    }
    contexts = []
    with sync_api.sync_playwright() as playwright:

        def launch(clip: Path | None):
            args = [*CHROMIUM_ARGS]
            if clip is None:  # no auto-accepting permission prompt: headless Chromium refuses
                args.remove("--use-fake-ui-for-media-stream")
            else:
                args.append(f"--use-file-for-fake-video-capture={clip}")
            context = playwright.chromium.launch_persistent_context(
                str(work / f"profile-{len(contexts)}-{os.getpid()}"),
                executable_path=executable,
                headless=True,
                args=args,
                env=env,
                viewport={"width": 1400, "height": 900},
            )
            contexts.append(context)
            context.set_default_timeout(60_000)
            return context.pages[0] if context.pages else context.new_page()

        try:
            yield launch
        finally:
            for context in contexts:
                context.close()


@contextmanager
def shared_browser(work: Path, clip: Path | None) -> Iterator[Callable[[], Any]]:
    """One headless Chromium for many visitors: `visitor()` opens a page in a context of its
    own (its own cache and cookies, as another person's browser), the camera playing `clip`."""
    executable = chromium()
    from playwright import sync_api

    args = [*CHROMIUM_ARGS]
    if clip is not None:
        args.append(f"--use-file-for-fake-video-capture={clip}")
    home = work / "browser-home"
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home)}
    env["XDG_CACHE_HOME"] = str(home)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, headless=True, args=args, env=env
        )

        def visitor():
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            context.set_default_timeout(120_000)
            return context.new_page()

        try:
            yield visitor
        finally:
            browser.close()


def process_memory_mb(pid: int) -> dict[str, float]:
    """Current and peak resident memory of a process in MB (Linux /proc): rss_mb, peak_rss_mb."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0]) / 1024  # kB -> MB
    return {"rss_mb": fields["VmRSS"], "peak_rss_mb": fields["VmHWM"]}


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


_REQUEST_LINE = re.compile(rb"(?:^|\r\n\r\n)GET (\S+) HTTP/1\.1\r\n")
"""A GET's request line: at the start of a read or right after the previous request (a GET
has no body)."""


class ByteCounter:
    """A TCP relay on 127.0.0.1 in front of the app that counts the bytes it passes from the
    server to the browser (`down`) and back (`up`): what a visit costs over the wire, headers,
    WebSocket frames and all. The browser opens `url` instead of the app's own address (every
    URL the app uses is relative, so all of a visit goes through the relay)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.down = 0
        self.up = 0
        self.requests: list[str] = []
        """The path of every GET the browser sent through the relay, in order."""
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reset(self) -> tuple[int, int]:
        """(down, up) so far; both start again from 0, and `requests` empty."""
        counts = (self.down, self.up)
        self.down = self.up = 0
        self.requests = []
        return counts

    def __enter__(self) -> ByteCounter:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._relay, "127.0.0.1", self.port)
        )
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()
            tasks = asyncio.all_tasks(self._loop)
            for task in tasks:
                task.cancel()
            self._loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            self._loop.close()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(
                "127.0.0.1", self.target_port
            )
        except OSError:
            writer.close()
            return

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter, down: bool) -> None:
            try:
                while data := await src.read(65536):
                    if down:
                        self.down += len(data)
                    else:
                        self.up += len(data)
                        self.requests += [m.decode() for m in _REQUEST_LINE.findall(data)]
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()

        await asyncio.gather(
            pump(reader, upstream_writer, down=False), pump(upstream_reader, writer, down=True)
        )
