"""The card's decision rule (`thresholds`): one function, used by the classifier, the pipeline,
the tracker and the metrics; checked by hand and on a real tiny model and real faces. And the
card's crop (`crop_margin`): every surface cuts faces as the model was trained on them."""

import json

import numpy as np
import pytest

from facemask.browser import component_args
from facemask.card import card_markdown, decision_text
from facemask.classify import CROP_MARGIN, MaskClassifier, decide_indices
from facemask.detect import WEBCAM, FaceDetector
from facemask.errors import ModelError
from facemask.evaluate import choose_threshold, classification_metrics, threshold_curve
from facemask.images import load_image
from facemask.pipeline import Detection, FaceTracker, Pipeline, crop_faces

LABELS = ("with_mask", "without_mask")


def test_a_label_needs_its_threshold_else_the_most_probable_other_one():
    probs = np.array([[0.9, 0.1], [0.97, 0.03], [0.2, 0.8]])
    assert decide_indices(probs, LABELS, None).tolist() == [0, 0, 1]
    assert decide_indices(probs, LABELS, {"with_mask": 0.95}).tolist() == [1, 0, 1]
    # three labels: "b" fails its threshold, so the most probable of the others ("c") wins
    three = np.array([[0.2, 0.5, 0.3], [0.1, 0.85, 0.05]])
    assert decide_indices(three, "abc", {"b": 0.6}).tolist() == [2, 1]
    # every label thresholded and none passing: the argmax
    assert (
        decide_indices(np.array([[0.6, 0.4]]), LABELS, {"with_mask": 0.9, "without_mask": 0.9})[0]
        == 0
    )


def test_metrics_count_what_the_decision_rule_decides():
    y = [0, 0, 0, 1, 1]
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.4, 0.6], [0.3, 0.7], [0.6, 0.4]])
    plain = classification_metrics(y, probs, LABELS)
    strict = classification_metrics(y, probs, LABELS, {"with_mask": 0.85})
    assert plain["confusion"] == [[2, 1], [1, 1]]
    assert strict["confusion"] == [[1, 2], [0, 2]]
    assert strict["roc_auc"] == plain["roc_auc"]  # ranking does not depend on the rule


def test_threshold_choice_keeps_the_recall_asked_for():
    y = np.array([0] * 10 + [1] * 5)
    masked = np.array([0.99, 0.98, 0.97, 0.96, 0.95, 0.9, 0.9, 0.85, 0.7, 0.6])
    bare = np.array([0.93, 0.8, 0.5, 0.2, 0.1])
    scores = np.concatenate([masked, bare])
    t = choose_threshold(y, scores, 0, min_recall=0.8)  # 2 of 10 may be missed: T <= 0.85
    assert t == pytest.approx(0.85)
    (point,) = threshold_curve(y, scores, 0, [t])
    assert point["recall"] == 0.8 and point["others_called_n"] == 1  # the 0.93 bare face
    assert choose_threshold(y, scores, 0, min_recall=1.0) == pytest.approx(0.6)


def _with_card(model_dir, **values) -> None:
    card = json.loads((model_dir / "card.json").read_text())
    card.update(values)
    (model_dir / "card.json").write_text(json.dumps(card))


def test_the_pipeline_labels_real_faces_by_the_cards_threshold(model_copy, face_images):
    plain = Pipeline(FaceDetector(WEBCAM), MaskClassifier(model_copy))
    found = {p: plain.classify_whole(load_image(p)).probabilities for p in face_images}
    path = max(found, key=lambda p: found[p][0])
    p_mask = found[path][0]
    assert p_mask > 0.5  # the tiny model calls its most masked-looking photo masked
    rgb = load_image(path)
    _with_card(model_copy, thresholds={"with_mask": min(1.0, p_mask + 1e-3)})
    strict = MaskClassifier(model_copy)
    assert strict.thresholds == {"with_mask": pytest.approx(min(1.0, p_mask + 1e-3))}
    got = Pipeline(FaceDetector(WEBCAM), strict).classify_whole(rgb)
    assert got.label == "without_mask"  # argmax would say with_mask
    assert got.confidence == pytest.approx(1.0 - p_mask, abs=1e-5)
    assert strict.decide(got.probabilities) == (1, pytest.approx(got.confidence))
    _with_card(model_copy, thresholds={"with_mask": p_mask - 1e-3})
    lenient = Pipeline(FaceDetector(WEBCAM), MaskClassifier(model_copy))
    assert lenient.classify_whole(rgb).label == "with_mask"


@pytest.mark.parametrize("bad", [{"mask": 0.5}, {"with_mask": 1.5}, ["with_mask"]])
def test_a_malformed_threshold_is_a_model_error(model_copy, bad):
    _with_card(model_copy, thresholds=bad)
    with pytest.raises(ModelError, match="thresholds"):
        MaskClassifier(model_copy)


def test_the_tracker_enters_a_thresholded_label_at_the_threshold_and_leaves_below_it():
    tracker = FaceTracker(alpha=1.0, hysteresis=0.15)  # no smoothing: the rule alone
    rule = {"with_mask": 0.95}

    def label(p_mask: float) -> str:
        det = Detection((10, 10, 50, 50), "?", 1.0, 0.9, (p_mask, 1.0 - p_mask))
        return tracker.update([det], LABELS, rule)[0].label

    assert label(0.9) == "without_mask"  # argmax would say mask
    assert label(0.96) == "with_mask"
    assert label(0.85) == "with_mask"  # held: 0.85 + 0.15 still passes 0.95
    assert label(0.7) == "without_mask"


def test_the_card_says_which_rule_labels_faces(tiny_model_dir):
    card = json.loads((tiny_model_dir / "card.json").read_text())
    assert decision_text(card) == "the most probable label"
    card["thresholds"] = {"with_mask": 0.96}
    card["threshold_choice"] = {"how": "chosen on scene faces"}
    text = card_markdown(card)
    assert "with_mask only when p(with_mask) >= 0.96" in text and "chosen on scene faces" in text


def test_the_pipeline_crops_with_the_margin_the_model_was_trained_with(model_copy, face_images):
    rgb = load_image(face_images[0])
    (face,) = FaceDetector(WEBCAM).detect(rgb)
    old = Pipeline(FaceDetector(WEBCAM), MaskClassifier(model_copy))
    assert old.margin == CROP_MARGIN  # a card from before crop_margin: the margin of that time
    _with_card(model_copy, crop_margin=0.05)
    classifier = MaskClassifier(model_copy)
    tight = Pipeline(FaceDetector(WEBCAM), classifier)
    assert tight.margin == classifier.crop_margin == 0.05
    expected = classifier.predict(crop_faces(rgb, [face.box], classifier.input_size, 0.05))
    assert np.allclose(tight.classify_boxes(rgb, [face.box]), expected)
    assert not np.allclose(old.classify_boxes(rgb, [face.box]), expected)
    assert component_args(classifier.card, 0.5, 20)["margin"] == 0.05  # the browser page too


@pytest.mark.parametrize("bad", ["wide", -0.1, 3])
def test_a_malformed_crop_margin_is_a_model_error(model_copy, bad):
    _with_card(model_copy, crop_margin=bad)
    with pytest.raises(ModelError, match="crop_margin"):
        MaskClassifier(model_copy)
