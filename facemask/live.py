"""Live webcam frames: detect, classify, smooth and annotate, without ever holding the video up.

`LiveProcessor.process` is streamlit-webrtc's `video_frame_callback` for one browser session.
With `async_processing=True` the library runs it on a worker thread and, while it is busy,
collects the frames that arrive; on the next call it hands over only the newest one and drops
the rest (streamlit_webrtc.process.AsyncMediaProcessTrack + CallbackAttachableProcessor), and it
keeps sending the last output frame meanwhile. So latency cannot grow there. The processor
adds its own guard for any other caller: a frame that arrives while another is being processed
is not queued; it is answered at once with the last annotated picture.

Several browsers share one server: `SessionSlots` admits at most `max_sessions_from_env()`
streaming sessions per process (measured: docs/measurements.md); a session beyond it is
refused before it starts and told to use the in-browser page.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

import av
import numpy as np

from facemask.errors import FacemaskError
from facemask.files import write_json
from facemask.pipeline import (
    Detection,
    FaceTracker,
    FrameTimer,
    Pipeline,
    annotate,
)

log = logging.getLogger(__name__)

HISTORY_SIZE = 1800
"""Frame records kept per session for the chart: a minute at 30 fps."""

STATUS_FILE_ENV = "FACEMASK_TEST_STATUS_FILE"
"""When set, every session writes its frame counters there as JSON (the browser test reads it)."""
MAX_SESSIONS_ENV = "FACEMASK_LIVE_MAX_SESSIONS"
"""How many sessions may stream through the server at once (an integer >= 0)."""
DEFAULT_MAX_SESSIONS = 4
"""The capacity bench/live_load.py finds on a 2-core machine: up to it every session keeps a
usable frame rate; beyond it all of them slow down, so one more is turned away instead."""
SLOT_IDLE_S = 5.0
"""A session that sent no frame for this long gives its slot up (a closed tab sends no Stop)."""


class FrameRecord(NamedTuple):
    """What one processed frame showed: the chart's data point."""

    time: float  # wall clock, seconds since the epoch
    counts: tuple[tuple[str, int], ...]  # (label, faces with that label), in the model's order
    latency_ms: float

    @property
    def faces(self) -> int:
        return sum(n for _, n in self.counts)

    def count(self, label: str) -> int:
        return dict(self.counts).get(label, 0)


class LiveStats(NamedTuple):
    """Counters since the session's processor was made."""

    processed: int  # frames that went through the pipeline
    skipped: int  # frames answered with the last picture because one was in flight
    failed: int  # frames the pipeline raised on (shown unannotated)
    fps: float
    latency_ms: float  # median over the last frames
    last_error: str | None


class SessionSlots:
    """At most `capacity` live sessions stream at once; the others are refused, not slowed down.

    A session holds its slot from `claim` until `release` or until it has been idle (no
    `claim`) for `idle_s` seconds. Thread-safe: frames claim from worker threads, pages check
    from script threads.
    """

    def __init__(self, capacity: int, idle_s: float = SLOT_IDLE_S) -> None:
        self.capacity = capacity
        self._idle_s = idle_s
        self._lock = threading.Lock()
        self._last_seen: dict[int, float] = {}  # session id -> monotonic time of its last claim

    def _expire(self, now: float) -> None:
        for owner, seen in list(self._last_seen.items()):
            if now - seen > self._idle_s:
                del self._last_seen[owner]

    def _refuses(self, owner: int | None) -> bool:
        """Under the lock, idle slots expired: `owner` holds none and none is free."""
        return owner not in self._last_seen and len(self._last_seen) >= self.capacity

    def claim(self, owner: int) -> bool:
        """Take (or keep) a slot for `owner`; False when all slots are held by others."""
        now = time.monotonic()
        with self._lock:
            self._expire(now)
            if self._refuses(owner):
                return False
            self._last_seen[owner] = now
            return True

    def release(self, owner: int) -> None:
        with self._lock:
            self._last_seen.pop(owner, None)

    def holds(self, owner: int) -> bool:
        with self._lock:
            self._expire(time.monotonic())
            return owner in self._last_seen

    def full(self, owner: int | None = None) -> bool:
        """Whether a new session (or `owner`, if it holds no slot) would be refused now."""
        with self._lock:
            self._expire(time.monotonic())
            return self._refuses(owner)

    def in_use(self) -> int:
        with self._lock:
            self._expire(time.monotonic())
            return len(self._last_seen)


