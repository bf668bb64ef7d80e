"""Server-wide limits on work, so one server stays bounded whatever its visitors do.

- `VideoJobs`: at most N video jobs at once ("busy, try again" beyond); a job ends, and its
  temporary folder goes, when its session ends or nobody watched it for an idle time.
- `clean_stale_folders`: job folders left by a server that crashed, removed at start-up.
- `Slots`: at most N photo analyses at once; a caller waits a little, then hears "busy".
- `SessionJanitor`: frees what a session held once the session has ended.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from facemask.errors import FacemaskError, VideoError
from facemask.pipeline import Pipeline
from facemask.video import FOLDER_PREFIX, VideoJob

log = logging.getLogger(__name__)
LEGACY_STALE_S = 3600.0
"""A job folder that names no server (made by an older version) is stale after this long."""


class Busy(FacemaskError):
    """Every slot for this kind of work is taken; the user may try again shortly."""


class VideoBusy(Busy, VideoError):
    """Every video slot of the server is taken."""


class VideoJobs:
    """The server's video jobs: at most `capacity` at once; beyond, "busy, try again".

    A job ends, and its files go, when its owner's session has ended (`alive` says so) or
    nobody touched it for `idle_s` seconds: a sweeper thread checks every `sweep_s`.
    Thread-safe.
    """

    def __init__(self, capacity: int, idle_s: float, sweep_s: float = 2.0) -> None:
        self.capacity, self.idle_s, self.sweep_s = capacity, idle_s, sweep_s
        self._jobs: dict[VideoJob, Callable[[], bool]] = {}
        self._lock = threading.Lock()
        self._sweeper: threading.Thread | None = None

    def start(
        self, data: bytes, name: str, pipeline: Pipeline, alive: Callable[[], bool] = lambda: True
    ) -> VideoJob:
        """A new job for a session (`alive`: whether it is still there); VideoBusy when full."""
        with self._lock:
            if sum(1 for job in self._jobs if not job.done) >= self.capacity:
                raise VideoBusy(
                    f"The server is annotating {self.capacity} video(s) already; "
                    "try again in a minute."
                )
            job = VideoJob(data, name, pipeline)
            self._jobs[job] = alive
            if self._sweeper is None:
                self._sweeper = threading.Thread(
                    target=self._sweep_forever, name="facemask-video-sweeper", daemon=True
                )
                self._sweeper.start()
        return job

    def running(self) -> int:
        with self._lock:
            return sum(1 for job in self._jobs if not job.done)

    def close(self, job: VideoJob) -> None:
        """End a job and remove its files (its owner is done with it)."""
        with self._lock:
            self._jobs.pop(job, None)
        job.close()

    def sweep(self) -> int:
        """End the jobs whose session ended or that sat idle; returns how many."""
        now = time.monotonic()
        with self._lock:
            stale = [
                job
                for job, alive in self._jobs.items()
                if now - job.last_seen > self.idle_s or not _still(alive)
            ]
            for job in stale:
                del self._jobs[job]
        for job in stale:
            job.close()
        return len(stale)

    def _sweep_forever(self) -> None:
        while True:
            time.sleep(self.sweep_s)
            self.sweep()


def _still(alive: Callable[[], bool]) -> bool:
    try:
        return bool(alive())
    except Exception:  # noqa: BLE001 -- an owner check that fails counts as a gone owner
        return False


def clean_stale_folders(tmp_dir: str | os.PathLike | None = None) -> int:
    """Remove job folders left by servers that are gone (a crash, a kill): at start-up.

    A folder names the pid of the server that made it; those of live processes are kept. A
    folder without one (an older version's) goes once it is LEGACY_STALE_S old.
    Returns how many were removed.
    """
    removed = 0
    for folder in Path(tmp_dir or tempfile.gettempdir()).glob(f"{FOLDER_PREFIX}*"):
        owner = folder.name[len(FOLDER_PREFIX) :].split("-", 1)
        if len(owner) == 2 and owner[0].isdigit():
            if int(owner[0]) == os.getpid() or _pid_alive(int(owner[0])):
                continue
        else:
            try:
                if time.time() - folder.stat().st_mtime < LEGACY_STALE_S:
                    continue
            except OSError:
                continue
        shutil.rmtree(folder, ignore_errors=True)
        removed += 1
    return removed


class Slots:
    """At most `capacity` holders at once (thread-safe); `hold()` waits up to `wait_s`."""

    def __init__(self, capacity: int, wait_s: float, busy: str) -> None:
        self.capacity = capacity
        self._wait_s = wait_s
        self._busy = busy
        self._semaphore = threading.BoundedSemaphore(capacity)

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Hold a slot for the block; Busy (its sentence) when none frees up in time."""
        if not self._semaphore.acquire(timeout=self._wait_s):
            raise Busy(self._busy)
        try:
            yield
        finally:
            self._semaphore.release()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


GRACE_SWEEPS = 2
"""Sweeps a session may be gone before its clean-up runs (5 s apart by default)."""


class SessionJanitor:
    """Runs a session's clean-up once the session has ended, so what it held (uploads, results)
    is freed within `sweep_s` seconds or two of its end, not when the server evicts it minutes
    later. Thread-safe; a sweeper thread starts with the first `watch`."""

    def __init__(self, sweep_s: float = 5.0) -> None:
        self.sweep_s = sweep_s
        self._watched: dict[str, tuple[Callable[[], bool], Callable[[], None], int]] = {}
        self._reapers: list[Callable[[], int]] = []
        self._lock = threading.Lock()
        self._sweeper: threading.Thread | None = None

    def every_sweep(self, reaper: Callable[[], int]) -> None:
        """Also call `reaper` on every sweep (it returns how many ended sessions it freed);
        starts the sweeper thread."""
        with self._lock:
            self._reapers.append(reaper)
            self._start()

    def watch(self, key: str, alive: Callable[[], bool], cleanup: Callable[[], None]) -> None:
        """Call `cleanup` once `alive` has said False on GRACE_SWEEPS + 1 sweeps in a row (a
        browser reconnecting after a blip keeps its session). Watching a key again replaces
        its callables."""
        with self._lock:
            self._watched[key] = (alive, cleanup, 0)
            self._start()

    def _start(self) -> None:  # under self._lock
        if self._sweeper is None:
            self._sweeper = threading.Thread(
                target=self._sweep_forever, name="facemask-session-janitor", daemon=True
            )
            self._sweeper.start()

    def sweep(self) -> int:
        """One pass; returns how many sessions were cleaned up (watched ones and reaped)."""
        ended = []
        with self._lock:
            for key, (alive, cleanup, misses) in list(self._watched.items()):
                if _still(alive):
                    self._watched[key] = (alive, cleanup, 0)
                elif misses >= GRACE_SWEEPS:
                    ended.append(cleanup)
                    del self._watched[key]
                else:
                    self._watched[key] = (alive, cleanup, misses + 1)
            reapers = list(self._reapers)
        freed = len(ended)
        for cleanup in ended:
            try:
                cleanup()
            except Exception:  # noqa: BLE001 -- one failed clean-up must not stop the others
                log.warning("a session clean-up failed", exc_info=True)
        for reaper in reapers:
            try:
                freed += reaper()
            except Exception:  # noqa: BLE001 -- nor one failed reaper
                log.warning("a session reaper failed", exc_info=True)
        if freed:
            release_memory()
        return freed

    def _sweep_forever(self) -> None:
        while True:
            time.sleep(self.sweep_s)
            self.sweep()


MMAP_THRESHOLD = 1 << 20
"""Blocks this large or larger come from mmap and go back to the system once freed."""


def _libc():
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")


def tune_allocator() -> bool:
    """Serve big blocks (photos, uploads, decoded frames) from mmap, once per process.

    Why: glibc raises its mmap threshold each time a big mmapped block is freed, so later
    photos of that size land on the heap, and a heap with one live block near its top keeps
    everything below it: a server that analysed twenty 17 MB photos stayed 480 MB larger after
    the session had gone (bench/upload_memory.py). A fixed threshold returns each such block
    to the system as soon as it is freed. Returns whether glibc took the setting.
    """
    try:
        return bool(_libc().mallopt(-3, MMAP_THRESHOLD))  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):  # not glibc
        return False


