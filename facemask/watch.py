"""The watcher: cameras -> analysis at a set rate -> the records database.

One analysis thread per camera takes the camera's newest frame at most `fps` times a second,
runs the shared `Pipeline` with its own `FaceTracker` (the one `facemask video` uses), counts
face detections per minute and gives each tracked person one label: the label most of their
frames had. A person who walks past counts once. What it learns goes to a `RecordWriter`; about
once a second each camera's annotated frame and status are written to a folder the Monitor
page reads (the page never recomputes a frame). Alert rules (facemask.records.alerts) are
checked as people are counted. With camera leases (facemask.records.leases) a camera is
analysed only while this watcher holds it, so several watchers can share a list of cameras.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
from sqlalchemy.exc import SQLAlchemyError

from facemask import gate
from facemask.cameras import Camera, CameraSpec, CameraStatus
from facemask.errors import FacemaskError
from facemask.files import atomic_path, write_json
from facemask.pipeline import Detection, FaceTracker, FrameTimer, Pipeline, annotate
from facemask.records import AlertEvent, PersonRecord, RecordWriter, StatusChange
from facemask.records.alerts import (
    AlertConfig,
    CameraAlerts,
    WebhookSender,
    prune_snapshots,
    save_snapshot,
)
from facemask.records.leases import CameraLeases
from facemask.records.store import db_reason
from facemask.watch_cli import DEFAULT_FPS

log = logging.getLogger(__name__)

MIN_PERSON_FRAMES = 2
"""A track seen in fewer analysed frames is not counted as a person (a stray detection)."""
ANALYSIS_SIDE = 1280
"""Frames are scaled down to this longest side before detection (as `facemask video` does)."""
LIVE_INTERVAL_S = 1.0
SNAPSHOT_PRUNE_S = 3600.0
_FORGET_S = 10.0  # a track unseen this long has ended (FaceTracker drops it within 5 frames)


class PersonVotes:
    """One voted label per tracked person of one camera: the label most of their frames had
    (ties go to the label seen first), as `facemask video` counts faces."""

    def __init__(self, camera: str, run_id: str) -> None:
        self.camera, self.run_id = camera, run_id
        self._people: dict[int, tuple[datetime, datetime, Counter[str]]] = {}

    def update(self, at: datetime, detections: Sequence[Detection]) -> list[PersonRecord]:
        """Count this frame's votes; the records of the people seen in it (once counted)."""
        seen = []
        for det in detections:
            if det.track_id is None:
                continue
            first, _, votes = self._people.get(det.track_id, (at, at, Counter()))
            votes[det.label] += 1
            self._people[det.track_id] = (first, at, votes)
            seen.append(det.track_id)
        for track_id, (_, last, _) in list(self._people.items()):
            if (at - last).total_seconds() > _FORGET_S:
                del self._people[track_id]
        return [r for r in map(self.record, seen) if r.frames >= MIN_PERSON_FRAMES]

    def record(self, track_id: int) -> PersonRecord:
        first, last, votes = self._people[track_id]
        return PersonRecord(
            camera=self.camera,
            key=f"{self.run_id}:{track_id}",
            first_seen=first,
            last_seen=last,
            label=votes.most_common(1)[0][0],
            votes=dict(votes),
            frames=sum(votes.values()),
        )


@dataclass(frozen=True)
class LiveStatus:
    """A camera's status as the Monitor page shows it (NAME.json in the live folder)."""

    camera: str
    state: str
    detail: str
    analysed_fps: float
    frame_age_s: float | None  # newest analysed frame: seconds from decoding to analysed
    reconnects: int
    frames: int
    rejected: int
    analysed: int
    records_error: str  # the records writer's last refusal while it retries, else ""
    records_pending: int  # entries waiting for the database
    records_dropped: int  # entries given up because the database stayed away too long
    alerts: int  # alerts raised since the watcher started
    updated: float  # time.time()


AlertCallback = Callable[[AlertEvent, np.ndarray], None]
"""on_alert(event, the annotated frame): called from a camera's analysis thread."""


