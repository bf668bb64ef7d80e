"""What a scan writes, and how it survives a crash: the two Parquet tables and their part files.

DIR/files.parquet has one row per file, DIR/faces.parquet one row per face (docs/scan.md lists the
columns). While a scan runs, finished files go to DIR/parts/ every few hundred files or seconds,
each part written atomically, its faces before its files: a file is done once its files row is on
disk, so a crash loses only the files since the last part, and the next run skips the rest. At the
end the parts are folded into the two tables (streamed, one part at a time) and removed.
"""

from __future__ import annotations

import fcntl
import os
import time
import uuid
from collections.abc import Iterable, Sequence
from contextlib import ExitStack
from dataclasses import asdict
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from facemask import MASKED
from facemask.errors import FacemaskError
from facemask.files import atomic_path, read_json, write_json
from facemask.scan_work import FileResult, ScanSettings

FILES, FACES, SETTINGS = "files.parquet", "faces.parquet", "scan.json"
PARTS = "parts"
FLUSH_FILES = 256
FLUSH_SECONDS = 30.0
"""A part is written after this many finished files or seconds, whichever comes first."""

FACE_SCHEMA = pa.schema(
    [
        ("file", pa.string()),
        ("frame", pa.int32()),  # index of the frame in the video (0 for a photo)
        ("time", pa.float64()),  # seconds from the video's first frame (null for a photo)
        ("x1", pa.int32()), ("y1", pa.int32()), ("x2", pa.int32()), ("y2", pa.int32()),
        ("label", pa.string()),
        ("confidence", pa.float64()),
        ("detection_score", pa.float64()),
        ("person", pa.int32()),  # the video's tracked person (null for a photo)
    ]
)  # fmt: skip
NESTED = "face_rows"


def files_schema(labels: Sequence[str]) -> pa.Schema:
    """Columns of files.parquet for a model's labels (a column per label for faces and people)."""
    counts = [(f"{what}_{label}", pa.int32()) for what in ("faces", "people") for label in labels]
    return pa.schema(
        [
            ("file", pa.string()), ("kind", pa.string()), ("size", pa.int64()),
            ("width", pa.int32()), ("height", pa.int32()),
            ("frames", pa.int32()), ("seconds", pa.float64()),
            ("faces", pa.int32()), ("people", pa.int32()), *counts,
            ("share_masked", pa.float64()),  # people with a mask / people (null with none)
            ("notes", pa.string()), ("error", pa.string()),
        ]
    )  # fmt: skip


def results_table(results: Iterable[FileResult], labels: Sequence[str]) -> pa.Table:
    """File rows, each carrying its faces as a nested list (how a worker hands back a block)."""
    rows = []
    for r in results:
        people = sum(r.people.values())
        row = {
            "file": r.file, "kind": r.kind, "size": r.size, "width": r.width,
            "height": r.height, "frames": r.frames, "seconds": r.seconds,
            "faces": sum(r.faces.values()), "people": people,
            "share_masked": r.people[MASKED] / people if people else None,
            "notes": r.notes, "error": r.error, NESTED: r.face_rows,
        }  # fmt: skip
        for label in labels:
            row[f"faces_{label}"] = r.faces[label]
            row[f"people_{label}"] = r.people[label]
        rows.append(row)
    schema = files_schema(labels).append(pa.field(NESTED, pa.list_(pa.struct(FACE_SCHEMA))))
    return pa.Table.from_pylist(rows, schema=schema)


def split_results(table: pa.Table) -> tuple[pa.Table, pa.Table]:
    """A worker's block as (file rows, face rows)."""
    nested = table.column(NESTED).combine_chunks()
    faces = pa.Table.from_struct_array(pc.list_flatten(nested)).cast(FACE_SCHEMA)
    return table.drop_columns([NESTED]), faces


