"""A background writer for the records store: the watcher never waits on the database.

Counts and people collect in one bounded batch; a thread writes it every few seconds in one
transaction. When the database is locked or unreachable the batch is kept and retried with a
doubling back-off; past `max_pending` entries the oldest face counts and status rows are
dropped (and counted), never the watcher's memory.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy.exc import SQLAlchemyError

from facemask.records.store import (
    AlertEvent,
    Batch,
    PersonRecord,
    RecordsError,
    RecordStore,
    StatusChange,
    db_reason,
    minute_of,
)

log = logging.getLogger(__name__)

FLUSH_INTERVAL_S = 2.0
MAX_PENDING = 20_000
"""Entries (face-count keys + people + status rows) kept while the database is unreachable."""
RETRY_S = (0.5, 30.0)
PRUNE_INTERVAL_S = 3600.0


class RecordWriter:
    """Collects records from any thread and writes them to a RecordStore on its own thread."""

    def __init__(
        self,
        store: RecordStore,
        *,
        interval: float = FLUSH_INTERVAL_S,
        max_pending: int = MAX_PENDING,
        retry: tuple[float, float] = RETRY_S,
    ) -> None:
        self.store = store
        self.interval, self.max_pending, self.retry = interval, max_pending, retry
        self.last_error = ""  # one sentence while the database refuses writes, else ""
        self.last_write = 0.0  # time.time() of the last successful write
        self.dropped = 0  # entries given up because the buffer was full
        self._pending = Batch()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._next_prune = 0.0
        self._thread = threading.Thread(target=self._run, name="records-writer", daemon=True)

    def start(self) -> RecordWriter:
        self._thread.start()
        return self

    @property
    def pending(self) -> int:
        return len(self._pending)

    # -- collecting (any thread) -----------------------------------------------------------
    def add_faces(self, camera: str, at: datetime, labels: Iterable[str]) -> None:
        """Count face detections analysed at `at`."""
        minute = minute_of(at)
        with self._lock:
            for label in labels:
                self._pending.faces[(camera, minute, label)] += 1
            self._bound()

    def add_person(self, person: PersonRecord) -> None:
        """A person's record so far (a newer one for the same key replaces it)."""
        with self._lock:
            self._pending.people[(person.camera, person.key)] = person
            self._bound()

    def add_status(self, change: StatusChange) -> None:
        with self._lock:
            self._pending.statuses.append(change)
            self._bound()

    def add_alert(self, event: AlertEvent) -> None:
        with self._lock:
            self._pending.alerts.append(event)
            self._bound()

    def _bound(self) -> None:
        """Past max_pending, drop the oldest face counts, then status rows, people, alerts."""
        batch = self._pending
        excess = len(batch) - self.max_pending
        if excess <= 0:
            return
        for key in sorted(batch.faces, key=lambda k: k[1])[:excess]:
            del batch.faces[key]
        n = min(max(0, excess - len(batch.faces)), len(batch.statuses))
        del batch.statuses[:n]
        oldest = sorted(batch.people, key=lambda k: batch.people[k].last_seen)
        for key in oldest[: max(0, len(batch) - self.max_pending)]:
            del batch.people[key]
        del batch.alerts[: max(0, len(batch) - self.max_pending)]
        self.dropped += excess

    # -- writing ---------------------------------------------------------------------------
    def flush(self) -> bool:
        """Write everything pending now; False (and kept for later) if the database refused."""
        with self._lock:
            batch, self._pending = self._pending, Batch()
        if not len(batch):
            return True
        try:
            self.store.write(batch)
        except (SQLAlchemyError, RecordsError) as exc:
            with self._lock:
                batch.merge(self._pending)
                self._pending = batch
                self._bound()
            error = f"The records database {self.store} refused a write: {db_reason(exc)}."
            if error != self.last_error:
                log.warning("%s (%d entries kept, retrying)", error, len(batch))
            self.last_error = error
            return False
        if self.last_error:
            log.info("The records database %s accepts writes again.", self.store)
        self.last_error, self.last_write = "", time.time()
        return True

    def _run(self) -> None:
        delay = self.interval
        while not self._stop.wait(delay):
            delay = self.interval if self.flush() else min(
                max(delay * 2, self.retry[0]), self.retry[1]
            )  # fmt: skip
            if not self.last_error and time.monotonic() >= self._next_prune:
                self._next_prune = time.monotonic() + PRUNE_INTERVAL_S
                try:
                    self.store.prune()
                except SQLAlchemyError as exc:
                    log.warning("Pruning old records failed: %s.", db_reason(exc))

    def close(self, timeout: float = 10.0) -> bool:
        """Stop the thread and write what is pending, retrying up to timeout; True if all went."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        end = time.monotonic() + timeout
        while not self.flush():
            if time.monotonic() >= end:
                log.error("%s %d entries were not stored.", self.last_error, self.pending)
                return False
            time.sleep(min(self.retry[0], max(0.0, end - time.monotonic())))
        return True
