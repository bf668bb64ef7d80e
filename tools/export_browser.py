"""Write a model folder's in-browser TF.js export (tfjs_mixed/), checked on its test split.

    .venv/bin/python tools/export_browser.py models/mobilenetv2 [--data DIR]

The test split of the model's dataset (the card's, or --data) is cropped as in training; the
mixed uint8/float16 export is measured in real TF.js against Keras on every crop (agreement and
accuracy), and card.json records it ("exports", "serving_browser"). `facemask export` and
training write the same export for new models.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from facemask.classify import read_card
from facemask.data import extract_crops, resize_crops, scan_dataset, split_dataset
from facemask.detect import FaceDetector
from facemask.export import export_browser
from facemask.train import TRAINING_DETECTOR


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--data", help="dataset folder (default: the one in the card)")
    args = parser.parse_args()
    card = read_card(args.model_dir)
    scan = scan_dataset(args.data or card["dataset"]["path"], labels=card["labels"])
    test = split_dataset(scan, seed=card.get("seed", 0))["test"]
    crops = extract_crops([scan.items[i] for i in test], FaceDetector(TRAINING_DETECTOR))
    x_test = resize_crops(crops.crops, card["input_size"])
    export = export_browser(args.model_dir, x_test, crops.labels)
    export.pop("float16_weights")
    print(
        json.dumps(
            {**export, "serving_browser": read_card(args.model_dir)["serving_browser"]}, indent=2
        )
    )


if __name__ == "__main__":
    main()
