"""Publish a finished run as a shipped model: copy it to models/<name>/ and write MODEL_CARD.md.

    .venv/bin/python tools/publish_model.py RUN_DIR NAME [--only FILE ...] [--note TEXT ...]
                                            [--tradeoff ROWS.json] [--candidates ROWS.json]
                                            [--threshold LABEL=T --threshold-how TEXT]
                                            [--crop-margin M --crop-margin-how TEXT]

--only keeps just the named files (plus card.json and the run's records), for models too large
to commit whole; the card says which files were left out and how to rebuild them.
--threshold writes the card's decision rule (`thresholds`, facemask.classify.decide_indices) and
--threshold-how says how it was chosen. --crop-margin sets the context the app cuts around each
face for this model (card `crop_margin`; by default the margin its training crops had, which
the card keeps under `training`), --crop-margin-how says how it was chosen. Absolute paths in
the published records become relative to the repository (or a bare file name), so no machine's
layout is committed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from facemask.card import card_markdown  # noqa: E402
from facemask.classify import read_card  # noqa: E402
from facemask.files import (  # noqa: E402
    CARD_FILE,
    CONFIG_FILE,
    DATA_REPORT_FILE,
    EVENTS_FILE,
    HISTORY_FILE,
    LOG_FILE,
    METRICS_FILE,
    MODEL_CARD_MD,
    PID_FILE,
)
from facemask.runs import safe_name  # noqa: E402

RECORDS = (CARD_FILE, CONFIG_FILE, HISTORY_FILE, METRICS_FILE, DATA_REPORT_FILE)
PATH_RECORDS = (CARD_FILE, CONFIG_FILE, EVENTS_FILE)


ABSOLUTE_PATH = re.compile(r"(?<![\w.~/:])/[\w.+-]+(?:/[\w.+-]+)*")


def relative_paths(value, repo: Path = REPO):
    """`value` with every absolute path in its strings made relative to the repository when it
    lies beside it (../shared/...), else cut to its last part."""
    if isinstance(value, dict):
        return {k: relative_paths(v, repo) for k, v in value.items()}
    if isinstance(value, list):
        return [relative_paths(v, repo) for v in value]
    if isinstance(value, str):
        return ABSOLUTE_PATH.sub(lambda m: _relative(Path(m.group(0)), repo), value)
    return value


def _relative(path: Path, repo: Path) -> str:
    return os.path.relpath(path, repo) if path.is_relative_to(repo.parent) else path.name


def _relativise_records(target: Path) -> None:
    for name in PATH_RECORDS:
        path = target / name
        if not path.is_file():
            continue
        if path.suffix == ".jsonl":
            lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
            text = "".join(json.dumps(relative_paths(line)) + "\n" for line in lines)
        else:
            text = json.dumps(relative_paths(json.loads(path.read_text())), indent=2) + "\n"
        path.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("name")
    parser.add_argument("--only", nargs="*", help="model files to keep (default: all)")
    parser.add_argument("--note", action="append", default=[], help="a line for the card's notes")
    parser.add_argument(
        "--tradeoff", type=Path, help="rows from tools/tradeoff.py --output, kept in the card"
    )
    parser.add_argument(
        "--candidates",
        type=Path,
        help="tools/tradeoff.py --scenes --threshold-for rows comparing candidate models",
    )
    parser.add_argument("--threshold", help="decision rule LABEL=T: LABEL only when p >= T")
    parser.add_argument("--threshold-how", help="how the threshold was chosen (for the card)")
    parser.add_argument("--crop-margin", type=float, help="the crop margin the app serves with")
    parser.add_argument("--crop-margin-how", help="how the crop margin was chosen (for the card)")
    parser.add_argument(
        "--threshold-metrics",
        type=Path,
        help="`facemask evaluate MODEL --data DIR --split test --small-faces --output` JSON of "
        "the model with its threshold: the test figures under the decision rule",
    )
    args = parser.parse_args()

    target = REPO / "models" / safe_name(args.name)
    if target.exists():
        shutil.rmtree(target)
    if args.only is None:
        shutil.copytree(args.run_dir, target, ignore=shutil.ignore_patterns(PID_FILE, LOG_FILE))
    else:
        target.mkdir(parents=True)
        for name in [*RECORDS, *args.only]:
            src = args.run_dir / name
            if src.is_dir():
                shutil.copytree(src, target / name)
            elif src.is_file():
                shutil.copy2(src, target / name)
    _relativise_records(target)
    card = json.loads((target / CARD_FILE).read_text())
    card["name"] = args.name
    if args.threshold:
        label, _, value = args.threshold.partition("=")
        card["thresholds"] = {label: float(value)}
        card["threshold_choice"] = {"how": args.threshold_how or "not recorded"}
        if args.threshold_metrics:
            measured = json.loads(args.threshold_metrics.read_text())
            card["threshold_choice"]["test"] = measured["all"]
            card["threshold_choice"]["test_small_faces"] = measured.get("small_faces")
    if args.crop_margin is not None:
        card["crop_margin"] = args.crop_margin
        card["crop_margin_choice"] = {"how": args.crop_margin_how or "not recorded"}
    if args.candidates:
        card["candidates"] = json.loads(args.candidates.read_text())
    card["files_committed"] = sorted(p.name for p in target.iterdir())
    card["notes"] = [*card.get("notes", []), *args.note]
    if args.tradeoff:
        card["tradeoff"] = json.loads(args.tradeoff.read_text())
        for row in card["tradeoff"]:  # its own row was timed on a quieter machine than export
            mine = row.get("model") == args.name and row.get("input_size") == card["input_size"]
            if mine and row.get("ms_per_crop"):
                card["latency_ms"] = {k: round(v, 3) for k, v in row["ms_per_crop"].items()}
    (target / CARD_FILE).write_text(json.dumps(card, indent=2) + "\n")
    read_card(target)  # the card must still load (labels, size, thresholds, crop margin)
    (target / MODEL_CARD_MD).write_text(card_markdown(card))
    print(target)


if __name__ == "__main__":
    main()
