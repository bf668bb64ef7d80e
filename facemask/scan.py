"""`facemask scan`: an archive of photos and recorded video through the pipeline on Ray Data.

The sources (folders, globs, files) are listed here; Ray Data hands blocks of paths to a pool of
actors (facemask.scan_work.FileScanner, the models loaded once per actor) and streams their rows
back to this process, which writes them (facemask.scan_table.ScanStore) and shows progress. Ray
runs embedded on this machine unless an address (--address or RAY_ADDRESS) names a cluster, and
in neither case reaches past it: no dashboard, no usage statistics, bound to 127.0.0.1.
"""

from __future__ import annotations

import glob
import logging
import os
import secrets
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from facemask import gate
from facemask.classify import read_card
from facemask.errors import FacemaskError
from facemask.gate import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS
from facemask.scan_records import write_recordings
from facemask.scan_table import FACES, FILES, NESTED, ScanStore
from facemask.scan_work import PHOTO, VIDEO, ScanSettings, worker_threads

PHOTO_BLOCK = 32
"""Photos per block of work handed to an actor (a video is a block of its own)."""
IN_FLIGHT = 2
"""Blocks queued on each actor: the next one is there when one ends (no round trip to the
driver in between), and a long video holds back at most one block behind it."""
OBJECT_STORE_BYTES = 256 * 2**20
"""Embedded Ray's shared memory: blocks of paths and of result rows are small."""
LOOPBACK = ("127.0.0.1", "localhost")
LINE_SECONDS = 30.0
"""Without a terminal, a progress line at most this often (and at every tenth of the files)."""


@dataclass(frozen=True)
class SourceFile:
    """A file to scan: its absolute path (the key that makes a scan resumable), kind and size."""

    path: str
    kind: str
    size: int


def list_sources(
    sources: Sequence[str], exclude: str | os.PathLike | None = None
) -> tuple[list[SourceFile], int]:
    """The photos and videos named by files, folders (searched recursively) and glob patterns,
    each once, and the number of other files the folders held. A source that names nothing is
    an error: an archive scan with a typo in one path should stop before it starts."""
    skip = Path(exclude).absolute() if exclude else None
    found: dict[str, SourceFile] = {}
    others = 0
    for source in sources:
        matches = sorted(glob.glob(source, recursive=True)) if glob.has_magic(source) else [source]
        if not matches or not Path(matches[0]).exists():
            raise FacemaskError(f"{source} matches no file or folder.")
        for match in map(Path, matches):
            named = match.is_file()
            for path in [match] if named else sorted(match.rglob("*")):
                path = path.absolute()
                if not path.is_file() or (skip and path.is_relative_to(skip)):
                    continue
                kind = _kind(path, named)
                if kind is None:
                    others += 1
                elif str(path) not in found:
                    found[str(path)] = SourceFile(str(path), kind, path.stat().st_size)
    return list(found.values()), others


def _kind(path: Path, named: bool) -> str | None:
    """photo or video by extension; a file named outright but unknown by extension is sniffed
    (the gate then refuses what is neither), a folder's other files are left out."""
    suffix = path.suffix.lower()
    if suffix in VIDEO_EXTENSIONS:
        return VIDEO
    if suffix in IMAGE_EXTENSIONS:
        return PHOTO
    if not named:
        return None
    try:
        with path.open("rb") as handle:
            gate.sniff_video(handle.read(16), path.name)
        return VIDEO
    except (FacemaskError, OSError):
        return PHOTO


