"""Cameras the operator names: RTSP (over TCP), HTTP(S) MJPEG, a video file played in a loop,
or a local device. Never a page visitor's URL: the server opens whatever it is given.

Each `Camera` runs one grabber thread that decodes the stream and keeps only the newest frame
(a reader slower than the stream would otherwise fall ever further behind FFmpeg's buffer). It
opens and reads with timeouts, reconnects with a doubling back-off, and passes every frame
through the gate (sizes from the header, then the decoded array) before anything else sees it.
URLs may carry passwords: whatever is logged or shown goes through `redact` first.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import av
import av.error
import cv2
import numpy as np

from facemask import gate
from facemask.errors import FacemaskError

log = logging.getLogger(__name__)

OPEN_TIMEOUT_S = 10.0
"""Seconds a camera may take to answer when it is opened."""
READ_TIMEOUT_S = 5.0
"""Seconds without data after which an open stream counts as lost (and is reopened)."""
BACKOFF_S = (0.5, 30.0)
"""The first wait before reopening a lost camera, and the longest (it doubles in between)."""
CAMERA_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
KINDS = ("rtsp", "http", "file", "device")
_DECODER_OPTIONS = {"max_pixels": str(gate.MAX_IMAGE_PIXELS)}
"""FFmpeg's own per-frame pixel cap, so a hostile JPEG header cannot make the decoder allocate."""

_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:@/\s'\"]*):[^\s'\"]*@")
"""user:PASSWORD@ up to the last '@' of the URL: a password with a raw '@' or '/' is hidden too."""
_QUERY_SECRET = re.compile(
    r"(?P<head>[?&;](?:password|passwd|pwd|pass|token|key|secret|auth)=)[^&;#\s]*", re.I
)


class CameraError(FacemaskError):
    """A camera that is misconfigured or cannot be read (one sentence, URL redacted)."""


def redact(text: str) -> str:
    """`text` with the password of every URL in it (user:PASSWORD@ and ?password=...) as ***."""
    text = _URL_PASSWORD.sub(r"\g<head>:***@", text)
    return _QUERY_SECRET.sub(r"\g<head>***", text)


@dataclass(frozen=True)
class CameraSpec:
    """One configured camera. Its repr and str never show a password."""

    name: str
    url: str
    kind: str

    def __repr__(self) -> str:
        return f"CameraSpec(name={self.name!r}, url={redact(self.url)!r}, kind={self.kind!r})"

    def __str__(self) -> str:
        return f"{self.name} ({redact(self.url)})"


def camera_spec(name: str, url: str, base: Path | None = None) -> CameraSpec:
    """A checked CameraSpec: a valid name and a URL of a kind this module reads.

    A relative file path is taken from `base` (the cameras file's folder) when given.
    """
    if not CAMERA_NAME.fullmatch(name):
        raise CameraError(
            f"The camera name {name!r} is not valid: use up to 64 letters, digits, '.', '_' "
            "or '-', starting with a letter or digit."
        )
    url = url.strip()
    if not url:
        raise CameraError(f"Camera {name} has no URL.")
    lowered = url.lower()
    if lowered.startswith(("rtsp://", "rtsps://")):
        return CameraSpec(name, url, "rtsp")
    if lowered.startswith(("http://", "https://")):
        return CameraSpec(name, url, "http")
    if url.isdigit() or re.fullmatch(r"/dev/video\d+", url):
        return CameraSpec(name, url if not url.isdigit() else f"/dev/video{url}", "device")
    if "://" in url:
        raise CameraError(
            f"Camera {name}: {redact(url)} is not an rtsp://, http(s)://, file or device camera."
        )
    path = Path(url).expanduser()
    if base is not None and not path.is_absolute():
        path = base / path
    if not path.is_file():
        raise CameraError(f"Camera {name}: there is no video file at {path}.")
    return CameraSpec(name, str(path), "file")


def parse_camera(text: str) -> CameraSpec:
    """A `--camera NAME=URL` argument."""
    name, sep, url = text.partition("=")
    if not sep:
        raise CameraError(f"{redact(text)!r} is not NAME=URL (e.g. entrance=rtsp://host/stream).")
    return camera_spec(name.strip(), url)


