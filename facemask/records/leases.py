"""Which watcher watches which camera: one lease row per camera in the records database.

Several `facemask watch` processes, on one machine or several, may name the same cameras and
share one database (PostgreSQL across machines; a SQLite file works for processes on one
machine). A watcher analyses a camera only while it holds that camera's lease; it renews its
leases every `ttl / 3` seconds. A watcher that dies stops renewing, its leases expire after
`ttl` seconds, and the next renewal of another watcher takes the camera over. Expiry is judged
by the database's clock, so the watchers' clocks need not agree. A watcher that cannot renew
(the database is away) stops its cameras before its leases could expire: a camera is never
analysed twice, so no minute is counted twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from sqlalchemy import bindparam, text
from sqlalchemy.exc import SQLAlchemyError

from facemask.records.store import RecordStore

log = logging.getLogger(__name__)

LEASE_TTL_S = 15.0
"""Seconds a lease lasts unless renewed: another watcher takes a camera over within about
this plus one renewal period (ttl / 3) of its watcher's death."""

_NOW = {
    "postgresql": "extract(epoch from clock_timestamp())",
    "sqlite": "((julianday('now') - 2440587.5) * 86400.0)",
}


class CameraLeases:
    """The leases one watcher (`holder`, unique per process) takes, renews and gives back."""

    def __init__(self, store: RecordStore, holder: str, ttl: float = LEASE_TTL_S) -> None:
        self.store, self.holder, self.ttl = store, holder, ttl
        now = _NOW.get(store.engine.dialect.name)
        if now is None:
            raise ValueError(f"Leases need SQLite or PostgreSQL, not {store.engine.dialect.name}.")
        self._claim = text(
            "INSERT INTO camera_leases (camera, holder, expires) "
            f"VALUES (:camera, :holder, {now} + :ttl) "
            "ON CONFLICT (camera) DO UPDATE SET holder = excluded.holder, "
            "expires = excluded.expires "
            f"WHERE camera_leases.holder = excluded.holder OR camera_leases.expires < {now}"
        )
        self._held = text(
            f"SELECT camera FROM camera_leases WHERE holder = :holder AND expires > {now}"
        )
        self._release = text(
            "DELETE FROM camera_leases WHERE holder = :holder AND camera IN :cameras"
        ).bindparams(bindparam("cameras", expanding=True))
        self.renewed = 0.0  # time.monotonic() of the last successful claim

    @property
    def safe_until(self) -> float:
        """time.monotonic() after which the leases may have expired without a renewal (with a
        margin for the time a claim takes)."""
        return self.renewed + self.ttl * 0.8

    def claim(self, cameras: Iterable[str]) -> set[str]:
        """Take each camera whose lease is free, expired or ours, in one transaction; the cameras
        this watcher holds now. Database errors propagate (the caller judges `safe_until`)."""
        started = time.monotonic()
        with self.store.engine.begin() as conn:
            for camera in cameras:
                conn.execute(self._claim, {"camera": camera, "holder": self.holder,
                                           "ttl": self.ttl})  # fmt: skip
            held = set(conn.scalars(self._held, {"holder": self.holder}))
        self.renewed = started
        return held

    def release(self, cameras: Iterable[str]) -> None:
        """Give leases back (on a clean stop) so another watcher need not wait for expiry."""
        cameras = list(cameras)
        if not cameras:
            return
        try:
            with self.store.engine.begin() as conn:
                conn.execute(self._release, {"holder": self.holder, "cameras": cameras})
        except SQLAlchemyError as exc:  # expiry frees them anyway
            log.warning("The camera leases could not be given back (they expire): %s", exc)