@dataclass
class ScanSummary:
    """What one `scan` call did (this run's files) and where the tables are."""

    out: Path
    workers: int
    cluster: str  # "embedded" or the address
    threads: int = 0  # native threads per worker (0: the cores shared out, set when started)
    ray_start_s: float = 0.0
    seconds: float = 0.0  # from Ray started to the last row written
    steady_files_per_s: float = 0.0  # after the first block came back (models loaded)
    files: Counter[str] = field(default_factory=Counter)  # scanned now, by kind
    frames: int = 0  # video frames analysed
    errors: int = 0
    skipped: int = 0  # done by an earlier run
    others: int = 0  # files in the folders that are neither photos nor videos
    people: Counter[str] = field(default_factory=Counter)
    recordings: int = 0  # videos written to the records database (--db)

    def text(self) -> str:
        """A few lines for the terminal."""
        scanned = sum(self.files.values())
        lines = []
        if scanned:
            rate = scanned / self.seconds if self.seconds else 0.0
            lines.append(
                f"Scanned {scanned} files ({self.files[PHOTO]} photos, {self.files[VIDEO]} videos"
                f" with {self.frames} frames analysed) in {self.seconds:.1f} s on {self.workers}"
                f" workers of {self.threads} threads ({self.cluster}): {rate:.1f} files/s,"
                f" {self.steady_files_per_s:.1f} once the models were loaded."
            )
        else:
            lines.append("Nothing new to scan.")
        if self.errors:
            lines.append(f"{self.errors} files could not be used: see the error column.")
        if self.skipped:
            lines.append(f"{self.skipped} files were done by an earlier run and skipped.")
        if self.others:
            lines.append(f"{self.others} files in the folders are neither photos nor videos.")
        if self.people:
            people = ", ".join(f"{k} {v}" for k, v in sorted(self.people.items()))
            lines.append(f"People: {people}.")
        if self.recordings:
            lines.append(f"{self.recordings} recordings' per-minute counts went to the database.")
        lines.append(f"Rows in {self.out / FILES} and {self.out / FACES}.")
        return "\n".join(lines)