def load_cameras(path: str | Path) -> list[CameraSpec]:
    """The cameras of a TOML file: a `[cameras]` table of `NAME = "URL"` or `NAME = {url = ...}`."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CameraError(f"The cameras file {path} could not be read: {exc.strerror}.") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise CameraError(
            f"The cameras file {path} is not valid TOML: {redact(str(exc))}."
        ) from exc
    table = data.get("cameras")
    if not isinstance(table, dict) or not table:
        raise CameraError(f'The cameras file {path} has no [cameras] table (NAME = "URL" lines).')
    specs = []
    for name, value in table.items():
        url = value.get("url") if isinstance(value, dict) else value
        if not isinstance(url, str):
            raise CameraError(f"Camera {name} in {path} needs a URL string.")
        specs.append(camera_spec(name, url, base=path.parent))
    return specs


def configured_cameras(
    args: Iterable[str] = (), file: str | Path | None = None
) -> list[CameraSpec]:
    """The cameras of a TOML file plus `NAME=URL` arguments; names must be unique."""
    specs = (load_cameras(file) if file else []) + [parse_camera(a) for a in args]
    names = [s.name for s in specs]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise CameraError(f"Camera names must be unique; given twice: {', '.join(twice)}.")
    return specs


@dataclass(frozen=True)
class Frame:
    """A decoded, gated frame: RGB uint8 (H, W, 3), its sequence number and arrival time."""

    seq: int
    rgb: np.ndarray
    captured: float  # time.time() when the grabber decoded it


@dataclass(frozen=True)
class CameraStatus:
    """What a camera is doing now. `detail` is one redacted sentence when something is wrong."""

    state: str = "connecting"  # connecting | online | offline | stopped
    detail: str = ""
    since: float = field(default_factory=time.time)
    frames: int = 0  # frames decoded and accepted
    rejected: int = 0  # frames or packets refused by the gate or the decoder
    reconnects: int = 0
    last_frame: float = 0.0  # time.time() of the newest frame


StatusCallback = Callable[[str, CameraStatus], None]
"""on_status(camera name, new status): called from the grabber thread on each state change."""


class Camera:
    """A grabber thread for one camera; `read()` returns its newest frame, never a backlog."""

    def __init__(
        self,
        spec: CameraSpec,
        *,
        open_timeout: float = OPEN_TIMEOUT_S,
        read_timeout: float = READ_TIMEOUT_S,
        backoff: tuple[float, float] = BACKOFF_S,
        on_status: StatusCallback | None = None,
    ) -> None:
        self.spec = spec
        self.open_timeout, self.read_timeout = open_timeout, read_timeout
        self.backoff = backoff
        self._on_status = on_status
        self._status = CameraStatus()
        self._status_lock = threading.Lock()
        self._latest = None  # (seq, captured, av.VideoFrame): the only frame held
        self._seq = 0
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"camera-{spec.name}", daemon=True)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def status(self) -> CameraStatus:
        return self._status

    def start(self) -> Camera:
        self._thread.start()
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Ask the grabber to end and wait for it (a blocked read ends within read_timeout)."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout if timeout is not None else self.read_timeout + 2)
        self._set_status(state="stopped", detail="")

    def read(self, after: int = 0, timeout: float = 1.0) -> Frame | None:
        """The newest frame with seq > after, waiting up to timeout; None if none came."""
        with self._cond:
            ready = self._cond.wait_for(
                lambda: self._stop.is_set() or (self._latest and self._latest[0] > after),
                timeout,
            )
            if not ready or self._latest is None or self._latest[0] <= after:
                return None
            seq, captured, frame = self._latest
        try:  # the header's size was gated in the grabber; the array is gated again here
            rgb = gate.check_frame(_frame_rgb(frame), f"A frame of camera {self.name}", CameraError)
        except (CameraError, av.error.FFmpegError, ValueError) as exc:
            self._count_rejected(redact(str(exc)))
            return None
        return Frame(seq, rgb, captured)

    # -- the grabber thread ---------------------------------------------------------------
    def _run(self) -> None:
        delay = self.backoff[0]
        while not self._stop.is_set():
            device = self.spec.kind == "device"
            try:
                source = self._open_device() if device else self._open()
            except CameraError as exc:
                self._set_status(state="offline", detail=str(exc))
            else:
                try:
                    got_frames = self._pump_device(source) if device else self._pump(source)
                finally:
                    source.release() if device else source.close()
                if got_frames:
                    delay = self.backoff[0]
            if self._stop.wait(delay):
                break
            delay = min(delay * 2, self.backoff[1])
            self._set_status(count="reconnects")

    def _open(self):
        spec, started = self.spec, time.monotonic()
        options = dict(_DECODER_OPTIONS)
        timeout: tuple[float, float] | None = (self.open_timeout, self.read_timeout)
        if spec.kind == "file":
            timeout = None
            try:
                with open(spec.url, "rb") as handle:
                    fmt = gate.sniff_video(handle.read(16), f"Camera {spec.name}'s file")
            except OSError as exc:
                raise CameraError(f"Camera {spec.name}'s file could not be read: {exc}.") from exc
            except FacemaskError as exc:
                raise CameraError(str(exc)) from exc
        elif spec.kind == "rtsp":
            fmt = "rtsp"
            options["rtsp_transport"] = "tcp"
        else:
            fmt = "mpjpeg"
        try:
            container = av.open(spec.url, "r", format=fmt, options=options, timeout=timeout)
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            raise CameraError(self._failure("could not be opened", exc, started)) from exc
        try:
            if not container.streams.video:
                raise CameraError(f"Camera {spec.name} sends no video stream.")
            gate.check_video_stream(container.streams.video[0], f"Camera {spec.name}")
        except FacemaskError as exc:
            container.close()
            raise CameraError(redact(str(exc))) from exc
        return container

    def _failure(self, what: str, exc: Exception, started: float) -> str:
        """One redacted sentence for a failed open or read; a timeout says so plainly."""
        waited = time.monotonic() - started
        limit = self.open_timeout if "opened" in what else self.read_timeout
        if self.spec.kind != "file" and waited >= limit * 0.9:
            return f"Camera {self.name} sent nothing for {limit:g} s ({what})."
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        return redact(f"Camera {self.name} {what}: {reason.rstrip('.')}.")

    def _pump(self, container) -> bool:
        """Demux and decode until the stream ends, fails or stop; True if a frame came.

        A file is played again from its start when it ends, at its own frame rate.
        """
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        got, started = False, time.monotonic()
        while True:
            clock = None
            try:
                for packet in container.demux(stream):
                    if self._stop.is_set():
                        return got
                    for frame in self._decode(packet):
                        if self.spec.kind == "file" and frame.time is not None:
                            clock = clock if clock is not None else time.monotonic() - frame.time
                            if self._stop.wait(max(0.0, clock + frame.time - time.monotonic())):
                                return got
                        if self._offer(frame):
                            got, started = True, time.monotonic()
                if self.spec.kind != "file" or not got:
                    break
                container.seek(0)
                stream.codec_context.flush_buffers()
            except (av.error.FFmpegError, OSError, ValueError) as exc:
                detail = self._failure("stopped sending", exc, started)
                self._set_status(state="offline", detail=detail)
                return got
        self._set_status(state="offline", detail=f"Camera {self.name} ended its stream.")
        return got

    def _open_device(self):
        """A local camera through OpenCV's V4L2 backend (PyAV's FFmpeg has no v4l2 input)."""
        index = int(self.spec.url.removeprefix("/dev/video"))
        timeouts = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(self.open_timeout * 1000),
                    cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(self.read_timeout * 1000)]  # fmt: skip
        capture = cv2.VideoCapture(index, cv2.CAP_V4L2, timeouts)
        if not capture.isOpened():
            capture.release()
            raise CameraError(
                f"Camera {self.name}: the device {self.spec.url} could not be opened."
            )
        return capture

    def _pump_device(self, capture) -> bool:
        """Read a device until it fails or stop; True if a frame came."""
        got = False
        while not self._stop.is_set():
            ok, bgr = capture.read()
            if not ok or bgr is None:
                self._set_status(state="offline", detail=f"Camera {self.name} stopped sending.")
                return got
            if bgr.ndim == 3 and bgr.shape[2] == 3:  # numpy only: no native library before the gate
                got = self._offer(np.ascontiguousarray(bgr[..., ::-1])) or got
            else:
                self._count_rejected(f"Camera {self.name} sent a frame that is not colour.")
        return got

    def _decode(self, packet) -> list:
        """A packet's frames; a packet the decoder refuses is counted and skipped."""
        try:
            return packet.decode()
        except (av.error.FFmpegError, ValueError) as exc:
            self._count_rejected(redact(f"Camera {self.name} sent a bad frame: {exc}."))
            return []

    def _offer(self, frame) -> bool:
        """Gate a decoded frame's size (a PyAV frame, or an RGB array from a device); keep it
        as the newest frame if it passes."""
        array = isinstance(frame, np.ndarray)
        width, height = (frame.shape[1], frame.shape[0]) if array else (frame.width, frame.height)
        try:
            gate.check_size(
                width, height, f"A frame of camera {self.name}", CameraError,
                max_side=gate.MAX_VIDEO_FRAME_SIDE,
            )  # fmt: skip
        except CameraError as exc:
            self._count_rejected(str(exc))
            return False
        now = time.time()
        with self._cond:
            self._seq += 1
            self._latest = (self._seq, now, frame)
            self._cond.notify_all()
        self._set_status(count="frames", state="online", last_frame=now)
        return True

    def _count_rejected(self, detail: str) -> None:
        self._set_status(count="rejected", detail=detail)

    def _set_status(self, count: str | None = None, **changes) -> None:
        """Change the status and add one to the `count` counter (the grabber and readers both
        do: one lock, so no change is lost); report state changes."""
        with self._status_lock:
            old = self._status
            if count is not None:
                changes[count] = getattr(old, count) + 1
            if "state" in changes and changes["state"] != old.state:
                changes["since"] = time.time()
                if changes["state"] == "online":
                    changes.setdefault("detail", "")
            self._status = new = replace(old, **changes)
        if new.state == old.state:
            return
        if new.state == "offline":
            log.warning("%s", new.detail)
        if self._on_status is not None:
            self._on_status(self.name, new)


def _frame_rgb(frame) -> np.ndarray:
    """A decoded frame as RGB uint8 (FFmpeg's converter: the decoder's own library)."""
    return frame if isinstance(frame, np.ndarray) else frame.to_ndarray(format="rgb24")
