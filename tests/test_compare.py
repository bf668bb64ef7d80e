"""facemask.compare: comparison rows from real model cards, curves from a real history."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from facemask import history
from facemask.charts import confusion_figure, curves_figure
from facemask.compare import (
    COLUMNS,
    comparison_rows,
    confusion,
    curves,
    display_row,
    latency_per_face_ms,
    measure_latency_ms,
    measure_rows,
    size_text,
    table_notes,
    unmeasured,
    with_measured_latency,
)
from facemask.evaluate import classification_metrics, macro_f1

VGG_CARD = {
    "name": "vgg-run",
    "architecture": "VGG-16",
    "backbone": "vgg16",
    "labels": ["with_mask", "without_mask"],
    "input_size": 128,
    "weights": "none",
    "parameters": {"total": 14_780_610, "trainable_at_end": 65_794},
    "files": {"model.tflite": 59_000_000, "model.keras": 177_000_000},
    "serving": {"file": "model.tflite", "runtime": "tflite"},
    "metrics": {
        "test": {
            "accuracy": 0.9,
            "per_class": {
                "with_mask": {"precision": 0.95, "recall": 0.85, "f1": 0.8, "support": 20},
                "without_mask": {"precision": 0.86, "recall": 0.95, "f1": 0.9, "support": 20},
            },
            "confusion": [[17, 3], [1, 19]],
        },
        "test_small_faces": {"accuracy": 0.7},
    },
    "latency_ms": {"model.tflite": {"median": 310.0, "p90": 330.0}},
    "training": {"wall_time_s": 5400.0},
}


def write_model(folder: Path, card: dict) -> Path:
    folder.mkdir(parents=True)
    (folder / "card.json").write_text(json.dumps(card))
    return folder


def test_rows_come_from_each_card(tiny_model_dir: Path, tmp_path: Path) -> None:
    vgg = write_model(tmp_path / "vgg-run", VGG_CARD)
    (tmp_path / "not-a-model").mkdir()
    rows = comparison_rows([tiny_model_dir, vgg, tmp_path / "not-a-model"])

    assert [r["name"] for r in rows] == ["tiny", "vgg-run"]
    assert all(set(COLUMNS) <= set(r) for r in rows)
    tiny_card = json.loads((tiny_model_dir / "card.json").read_text())
    tiny = rows[0]
    assert tiny["architecture"] == "MobileNetV2"
    assert tiny["input_size"] == tiny_card["input_size"]
    assert tiny["accuracy"] == pytest.approx(tiny_card["metrics"]["test"]["accuracy"])
    assert tiny["parameters"] == tiny_card["parameters"]["total"]
    served = tiny_model_dir / tiny_card["serving"]["file"]
    assert tiny["size_mb"] == pytest.approx(served.stat().st_size / 1e6)
    assert tiny["training_s"] == pytest.approx(tiny_card["training"]["wall_time_s"])

    vgg_row = rows[1]
    assert vgg_row["architecture"] == "VGG-16"
    assert vgg_row["macro_f1"] == pytest.approx(0.85)
    assert vgg_row["small_face_accuracy"] == pytest.approx(0.7)
    assert vgg_row["size_mb"] == pytest.approx(59.0)
    assert vgg_row["latency_ms"] == pytest.approx(310.0)
    assert vgg_row["parameters"] == 14_780_610


def test_missing_numbers_stay_missing(tmp_path: Path) -> None:
    card = {"labels": ["a", "b"], "input_size": 64, "metrics": {"test": {"accuracy": "n/a"}}}
    row = comparison_rows([write_model(tmp_path / "bare", card)])[0]
    assert row["name"] == "bare"
    assert row["accuracy"] is None and row["macro_f1"] is None and row["latency_ms"] is None
    assert row["size_mb"] is None  # no file on disk and none in the card


@pytest.mark.parametrize(
    ("latency", "expected"),
    [
        (4.5, 4.5),
        ({"per_face": 2.0, "batch_8": 9.0}, 2.0),
        ({"model_int8.tflite": 1.5, "model.tflite": 3.0}, 1.5),
        ({"tflite": {"median": 2.5}}, 2.5),
        ({"something_else": 1.0}, None),
        (None, None),
    ],
)
def test_latency_per_face(latency, expected) -> None:
    card = {"serving": {"file": "model_int8.tflite"}, "latency_ms": latency}
    assert latency_per_face_ms(card) == expected


def test_macro_f1_is_the_unweighted_mean_of_the_classes_present() -> None:
    per_class = VGG_CARD["metrics"]["test"]["per_class"]
    assert macro_f1(per_class) == pytest.approx(0.85)
    absent = {"f1": 0.0, "support": 0}  # a class the split has no face of does not count
    assert macro_f1({**per_class, "mask_weared_incorrect": absent}) == pytest.approx(0.85)
    assert macro_f1({}) is None and macro_f1(None) is None
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7]])
    metrics = classification_metrics([0, 0, 1], probs, ["a", "b"])
    assert metrics["macro_f1"] == round(macro_f1(metrics["per_class"]), 4)  # one definition


def test_curves_follow_the_history(tiny_model_dir: Path, tmp_path: Path) -> None:
    rows = history.read(tiny_model_dir)
    series = curves(tiny_model_dir)
    assert len(series["epoch"]) == len(rows) >= 2
    assert series["epoch"] == sorted(series["epoch"])
    assert {"head", "fine"} <= set(series["phase"])
    assert series["loss"] == pytest.approx([row["loss"] for row in rows])
    assert series["val_accuracy"] == pytest.approx([row["val_accuracy"] for row in rows])
    assert curves(tmp_path) == {}

    other = Path(shutil.copytree(tiny_model_dir, tmp_path / "other"))
    figure = curves_figure({"tiny": series, "other": curves(other)}, "loss")
    names = [trace.name for trace in figure.data]
    assert names == ["tiny · train", "tiny · val", "other · train", "other · val"]
    assert list(figure.data[1].y) == pytest.approx(series["val_loss"])


def test_confusion_matrix_of_a_card(tiny_model_dir: Path) -> None:
    card = json.loads((tiny_model_dir / "card.json").read_text())
    labels, matrix = confusion(card)
    assert labels == card["labels"]
    support = sum(c["support"] for c in card["metrics"]["test"]["per_class"].values())
    assert sum(map(sum, matrix)) == support
    figure = confusion_figure(labels, matrix, "tiny")
    assert [list(row) for row in figure.data[0].z] == matrix
    assert confusion({"labels": ["a", "b"], "metrics": {}}) == ([], [])


def test_latency_is_measured_with_the_served_file(tiny_model_dir: Path) -> None:
    from facemask.classify import MaskClassifier

    classifier = MaskClassifier(tiny_model_dir)
    latency = measure_latency_ms(classifier, runs=5, warmup=1)
    assert classifier.runtime == "tflite"
    assert 0.0 < latency < 2000.0


def test_the_table_text_of_a_row(tmp_path: Path) -> None:
    (row,) = comparison_rows([write_model(tmp_path / "vgg-run", VGG_CARD)])
    shown = display_row(row)
    assert list(shown) == list(COLUMNS.values())
    assert shown["Test accuracy"] == "90.0%" and shown["Parameters"] == "14.78 M"
    assert shown["Training time"] == "90.0 min" and shown["CPU latency / face (ms)"] == "310.0"
    unknown = display_row({**row, "latency_ms": None, "small_face_accuracy": None})
    assert unknown["CPU latency / face (ms)"] == "—" and unknown["Small-face accuracy"] == "—"
    assert table_notes([row]) == [
        "VGG-16 vs MobileNetV2: train the missing backbone above to see both side by side."
    ]
    assert [size_text(n) for n in (512_000, 8_900_000, 12_345)] == ["0.5 MB", "8.9 MB", "12 KB"]


def test_latency_measured_here_fills_only_cards_without_it(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    no_latency = {k: v for k, v in VGG_CARD.items() if k != "latency_ms"}
    empty = write_model(tmp_path / "cardonly", no_latency)  # a card, no model file to time
    rows = comparison_rows([tiny_model_dir, empty, write_model(tmp_path / "v", VGG_CARD)])
    rows[0]["latency_ms"] = None  # as if the tiny model's card had none
    assert [r["dir"] for r in unmeasured(rows)] == [str(tiny_model_dir)]  # servable and unknown
    measured: dict[str, float] = {}
    assert measure_rows(unmeasured(rows), measured) == []
    assert list(measured) == [str(tiny_model_dir)] and measured[str(tiny_model_dir)] > 0
    (failure,) = measure_rows([rows[1]], measured)  # nothing to load there: one sentence
    assert str(failure).endswith("this folder has no Keras model.")
    filled = [with_measured_latency(r, measured) for r in rows]
    assert filled[0]["latency_ms"] == measured[str(tiny_model_dir)]
    assert filled[0]["latency_measured_here"] and "latency_measured_here" not in filled[2]
    assert filled[2]["latency_ms"] == 310.0  # a card's own figure is never replaced
    assert display_row(filled[0])["CPU latency / face (ms)"].endswith(" *")
    assert table_notes(filled)[0].startswith("Latency marked * was measured here")