class ScanProgress:
    """A bar on a terminal; without one (a pipe, a log), a line now and then."""

    def __init__(self, total: int, stream: TextIO) -> None:
        self.total, self.done, self.stream = total, 0, stream
        self._bar = None
        self._next_tenth, self._last_line = 1, time.monotonic()
        if stream.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=total, unit="file", file=stream, dynamic_ncols=True)

    def update(self, files: int) -> None:
        self.done += files
        if self._bar is not None:
            self._bar.update(files)
            return
        tenth = self.done * 10 // max(1, self.total)
        if tenth >= self._next_tenth or time.monotonic() - self._last_line > LINE_SECONDS:
            self._next_tenth, self._last_line = tenth + 1, time.monotonic()
            print(f"scan: {self.done}/{self.total} files", file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def start_ray(address: str | None, workers: int) -> tuple[str, float]:
    """Start Ray embedded (address None) or join the cluster at `address`: (where, seconds).

    Usage statistics off, no dashboard; embedded, or joining a cluster on this machine's
    loopback, every Ray process binds 127.0.0.1 (multi-node discovery off: Ray otherwise swaps
    127.0.0.1 for the address it would use to reach other machines). Embedded, the node gets a
    token of its own, so nothing is written outside the run. Ray's progress bars and logs stay
    quiet: the scan shows its own progress.
    """
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    if not address or address.split(":")[0] in LOOPBACK:
        os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # read when ray is imported
    if not address and "RAY_AUTH_MODE" not in os.environ:
        os.environ["RAY_AUTH_MODE"] = "token"
        os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
    started = time.perf_counter()
    import ray
    import ray.data

    quiet = {"log_to_driver": False, "logging_level": logging.ERROR}
    if address:
        ray.init(address=address, **quiet)
    else:
        ray.init(
            address="local", num_cpus=max(workers, os.cpu_count() or 1), include_dashboard=False,
            object_store_memory=OBJECT_STORE_BYTES, _node_ip_address="127.0.0.1", **quiet,
        )  # fmt: skip
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    context.enable_auto_log_stats = False
    for name in ("ray", "ray.data"):
        logging.getLogger(name).setLevel(logging.ERROR)
    return address or "embedded", time.perf_counter() - started


def scan(
    sources: Sequence[str],
    out: str | os.PathLike,
    settings: ScanSettings,
    *,
    workers: int | None = None,
    threads: int | None = None,
    address: str | None = None,
    progress: TextIO | None = None,
    say: Callable[[str], None] | None = None,
    db: str | None = None,
) -> ScanSummary:
    """Scan photos and videos into OUT/files.parquet and OUT/faces.parquet, skipping files an
    earlier run into OUT already did. Bad files become rows with their sentence; the job goes on.
    `address` (or RAY_ADDRESS) runs it on a Ray cluster, else Ray starts embedded here. Each of
    the `workers` uses `threads` native threads (default: the cluster's cores shared out). With
    `db` (a records database URL), each video's per-minute counts are written there too."""
    workers = max(1, workers or os.cpu_count() or 1)
    address = address or os.environ.get("RAY_ADDRESS") or None
    say = say or (lambda line: print(line, file=sys.stderr, flush=True))
    labels = read_card(settings.model_dir)["labels"]
    store = ScanStore(out, labels)
    summary = ScanSummary(Path(out), workers, address or "embedded", threads or 0)
    records = None
    if db is not None:
        from facemask.records.store import RecordStore

        records = RecordStore(db)  # opened (and migrated) before Ray starts: a bad URL stops here
    try:
        store.check_settings(settings)
        files, summary.others = list_sources(sources, exclude=out)
        done = store.done()
        todo = [f for f in files if f.path not in done]
        summary.skipped = len(files) - len(todo)
        if todo:
            _run_on_ray(todo, store, settings, summary, progress or sys.stderr, say, records)
        store.merge()
    finally:
        store.close()
        if records is not None:
            records.close()
    return summary


def _run_on_ray(todo, store, settings, summary, stream, say, records=None) -> None:
    """Start Ray once, stream the blocks through the actor pool, write what comes back."""
    import pyarrow as pa
    import pyarrow.compute as pc

    summary.cluster, summary.ray_start_s = start_ray(
        None if summary.cluster == "embedded" else summary.cluster, summary.workers
    )
    import ray
    import ray.data

    from facemask.scan_work import FileScanner

    say(f"Ray started in {summary.ray_start_s:.1f} s ({summary.cluster}); {len(todo)} files.")
    started, first, last = time.perf_counter(), None, 0.0
    bar = ScanProgress(len(todo), stream)
    try:
        cpus = ray.cluster_resources().get("CPU", 1.0)
        summary.threads = summary.threads or worker_threads(cpus, summary.workers)
        videos = sorted((f for f in todo if f.kind == VIDEO), key=lambda f: -f.size)
        photos = [f for f in todo if f.kind == PHOTO]
        blocks = [[v] for v in videos] + [
            photos[i : i + PHOTO_BLOCK] for i in range(0, len(photos), PHOTO_BLOCK)
        ]
        tables = [pa.Table.from_pylist([f.__dict__ for f in block]) for block in blocks]
        results = ray.data.from_arrow(tables).map_batches(
            FileScanner,
            fn_constructor_args=(settings, summary.threads),
            batch_size=None,  # a block as built above: one video, or PHOTO_BLOCK photos
            batch_format="pyarrow",
            compute=ray.data.ActorPoolStrategy(
                size=summary.workers, max_tasks_in_flight_per_actor=IN_FLIGHT
            ),
            num_cpus=1,
        )
        for block in results.iter_batches(batch_size=None, batch_format="pyarrow"):
            if records is not None:
                summary.recordings += write_recordings(records, block.to_pylist(), NESTED)
            store.add(block)
            bar.update(block.num_rows)
            last = time.perf_counter()
            if first is None:
                first = (last, block.num_rows)
            summary.files.update(block.column("kind").to_pylist())
            video_frames = pc.filter(block.column("frames"), pc.equal(block.column("kind"), VIDEO))
            summary.frames += int(pc.sum(video_frames).as_py() or 0)
            summary.errors += block.num_rows - block.column("error").null_count
            for name in block.column_names:
                if name.startswith("people_"):
                    summary.people[name[7:]] += int(pc.sum(block.column(name)).as_py() or 0)
    finally:
        bar.close()
        store.flush()
        ray.shutdown()
    summary.seconds = time.perf_counter() - started + summary.ray_start_s
    scanned = sum(summary.files.values())
    if first is not None and scanned > first[1] and last > first[0]:
        summary.steady_files_per_s = (scanned - first[1]) / (last - first[0])
