"""`facemask scan --db`: each scanned video's counts in the records database, per minute of the
recording, so the Monitor page and `facemask report` show a recording beside the cameras.

A recording is named `recording:<file name>` there. Its minutes are those of the time it was
recorded, taken as the file's modification time less its length (a camera's file is closed when
the recording ends). People are keyed by file and track, so writing a video again updates its
people rather than adding them; its face counts add up, as a camera's do.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from facemask.records.store import Batch, PersonRecord, RecordStore, minute_of
from facemask.scan_work import VIDEO

PREFIX = "recording:"


def recording_name(file: str) -> str:
    """The camera name a recording gets in the records database."""
    return f"{PREFIX}{Path(file).name}"


def recording_start(file: str, seconds: float) -> datetime:
    """When a recording began: its file's modification time less its length (UTC)."""
    try:
        ended = os.stat(file).st_mtime
    except OSError:
        ended = datetime.now(UTC).timestamp()
    return datetime.fromtimestamp(ended - seconds, UTC)


def recording_batch(row: dict[str, Any], faces: Iterable[dict[str, Any]]) -> Batch:
    """A scanned video's file row and face rows as one batch of per-minute records."""
    camera = recording_name(row["file"])
    started = recording_start(row["file"], float(row["seconds"] or 0.0))
    batch = Batch()
    seen: dict[int, list[tuple[datetime, str]]] = {}
    for face in faces:
        at = started + timedelta(seconds=float(face["time"] or 0.0))
        batch.faces[(camera, minute_of(at), face["label"])] += 1
        if face["person"] is not None:
            seen.setdefault(int(face["person"]), []).append((at, face["label"]))
    for person, frames in seen.items():
        votes = Counter(label for _, label in frames)
        batch.people[(camera, str(person))] = PersonRecord(
            camera=camera,
            key=f"{row['file']}:{person}",
            first_seen=frames[0][0],
            last_seen=frames[-1][0],
            label=votes.most_common(1)[0][0],
            votes=dict(votes),
            frames=len(frames),
        )
    return batch


def write_recordings(store: RecordStore, rows: Iterable[dict[str, Any]], nested: str) -> int:
    """Write the videos among a worker's block rows (each carrying its faces under `nested`);
    the number of recordings written. Photos and files in error are left out."""
    written = 0
    for row in rows:
        if row["kind"] == VIDEO and row["error"] is None:
            store.write(recording_batch(row, row[nested] or []))
            written += 1
    return written
