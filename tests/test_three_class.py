"""A dataset with three class folders trains a three-label model that every surface reads."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import has_imagenet_weights

from facemask import WORN_WRONG
from facemask import worn_masks as wm
from facemask.charts import confusion_figure
from facemask.classify import MaskClassifier
from facemask.compare import comparison_rows, confusions, per_class_rows
from facemask.detect import WEBCAM, FaceDetector
from facemask.images import load_image
from facemask.pipeline import Pipeline


@pytest.fixture(scope="module")
def three_class_model(tmp_path_factory: pytest.TempPathFactory, mini_dataset: Path) -> Path:
    """MobileNetV2 at 64 px trained briefly on the mini dataset plus masks drawn worn wrong."""
    from facemask.runs import RunStore
    from facemask.train import TrainConfig, train

    data = tmp_path_factory.mktemp("three") / "data"
    made = wm.make_dataset(mini_dataset / "without_mask", data, seed=1, right_share=0.0,
                           log=lambda _: None)  # fmt: skip
    assert made[WORN_WRONG] >= 20
    for label in ("with_mask", "without_mask"):
        shutil.copytree(mini_dataset / label, data / label)
    (data / "manifest.csv").unlink()
    store = RunStore(tmp_path_factory.mktemp("runs"), tmp_path_factory.mktemp("models"))
    config = TrainConfig(
        data=str(data),
        input_size=64,
        epochs_head=1,
        epochs_fine=0,
        batch_size=16,
        weights="imagenet" if has_imagenet_weights() else "none",
        export_tfjs=False,
        name="three",
        command="tests/test_three_class.py",
    )
    return train(config, store, run_id="three", log=lambda _: None)


def test_three_folders_give_three_labels_and_3x3_figures(three_class_model: Path) -> None:
    rows = comparison_rows([three_class_model])
    (name, _, labels, matrix) = confusions(rows)[0]
    assert labels == [WORN_WRONG, "with_mask", "without_mask"] and name == "three"
    assert len(matrix) == 3 and all(len(row) == 3 for row in matrix)
    assert np.array(confusion_figure(labels, matrix, name).data[0].z).shape == (3, 3)
    per_class = per_class_rows(rows)
    assert [r["Label"] for r in per_class] == labels
    assert sum(r["Faces"] for r in per_class) == sum(map(sum, matrix))


def test_the_served_model_names_worn_wrong_faces(three_class_model: Path, face_images) -> None:
    pipeline = Pipeline(FaceDetector(WEBCAM), MaskClassifier(three_class_model))
    assert pipeline.labels == (WORN_WRONG, "with_mask", "without_mask")
    seen = 0
    for path in face_images:
        for det in pipeline.process(load_image(path)):
            assert det.label in pipeline.labels and len(det.probabilities) == 3
            assert sum(det.probabilities) == pytest.approx(1.0, abs=1e-3)
            seen += 1
    assert seen > 0


def test_shipped_three_class_model_is_complete_and_reads_worn_wrong_faces(face_images) -> None:
    folder = Path(__file__).parents[1] / "models" / "mobilenetv2-3class"
    card = json.loads((folder / "card.json").read_text())
    assert card["labels"] == [WORN_WRONG, "with_mask", "without_mask"]
    for name in ("model.tflite", "model_int8.tflite", "tfjs/model.json", "MODEL_CARD.md"):
        assert (folder / name).is_file(), name
    assert sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) < 25 * 2**20
    for name in ("card.json", "config.json", "MODEL_CARD.md"):
        text = (folder / name).read_text()
        assert not any(prefix in text for prefix in ("/work/", "/root/", "/tmp/", "/home/"))
    pipeline = Pipeline(FaceDetector(WEBCAM), MaskClassifier(folder))
    assert pipeline.classifier.thresholds == {"with_mask": 0.9}
    bare = load_image(next(p for p in face_images if p.name.startswith("without_mask")))
    points = wm.face_points(bare, pipeline.detector, wm.fm.FaceMesh())
    made = wm.draw_mask(bare, points, "on_chin", np.random.default_rng(0), shape="surgical")
    labels = [d.label for d in pipeline.process(made.image)]
    assert labels and labels[0] != "with_mask"  # a mask on the chin is not a mask worn
