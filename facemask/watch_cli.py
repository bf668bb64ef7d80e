"""The `facemask watch` and `facemask report` commands (registered by facemask.cli).

Kept light: the watcher, cameras and records modules load only when a command runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from facemask.errors import FacemaskError
from facemask.runs import DEFAULT_MODEL

DEFAULT_FPS = 5.0
"""Frames analysed per second and camera (the rest of each stream is decoded and dropped)."""


def add_watch_commands(
    command: Callable[..., argparse.ArgumentParser],
    model_option: Callable[..., None],
    pipeline_options: Callable[..., None],
    make_pipeline: Callable,
) -> None:
    """Add `watch` and `report` with the shared model and detector options of facemask.cli."""
    db_help = "records database: a SQLAlchemy URL (default: $FACEMASK_DB, else records/facemask.db)"
    p = command(
        "watch",
        help="watch cameras and record what they see",
        description="Analyse each camera's newest frame FPS times a second: count face "
        "detections per minute and each tracked person once, by the label most of their "
        "frames had, into the records database. Runs until SIGTERM / Ctrl+C or --duration.",
    )
    p.add_argument(
        "--camera",
        action="append",
        metavar="NAME=URL",
        help="a camera: rtsp://..., http(s)://... (MJPEG), a video file (looped) or a device "
        "index; repeat for more",
    )
    p.add_argument("--cameras", metavar="FILE", help='a TOML file: [cameras] NAME = "URL" lines')
    p.add_argument("--db", help=db_help)
    p.add_argument(
        "--fps", type=float, default=DEFAULT_FPS, help="frames analysed per second and camera"
    )
    p.add_argument("--duration", type=float, help="stop after this many seconds")
    p.add_argument(
        "--keep-days",
        type=int,
        help="records older than this many days are deleted, hourly (90 when not given)",
    )
    p.add_argument(
        "--live-dir",
        help="folder for each camera's latest annotated frame and status (the Monitor page's; "
        "default: records/live or $FACEMASK_LIVE_DIR)",
    )
    p.add_argument(
        "--lease-ttl",
        type=float,
        default=15.0,
        metavar="S",
        help="several watchers may name the same cameras (one database): each camera is "
        "watched by one of them, which renews its lease every S/3 seconds; when it dies, "
        "another takes the camera over within about S + S/3 seconds",
    )
    a = p.add_argument_group(
        "alerts", "rules for every camera (a camera's own `alerts` table in --cameras wins)",
        argument_default=argparse.SUPPRESS,  # not given: the cameras file's [alerts] decides
    )  # fmt: skip
    a.add_argument("--alert-unmasked-person", action="store_true",
                   help="alert when a person without a mask is seen")  # fmt: skip
    a.add_argument("--alert-unmasked-share", type=float, metavar="PCT",
                   help="alert when more than PCT%% of people seen wore no mask ...")  # fmt: skip
    a.add_argument("--alert-minutes", type=float, metavar="MIN",
                   help="... over the people first seen in the last MIN minutes (10)")  # fmt: skip
    a.add_argument("--webhook", metavar="URL",
                   help="POST each alert as JSON here (default: $FACEMASK_WEBHOOK; "
                   "a URL in the environment stays out of `ps`)")  # fmt: skip
    a.add_argument("--snapshots", metavar="DIR", nargs="?", const="",
                   help="keep an annotated JPEG of each alert in DIR (default: "
                   "$FACEMASK_SNAPSHOTS, else records/snapshots); off when not given")  # fmt: skip
    a.add_argument("--snapshot-days", type=int, metavar="N",
                   help="delete snapshots older than N days (7)")  # fmt: skip
    model_option(p, DEFAULT_MODEL, positional=False)
    pipeline_options(p, "webcam")
    p.set_defaults(func=cmd_watch, make_pipeline=make_pipeline)

    p = command(
        "report",
        help="print what the watcher recorded",
        description="One line per camera and minute: people first seen in that minute by "
        "their voted label, and analysed face detections by label. --json prints JSON Lines "
        '{"camera", "minute", "people", "faces"} (the contract in the README).',
    )
    p.add_argument("--db", help=db_help)
    p.add_argument("--camera", help="only this camera")
    p.add_argument("--since", metavar="ISO", help="only minutes from this time on (UTC if no zone)")
    p.add_argument("--json", action="store_true", help="print JSON Lines")
    p.set_defaults(func=cmd_report)


def cmd_watch(args: argparse.Namespace) -> int:
    import logging
    import os
    import signal
    import socket
    import uuid

    from facemask.cameras import configured_cameras
    from facemask.records import RecordStore, RecordWriter, live_dir, snapshot_dir
    from facemask.records.alerts import alert_config
    from facemask.records.leases import CameraLeases
    from facemask.records.store import RETENTION_DAYS
    from facemask.watch import Watcher

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)  # one line per migration step
    specs = configured_cameras(args.camera or (), args.cameras)
    if args.duration is not None and args.duration <= 0:
        raise FacemaskError(
            f"--duration must be a positive number of seconds, not {args.duration}."
        )
    if not 1 <= args.lease_ttl <= 600:
        raise FacemaskError(f"--lease-ttl must be from 1 to 600 seconds, not {args.lease_ttl:g}.")
    keep_days = RETENTION_DAYS if args.keep_days is None else args.keep_days
    if keep_days < 1:
        raise FacemaskError(f"--keep-days must be at least 1, not {keep_days}.")
    given = vars(args)
    snapshots = given.get("snapshots")
    alerts = alert_config(
        args.cameras,
        unmasked_person=given.get("alert_unmasked_person"),
        unmasked_share=given.get("alert_unmasked_share"),
        share_minutes=given.get("alert_minutes"),
        webhook=given.get("webhook") or os.environ.get("FACEMASK_WEBHOOK"),
        snapshots=None if snapshots is None else snapshots or snapshot_dir(),
        snapshot_days=given.get("snapshot_days"),
    )
    # a bad URL or an unreachable database fails before the model loads
    store = RecordStore(args.db, retention_days=keep_days)
    pipeline = args.make_pipeline(args.model, args.detector, args.runtime)
    writer = RecordWriter(store).start()
    live = Path(args.live_dir) if args.live_dir else live_dir()
    holder = f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    leases = CameraLeases(store, holder, ttl=args.lease_ttl)
    watcher = Watcher(specs, pipeline, writer, fps=args.fps, live_dir=live, alerts=alerts,
                      leases=leases)  # fmt: skip
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: watcher.stop())
    print(f"Watching {len(specs)} camera(s) into {store}; stop with Ctrl+C.", file=sys.stderr)
    summary = watcher.run(args.duration)
    store.close()
    analysed = ", ".join(f"{name}: {n}" for name, n in summary.analysed.items())
    print(f"Stopped after {summary.seconds:.0f} s; frames analysed: {analysed}.", file=sys.stderr)
    return 0 if summary.stored else 1


def cmd_report(args: argparse.Namespace) -> int:
    from datetime import datetime

    from facemask.records import RecordStore

    since = None
    if args.since:
        try:
            since = datetime.fromisoformat(args.since)
        except ValueError as exc:
            raise FacemaskError(
                f"--since {args.since!r} is not an ISO 8601 time (e.g. 2026-12-03T09:00Z)."
            ) from exc
    store = RecordStore(args.db, create=False)
    try:
        minutes = store.minutes(camera=args.camera, since=since)
    finally:
        store.close()
    for minute in minutes:
        line = minute.as_json()
        if args.json:
            print(json.dumps(line))
        else:
            people = ", ".join(f"{k} {v}" for k, v in line["people"].items()) or "-"
            faces = ", ".join(f"{k} {v}" for k, v in line["faces"].items()) or "-"
            print(f"{line['camera']}  {line['minute']}  people: {people}  faces: {faces}")
    return 0