def trim_memory() -> None:
    """Hand the heaps' free pages back to the system (glibc's malloc_trim): after a big photo,
    the small blocks it left scattered over a thread's heap otherwise stay resident."""
    try:
        _libc().malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: the allocator keeps its own counsel
        pass


def release_memory() -> None:
    """Collect garbage, then trim the heaps, so the server's memory falls once a session's
    photos are gone."""
    gc.collect()
    trim_memory()


@dataclass(frozen=True)
class ServerLimits:
    """The server-wide limits, from the environment (docs/security.md lists them)."""

    video_jobs: int = 2
    video_idle_s: float = 60.0
    analyses: int = 2
    analysis_wait_s: float = 20.0

    @classmethod
    def from_env(cls) -> ServerLimits:
        try:
            return cls(
                video_jobs=max(1, int(os.environ.get("FACEMASK_VIDEO_JOBS", cls.video_jobs))),
                video_idle_s=float(os.environ.get("FACEMASK_VIDEO_IDLE_S", cls.video_idle_s)),
                analyses=max(1, int(os.environ.get("FACEMASK_ANALYSES", cls.analyses))),
            )
        except ValueError as exc:
            raise FacemaskError(f"A FACEMASK_VIDEO_* or FACEMASK_ANALYSES value: {exc}.") from exc