class CameraWatch:
    """The analysis thread of one camera. The camera's grabber runs only while this watcher
    holds the camera (`hold` / `release`, driven by the camera leases)."""

    def __init__(
        self,
        spec: CameraSpec,
        make_camera: Callable[[CameraSpec], Camera],
        pipeline: Pipeline,
        writer: RecordWriter,
        run_id: str,
        fps: float,
        live_dir: Path | None,
        stop: threading.Event,
        alerts: CameraAlerts | None = None,
        on_alert: AlertCallback | None = None,
    ) -> None:
        self.spec, self.name, self._make_camera = spec, spec.name, make_camera
        self.camera: Camera | None = None
        self.pipeline, self.writer = pipeline, writer
        self.fps, self.live_dir, self._stop = fps, live_dir, stop
        self.run_id = run_id
        self.votes = PersonVotes(spec.name, run_id)
        self.alerts, self.on_alert, self.alerted = alerts, on_alert, 0
        self.analysed = 0
        self.errors = 0
        self._timer = FrameTimer()
        self._analysed_fps, self._frame_age = 0.0, None
        self._thread = threading.Thread(target=self._run, name=f"watch-{spec.name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def hold(self) -> None:
        """Start watching: a fresh grabber (a camera taken back starts anew)."""
        if self.camera is None:
            log.info("Watching camera %s", self.spec)
            self.camera = self._make_camera(self.spec).start()

    def release(self) -> None:
        """Stop watching (this watcher no longer holds the camera, or is stopping)."""
        camera, self.camera = self.camera, None
        if camera is not None:
            camera.stop()
            self.write_live(None, camera)  # its final "stopped" status

    def _run(self) -> None:
        tracker, seq, current = FaceTracker(), 0, None
        period, next_live = 1.0 / self.fps, 0.0
        due = time.monotonic()
        while not self._stop.is_set():
            camera = self.camera
            if camera is None:  # not ours (now): another watcher may hold it
                self._stop.wait(0.2)
                continue
            if camera is not current:  # taken (again): new tracks, new people
                tracker, seq, current = FaceTracker(), 0, camera
                self.votes = PersonVotes(self.name, f"{self.run_id}.{uuid.uuid4().hex[:4]}")
            frame = camera.read(seq, timeout=0.5)
            if frame is None:
                if time.monotonic() >= next_live:
                    next_live = time.monotonic() + LIVE_INTERVAL_S
                    self.write_live(None, camera)
                continue
            seq = frame.seq
            started = time.perf_counter()
            rgb, _ = gate.fit_side(frame.rgb, ANALYSIS_SIDE)
            try:
                detections = self.pipeline.process(rgb, tracker)
            except FacemaskError as exc:  # a frame the gate refuses: counted, skipped
                self.errors += 1
                log.warning("%s", exc)
                continue
            now = datetime.now(UTC)
            self.analysed += 1
            self._analysed_fps, _ = self._timer.tick((time.perf_counter() - started) * 1000)
            self._frame_age = max(0.0, time.time() - frame.captured)
            self.writer.add_faces(self.name, now, [d.label for d in detections])
            people = self.votes.update(now, detections)
            for person in people:
                self.writer.add_person(person)
            events = self.alerts.update(now, people) if self.alerts else []
            picture = annotate(rgb, detections) if events else None
            for event in events:
                self.alerted += 1
                if self.on_alert is not None:
                    self.on_alert(event, picture)
            if time.monotonic() >= next_live:
                next_live = time.monotonic() + LIVE_INTERVAL_S
                self.write_live(annotate(rgb, detections), camera)
            due = max(due + period, time.monotonic())
            self._stop.wait(max(0.0, due - time.monotonic()))

    def live_status(self, camera: Camera) -> LiveStatus:
        status = camera.status
        online = status.state == "online"
        return LiveStatus(
            camera=self.name,
            state=status.state,
            detail=status.detail,
            analysed_fps=round(self._analysed_fps, 2) if online else 0.0,
            frame_age_s=round(self._frame_age, 3)
            if online and self._frame_age is not None
            else None,
            reconnects=status.reconnects,
            frames=status.frames,
            rejected=status.rejected,
            analysed=self.analysed,
            records_error=self.writer.last_error,
            records_pending=self.writer.pending,
            records_dropped=self.writer.dropped,
            alerts=self.alerted,
            updated=time.time(),
        )

    def write_live(self, picture, camera: Camera) -> None:
        """The annotated frame (when there is a new one) and the status, for the Monitor page
        (only by the watcher that holds the camera)."""
        if self.live_dir is None:
            return
        try:
            if picture is not None:
                ok, jpeg = cv2.imencode(".jpg", picture[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 80])
                if ok:
                    with atomic_path(self.live_dir / f"{self.name}.jpg") as tmp:
                        tmp.write_bytes(jpeg.tobytes())
            write_json(self.live_dir / f"{self.name}.json", asdict(self.live_status(camera)))
        except OSError as exc:
            log.warning("The live folder %s cannot be written: %s", self.live_dir, exc)


@dataclass(frozen=True)
class WatchSummary:
    run_id: str
    seconds: float
    analysed: dict[str, int]  # frames analysed per camera
    stored: bool  # everything reached the database


class Watcher:
    """Cameras, their analysis threads and the records writer, started and stopped together."""

    def __init__(
        self,
        specs: Sequence[CameraSpec],
        pipeline: Pipeline,
        writer: RecordWriter,
        *,
        fps: float = DEFAULT_FPS,
        live_dir: Path | None = None,
        open_timeout: float | None = None,
        read_timeout: float | None = None,
        alerts: AlertConfig | None = None,
        leases: CameraLeases | None = None,
    ) -> None:
        if not specs:
            raise FacemaskError("Name at least one camera: --camera NAME=URL or --cameras FILE.")
        if not 0 < fps <= 30:
            raise FacemaskError(f"--fps must be above 0 and at most 30, not {fps:g}.")
        self.run_id = f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
        self.writer, self.stop_event = writer, threading.Event()
        timeouts = {
            k: v for k, v in (("open_timeout", open_timeout), ("read_timeout", read_timeout)) if v
        }
        self.leases = leases

        def make_camera(spec: CameraSpec) -> Camera:
            return Camera(spec, on_status=self._status_changed, **timeouts)

        if live_dir is not None:
            live_dir.mkdir(parents=True, exist_ok=True)
        self.alert_config = alerts or AlertConfig()
        self.webhook = None
        if self.alert_config.webhook:
            self.webhook = WebhookSender(
                self.alert_config.webhook, per_minute=self.alert_config.webhook_per_minute
            )
        self.watches = [
            CameraWatch(
                s, make_camera, pipeline, writer, self.run_id, fps, live_dir, self.stop_event,
                CameraAlerts(s.name, self.alert_config.rules(s.name)), self._alert,
            )
            for s in specs
        ]  # fmt: skip

    def _alert(self, event: AlertEvent, picture: np.ndarray) -> None:
        """Record an alert, keep its snapshot when snapshots are on, queue it for the webhook."""
        log.warning("Alert: %s", event.message)
        folder = self.alert_config.snapshots
        if folder is not None:
            ok, jpeg = cv2.imencode(".jpg", picture[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 85])
            try:
                if ok:
                    event = replace(event, snapshot=save_snapshot(folder, event, jpeg.tobytes()))
            except OSError as exc:
                log.warning("The snapshot of an alert could not be kept in %s: %s", folder, exc)
        self.writer.add_alert(event)
        if self.webhook is not None:
            self.webhook.send(event)

    def _prune_snapshots(self) -> None:
        folder = self.alert_config.snapshots
        if folder is not None:
            gone = prune_snapshots(folder, self.alert_config.snapshot_days)
            if gone:
                log.info("Deleted %d snapshots older than %d days.", gone,
                         self.alert_config.snapshot_days)  # fmt: skip

    def _share_cameras(self) -> None:
        """Hold the cameras whose leases this watcher has; release the others. Without leases
        every camera is held. When the leases cannot be renewed, every camera is released
        before they could expire (another watcher may then take them)."""
        if self.leases is None:
            held = {w.name for w in self.watches}
        else:
            try:
                held = self.leases.claim(w.name for w in self.watches)
            except SQLAlchemyError as exc:
                if time.monotonic() < self.leases.safe_until:
                    return
                held = set()
                if any(w.camera is not None for w in self.watches):
                    log.warning("The camera leases cannot be renewed (%s): cameras released.",
                                db_reason(exc))  # fmt: skip
        for watch in self.watches:
            if watch.name in held:
                watch.hold()
            elif watch.camera is not None:
                log.info("Camera %s is no longer held by this watcher.", watch.name)
                watch.release()

    def _status_changed(self, camera: str, status: CameraStatus) -> None:
        change = StatusChange(camera, datetime.now(UTC), status.state, status.detail)
        self.writer.add_status(change)

    def run(self, duration: float | None = None) -> WatchSummary:
        """Watch until stop() or `duration` seconds; then stop everything and flush."""
        started = time.monotonic()
        if self.webhook is not None:
            log.info("Alerts go to the webhook %s", self.webhook.origin)
            self.webhook.start()
        for watch in self.watches:
            watch.start()
        end = None if duration is None else started + duration
        next_prune = 0.0
        try:
            while True:
                self._share_cameras()
                if time.monotonic() >= next_prune:
                    next_prune = time.monotonic() + SNAPSHOT_PRUNE_S
                    self._prune_snapshots()
                left = self.leases.ttl / 3 if self.leases else SNAPSHOT_PRUNE_S
                if end is not None:
                    left = min(left, end - time.monotonic())
                if self.stop_event.wait(max(0.0, left)) or (end and time.monotonic() >= end):
                    break
        finally:
            self.stop_event.set()
            for watch in self.watches:
                watch.join()
            for watch in self.watches:
                watch.release()
            if self.leases is not None:
                self.leases.release(w.name for w in self.watches)
            stored = self.writer.close()
            if self.webhook is not None:
                self.webhook.close()
        return WatchSummary(
            run_id=self.run_id,
            seconds=time.monotonic() - started,
            analysed={w.name: w.analysed for w in self.watches},
            stored=stored,
        )

    def stop(self) -> None:
        """End run() from another thread or a signal handler."""
        self.stop_event.set()