def max_sessions_from_env(environ: Mapping[str, str] = os.environ) -> int:
    """The live session capacity: FACEMASK_LIVE_MAX_SESSIONS, else DEFAULT_MAX_SESSIONS.

    Raises FacemaskError when the setting is not a whole number >= 0.
    """
    text = environ.get(MAX_SESSIONS_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_SESSIONS
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise FacemaskError(f"{MAX_SESSIONS_ENV} must be a whole number >= 0, not {text!r}.")
    return value


_session_ids = itertools.count(1)
_status_lock = threading.Lock()
_status_by_file: dict[Path, dict[int, dict[str, Any]]] = {}


class LiveProcessor:
    """The per-session frame callback: a shared Pipeline plus this session's tracker and timer.

    `process` runs on streamlit-webrtc's worker thread; `history()` and `stats()` are read by
    the page's script thread. Both sides meet only under `_state_lock`.
    """

    def __init__(
        self,
        pipeline: Pipeline,
        *,
        history_size: int = HISTORY_SIZE,
        status_file: str | os.PathLike | None = None,
        slots: SessionSlots | None = None,
    ) -> None:
        self.session_id = next(_session_ids)
        self._slots = slots
        self._pipeline = pipeline
        self._tracker = FaceTracker()
        self._timer = FrameTimer()
        self._busy = threading.Lock()  # held while a frame is in the pipeline
        self._state_lock = threading.Lock()  # guards everything below
        self._history: deque[FrameRecord] = deque(maxlen=history_size)
        self._last_rgb: np.ndarray | None = None
        self._processed = self._skipped = self._failed = self._refused = 0
        self._fps = self._latency = 0.0
        self._last_error: str | None = None
        self._status_file = Path(status_file) if status_file else None
        warm_up(pipeline)

    @property
    def pipeline(self) -> Pipeline:
        return self._pipeline

    def set_pipeline(self, pipeline: Pipeline) -> None:
        """Serve another model or detector from the next frame on (the chart history stays)."""
        if pipeline is self._pipeline:
            return
        warm_up(pipeline)
        with self._busy:  # NOTE: waits for the frame in flight, so no frame mixes two models
            self._pipeline = pipeline
            self._tracker = FaceTracker()

    def process(self, frame: av.VideoFrame) -> av.VideoFrame:
        """Annotate one frame; answer at once with the last picture if another is in flight.

        When the server is full (no slot for this session) the frame goes back untouched and is
        counted as refused; the page then says so.
        """
        if self._slots is not None and not self._slots.claim(self.session_id):
            with self._state_lock:
                self._refused += 1
            return frame
        if not self._busy.acquire(blocking=False):
            return self._repeat_last(frame)
        try:
            return self._process(frame)
        finally:
            self._busy.release()

    def _process(self, frame: av.VideoFrame) -> av.VideoFrame:
        start = time.perf_counter()
        rgb = frame.to_ndarray(format="rgb24")
        try:
            detections = self._pipeline.process(rgb, self._tracker)
        except Exception as exc:  # a broken frame or model must not kill the stream
            log.exception("live frame failed")
            message = (
                str(exc) if isinstance(exc, FacemaskError) else "A frame could not be processed."
            )
            with self._state_lock:
                self._failed += 1
                self._last_error = message
            return frame
        latency = (time.perf_counter() - start) * 1000.0
        fps, median_latency = self._timer.tick(latency)
        overlay = [f"{fps:4.1f} FPS", f"{median_latency:3.0f} ms/frame"]
        out = annotate(rgb, detections, overlay, legend=self._pipeline.labels)
        record = FrameRecord(time.time(), _counts(detections, self._pipeline.labels), latency)
        with self._state_lock:
            self._history.append(record)
            self._last_rgb = out
            self._processed += 1
            self._fps, self._latency = fps, median_latency
            self._last_error = None
        if self._status_file is not None:
            self._write_status()
        return av.VideoFrame.from_ndarray(out, format="rgb24")

    def _repeat_last(self, frame: av.VideoFrame) -> av.VideoFrame:
        with self._state_lock:
            self._skipped += 1
            last = self._last_rgb
        if last is None or last.shape[:2] != (frame.height, frame.width):
            return frame  # nothing to repeat yet (or the camera changed size): pass it through
        return av.VideoFrame.from_ndarray(last, format="rgb24")

    @property
    def refused(self) -> int:
        """Frames turned away because every slot was held by other sessions."""
        with self._state_lock:
            return self._refused

    def release_slot(self) -> None:
        """Give this session's slot up (the page calls it when the stream has stopped)."""
        if self._slots is not None:
            self._slots.release(self.session_id)

    def history(self, since: float | None = None) -> list[FrameRecord]:
        """The recorded frames (oldest first), optionally only those after `since`."""
        with self._state_lock:
            records = list(self._history)
        if since is not None:
            records = [r for r in records if r.time > since]
        return records

    def stats(self) -> LiveStats:
        with self._state_lock:
            return LiveStats(
                self._processed,
                self._skipped,
                self._failed,
                self._fps,
                self._latency,
                self._last_error,
            )

    def _write_status(self) -> None:
        """Write this session's counters into the status file, next to the other sessions'.

        Top level: frames processed and failed by all sessions, the time, face counts and size
        of the latest frame; "sessions": each session's own counters by session id.
        """
        stats = self.stats()
        last = self.history()[-1:]
        entry = {
            "processed": stats.processed,
            "skipped": stats.skipped,
            "failed": stats.failed,
            "fps": round(stats.fps, 2),
            "latency_ms": round(stats.latency_ms, 2),
            "time": time.time(),
            "counts": dict(last[0].counts) if last else {},
            "size": list(self._last_rgb.shape[1::-1]) if self._last_rgb is not None else None,
        }
        path = self._status_file
        assert path is not None
        with _status_lock:  # NOTE: sessions write from their own worker threads
            sessions = _status_by_file.setdefault(path, {})
            sessions[self.session_id] = entry
            status = {
                **entry,
                "processed": sum(e["processed"] for e in sessions.values()),
                "failed": sum(e["failed"] for e in sessions.values()),
                "sessions": {str(k): v for k, v in sessions.items()},
            }
            try:
                write_json(path, status)
            except OSError:
                log.warning("could not write the status file %s", path, exc_info=True)


def warm_up(pipeline: Pipeline, size: tuple[int, int] = (640, 480)) -> None:
    """Run the detector and the classifier once, so the first live frame is not the slow one.

    streamlit-webrtc gives up on a stream whose callback takes over 10 s, and a first call that
    builds a Keras model's graph can take longer than that on a busy machine.
    """
    width, height = size
    pipeline.detector.detect(np.zeros((height, width, 3), dtype=np.uint8))
    side = pipeline.classifier.input_size
    pipeline.classifier.predict(np.zeros((1, side, side, 3), dtype=np.uint8))


def _counts(detections: list[Detection], labels: tuple[str, ...]) -> tuple[tuple[str, int], ...]:
    return tuple((label, sum(d.label == label for d in detections)) for label in labels)


def counts_per_second(
    records: list[FrameRecord], labels: tuple[str, ...], window_s: float = 60.0
) -> dict[str, list]:
    """Faces per label averaged over each whole second of the last `window_s` seconds.

    Returns {"time": [datetime, ...], label: [mean faces in view, ...], ...}: the chart's data.
    """
    series: dict[str, list] = {"time": [], **{label: [] for label in labels}}
    if not records:
        return series
    start = records[-1].time - window_s
    bins: dict[int, list[FrameRecord]] = {}
    for record in records:
        if record.time >= start:
            bins.setdefault(int(record.time), []).append(record)
    for second in sorted(bins):
        frames = bins[second]
        series["time"].append(datetime.fromtimestamp(second))
        for label in labels:
            series[label].append(round(sum(r.count(label) for r in frames) / len(frames), 2))
    return series


def status_file_from_env(environ: Mapping[str, str] = os.environ) -> Path | None:
    """The status file to write (FACEMASK_TEST_STATUS_FILE), if any."""
    value = environ.get(STATUS_FILE_ENV, "").strip()
    return Path(value) if value else None
