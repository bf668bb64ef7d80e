"""The default model the app serves: complete, loadable safely, and right on real faces."""

import json

import numpy as np
import pytest
from conftest import require_shared

from facemask.classify import MaskClassifier
from facemask.detect import PHOTO, FaceDetector
from facemask.images import load_image
from facemask.pipeline import Pipeline, crop_faces
from facemask.scenes import classify_annotated_faces, load_scenes


def test_shipped_model_folder_is_complete(shipped_model_dir):
    for name in (
        "model.keras",
        "model.tflite",
        "model_int8.tflite",
        "tfjs/model.json",
        "card.json",
        "history.csv",
        "MODEL_CARD.md",
    ):
        assert (shipped_model_dir / name).is_file(), name
    card = json.loads((shipped_model_dir / "card.json").read_text())
    assert card["labels"] == ["with_mask", "without_mask"]
    assert card["metrics"]["test"]["accuracy"] >= 0.95
    assert card["metrics"]["test_small_faces"]["accuracy"] >= 0.9
    assert (shipped_model_dir / card["serving"]["file"]).is_file()


def test_shipped_card_carries_its_decision_rule_and_no_machine_paths(shipped_model_dir):
    card = json.loads((shipped_model_dir / "card.json").read_text())
    threshold = card["thresholds"]["with_mask"]  # the key the app and the browser page read
    assert 0.5 < threshold < 1.0 and set(card["thresholds"]) == {"with_mask"}
    assert "maskilc" in card["threshold_choice"]["how"]
    assert MaskClassifier(shipped_model_dir).thresholds == {"with_mask": threshold}
    assert f"p(with_mask) >= {threshold:g}" in (shipped_model_dir / "MODEL_CARD.md").read_text()
    for name in ("card.json", "config.json", "events.jsonl", "MODEL_CARD.md"):
        text = (shipped_model_dir / name).read_text()
        for prefix in ("/work/", "/root/", "/tmp/", "/home/"):
            assert prefix not in text, f"{name} names a machine path ({prefix})"


@pytest.fixture(scope="module")
def runtimes(shipped_model_dir):
    return MaskClassifier(shipped_model_dir), MaskClassifier(shipped_model_dir, runtime="keras")


def test_served_file_and_keras_agree_on_real_face_photos(runtimes, face_images):
    served, keras_model = runtimes
    pipeline = Pipeline(FaceDetector(PHOTO), served)
    for path in face_images:
        rgb = load_image(path)
        detections = pipeline.process(rgb)
        assert len(detections) == 1, path.name
        expected = "without_mask" if path.name.startswith(("without", "astronaut")) else "with_mask"
        assert detections[0].label == expected, path.name
        crop = crop_faces(rgb, [detections[0].box], served.input_size)
        assert np.argmax(keras_model.predict(crop)) == np.argmax(served.predict(crop))


def test_second_check_on_annotated_scene_faces(runtimes):
    root = require_shared("datasets", "maskilc-scenes")
    served, _ = runtimes
    pipeline = Pipeline(FaceDetector(PHOTO), served)
    scenes = load_scenes(root)[:80]
    metrics = classify_annotated_faces(
        scenes, pipeline.classify_boxes, served.labels, served.thresholds
    )
    assert metrics["n"] >= 50
    assert metrics["accuracy"] >= 0.8, metrics
    # the card's threshold is there to stop calling bare faces masked, at little cost in masks
    assert metrics["per_class"]["without_mask"]["recall"] >= 0.9, metrics
    assert metrics["per_class"]["with_mask"]["recall"] >= 0.95, metrics


def test_bare_faces_in_a_crowd_are_called_bare(runtimes):
    """Issue 8's operating point on all maskilc faces >= 24 px, as served (the card's crop margin
    and threshold): few bare faces called masked, masks still recalled, alone and with the
    detector. Measured 19 of 498 (3.8%) and 18 of 452 (4.0%); the bounds leave a face or two for
    another CPU's float rounding, and fail if the crop or the threshold is lost (27 and 23)."""
    root = require_shared("datasets", "maskilc-scenes")
    served, _ = runtimes
    assert served.crop_margin == 0.1
    pipeline = Pipeline(FaceDetector(PHOTO), served)
    scenes = load_scenes(root)
    for detect, most in ((None, 21), (pipeline.detector.detect, 20)):
        m = classify_annotated_faces(
            scenes, pipeline.classify_boxes, served.labels, served.thresholds, detect=detect
        )
        assert m["bare_faces"] > 400 and m["bare_called_masked"] <= most, m
        assert m["masked_recall"] >= 0.98, m
