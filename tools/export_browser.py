"""Write a model folder's in-browser TF.js export (tfjs_mixed/), checked on its test split.

    .venv/bin/python tools/export_browser.py models/mobilenetv2 [--data DIR]

The test split of the model's dataset (the card's, or --data) is cropped as the model sees it; the
mixed uint8/float16 export is measured in real TF.js against Keras on every crop (agreement and
accuracy), and card.json records it ("exports", "serving_browser"). `facemask export` and
training write the same export for new models.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from facemask.classify import read_card
from facemask.data import model_test_crops
from facemask.datasets import find_dataset
from facemask.export import export_browser


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--data", help="dataset folder (default: the one in the card)")
    args = parser.parse_args()
    card = read_card(args.model_dir)
    data = args.data or find_dataset(card["dataset"]["path"])
    if not data:
        raise SystemExit("The card's dataset is not on this machine: give --data DIR.")
    x_test, y_test = model_test_crops(card, data)
    export = export_browser(args.model_dir, x_test, y_test)
    export.pop("float16_weights")
    print(
        json.dumps(
            {**export, "serving_browser": read_card(args.model_dir)["serving_browser"]}, indent=2
        )
    )


if __name__ == "__main__":
    main()