class ScanStore:
    """An output folder: its settings, the files already done, parts while running, the tables."""

    def __init__(self, out: str | os.PathLike, labels: Sequence[str]) -> None:
        self.out = Path(out)
        self.parts = self.out / PARTS
        self.out.mkdir(parents=True, exist_ok=True)
        self.files_schema = files_schema(labels)
        self._lock = open(self.out / ".lock", "w")  # noqa: SIM115 -- held while the store lives
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            self._lock.close()
            raise FacemaskError(f"Another scan is writing to {self.out}; wait for it.") from exc
        self._run = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
        self._count = 0
        self._pending: list[pa.Table] = []
        self._pending_files = 0
        self._last_flush = time.monotonic()
        self._drop_orphans()

    def close(self) -> None:
        self._lock.close()

    def check_settings(self, settings: ScanSettings) -> None:
        """Record the settings; a folder scanned with other settings is refused (mixed rows)."""
        wanted = asdict(settings)
        found = read_json(self.out / SETTINGS)
        if found is not None and found != wanted:
            changed = ", ".join(k for k in wanted if found.get(k) != wanted[k])
            raise FacemaskError(
                f"{self.out} holds a scan made with other settings ({changed}): "
                "use another --out folder, or the same settings to resume it."
            )
        write_json(self.out / SETTINGS, wanted)

    def done(self) -> set[str]:
        """Files that already have their row (in the merged table or a part)."""
        done: set[str] = set()
        for path in self._tables(FILES):
            done |= _file_names(path)
        return done

    def add(self, block: pa.Table) -> None:
        """Buffer a worker's block; write a part when enough has gathered."""
        self._pending.append(block)
        self._pending_files += block.num_rows
        if (
            self._pending_files >= FLUSH_FILES
            or time.monotonic() - self._last_flush > FLUSH_SECONDS
        ):
            self.flush()

    def flush(self) -> None:
        """Write what is buffered as one part: faces first, then files (which marks them done)."""
        self._last_flush = time.monotonic()
        if not self._pending:
            return
        files, faces = split_results(pa.concat_tables(self._pending))
        self.parts.mkdir(exist_ok=True)
        self._count += 1
        stem = self.parts / f"{self._run}-{self._count:05d}"
        for table, kind in ((faces, FACES), (files.cast(self.files_schema), FILES)):
            with atomic_path(f"{stem}.{kind}") as tmp:
                pq.write_table(table, tmp)
        self._pending, self._pending_files = [], 0

    def merge(self) -> None:
        """Fold the parts into files.parquet and faces.parquet (both written, then both renamed),
        then remove the parts. A part already in the tables (a crash after the renames) is
        skipped, so no row is ever counted twice."""
        parts = sorted(self.parts.glob(f"*.{FILES}"))
        if not parts and all((self.out / n).is_file() for n in (FILES, FACES)):
            return
        merged = self.out / FILES
        old = _file_names(merged) if merged.is_file() else set()
        fresh = [p for p in parts if not old or _first_file(p) not in old]
        with ExitStack() as stack:
            for kind, schema in ((FACES, FACE_SCHEMA), (FILES, self.files_schema)):
                tmp = stack.enter_context(atomic_path(self.out / kind))
                with pq.ParquetWriter(tmp, schema) as writer:
                    sources = [self.out / kind] if (self.out / kind).is_file() else []
                    for path in sources + [_sibling(p, kind) for p in fresh]:
                        for batch in pq.ParquetFile(path).iter_batches():
                            writer.write_batch(batch)
        for path in parts:
            _sibling(path, FACES).unlink(missing_ok=True)
            path.unlink()
        if self.parts.is_dir() and not any(self.parts.iterdir()):
            self.parts.rmdir()

    def _tables(self, kind: str) -> list[Path]:
        merged = self.out / kind
        return ([merged] if merged.is_file() else []) + sorted(self.parts.glob(f"*.{kind}"))

    def _drop_orphans(self) -> None:
        """Faces parts whose files part never landed (a crash between the two) are scanned again."""
        for path in self.parts.glob(f"*.{FACES}"):
            if not _sibling(path, FILES).is_file():
                path.unlink()
        for path in self.parts.glob(".tmp-*"):
            path.unlink()


def _sibling(part: Path, kind: str) -> Path:
    """The faces part of a files part, or the other way round."""
    return part.with_name(part.name.rsplit(".", 2)[0] + f".{kind}")


def _file_names(table: Path) -> set[str]:
    return set(pq.read_table(table, columns=["file"]).column("file").to_pylist())


def _first_file(part: Path) -> str | None:
    files = pq.read_table(part, columns=["file"]).column("file")
    return files[0].as_py() if len(files) else None
