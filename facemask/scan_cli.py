"""The `facemask scan` command (registered by facemask.cli).

Kept light: Ray and the scan modules load only when the command runs.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path

from facemask.errors import FacemaskError
from facemask.pipeline import DETECTOR_PRESETS
from facemask.runs import DEFAULT_MODEL


def cmd_scan(args: argparse.Namespace, model_dir: Callable[[str], Path]) -> int:
    """Run a scan as the command line asked."""
    from facemask.scan import scan
    from facemask.scan_work import ScanSettings

    if args.fps < 0:
        raise FacemaskError(f"--fps must be 0 (every frame) or more, not {args.fps}.")
    if args.workers < 1 or (args.threads is not None and args.threads < 1):
        raise FacemaskError("--workers and --threads must be at least 1.")
    settings = ScanSettings(
        model_dir=str(model_dir(args.model).resolve()),
        photo_detector=args.detector,
        video_detector=args.video_detector,
        runtime=args.runtime,
        fps=float(args.fps),
    )
    summary = scan(
        args.sources, args.out, settings,
        workers=args.workers, threads=args.threads, address=args.address, db=args.db,
    )  # fmt: skip
    print(summary.text())
    return 0


def add_scan_command(
    command: Callable[..., argparse.ArgumentParser],
    model_option: Callable[..., None],
    pipeline_options: Callable[..., None],
    model_dir: Callable[[str], Path],
) -> None:
    """Add `scan` with the shared model and detector options of facemask.cli."""
    p = command(
        "scan",
        help="scan an archive of photos and videos into Parquet (Ray Data)",
        description="Detect and classify the faces of every photo and video under the "
        "SOURCEs (files, folders, glob patterns) and write OUT/files.parquet (a row per "
        "file) and OUT/faces.parquet (a row per face). Ray runs embedded here unless "
        "--address or RAY_ADDRESS names a cluster. Running it again into the same OUT "
        "skips the files already done.",
    )
    p.add_argument("sources", nargs="+", metavar="SOURCE", help="files, folders or globs")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the Parquet tables")
    p.add_argument(
        "--fps", type=float, default=2.0, help="video frames analysed per second (0: every frame)"
    )
    p.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="Ray actors, each with its own copy of the models",
    )
    p.add_argument(
        "--threads", type=int, help="native threads per worker (default: the cores shared out)"
    )
    p.add_argument("--address", help="Ray cluster address (default: $RAY_ADDRESS, else embedded)")
    p.add_argument(
        "--db",
        metavar="URL",
        help="also write each video's per-minute counts to this records database (a SQLAlchemy "
        "URL; the Monitor page shows it as recording:<file>)",
    )
    model_option(p, DEFAULT_MODEL, positional=False)
    pipeline_options(p, "photo")
    p.add_argument(
        "--video-detector",
        choices=tuple(DETECTOR_PRESETS),
        default="webcam",
        help="face-detector preset for video frames (as `facemask video`)",
    )
    p.set_defaults(func=lambda args: cmd_scan(args, model_dir))
