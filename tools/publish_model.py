"""Publish a finished run as a shipped model: copy it to models/<name>/ and write MODEL_CARD.md.

    .venv/bin/python tools/publish_model.py RUN_DIR NAME [--only FILE ...] [--note TEXT ...]
                                            [--tradeoff ROWS.json]

--only keeps just the named files (plus card.json and the run's records), for models too large
to commit whole; the card says which files were left out and how to rebuild them.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from facemask.card import card_markdown  # noqa: E402
from facemask.runs import safe_name  # noqa: E402

RECORDS = ("card.json", "config.json", "history.csv", "metrics.json", "data_report.json")


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
    args = parser.parse_args()

    target = REPO / "models" / safe_name(args.name)
    if target.exists():
        shutil.rmtree(target)
    if args.only is None:
        shutil.copytree(args.run_dir, target, ignore=shutil.ignore_patterns("*.pid", "train.log"))
    else:
        target.mkdir(parents=True)
        for name in [*RECORDS, *args.only]:
            src = args.run_dir / name
            if src.is_dir():
                shutil.copytree(src, target / name)
            elif src.is_file():
                shutil.copy2(src, target / name)
    card = json.loads((target / "card.json").read_text())
    card["name"] = args.name
    card["files_committed"] = sorted(p.name for p in target.iterdir())
    card["notes"] = [*card.get("notes", []), *args.note]
    if args.tradeoff:
        card["tradeoff"] = json.loads(args.tradeoff.read_text())
        for row in card["tradeoff"]:  # its own row was timed on a quieter machine than export
            mine = row.get("model") == args.name and row.get("input_size") == card["input_size"]
            if mine and row.get("ms_per_crop"):
                card["latency_ms"] = {k: round(v, 3) for k, v in row["ms_per_crop"].items()}
    (target / "card.json").write_text(json.dumps(card, indent=2) + "\n")
    (target / "MODEL_CARD.md").write_text(card_markdown(card))
    print(target)


if __name__ == "__main__":
    main()
