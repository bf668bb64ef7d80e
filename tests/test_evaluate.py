"""Metrics checked against answers worked out by hand."""

import numpy as np
import pytest

from facemask.evaluate import classification_metrics, degrade, format_metrics, roc_auc

LABELS = ["with_mask", "without_mask"]


def test_metrics_match_a_hand_computed_case():
    y = [0, 0, 0, 1, 1]
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.4, 0.6], [0.3, 0.7], [0.6, 0.4]])
    m = classification_metrics(y, probs, LABELS)
    assert m["accuracy"] == 0.6
    assert m["confusion"] == [[2, 1], [1, 1]]
    assert m["per_class"]["with_mask"] == {
        "precision": 0.6667,
        "recall": 0.6667,
        "f1": 0.6667,
        "support": 3,
    }
    assert m["per_class"]["without_mask"]["precision"] == 0.5
    # with_mask scores 0.9 0.8 0.4 | 0.3 0.6: 5 of 6 (pos, neg) pairs ranked right
    assert m["roc_auc"] == pytest.approx(5 / 6, abs=1e-4)
    assert "confusion" in format_metrics(m, LABELS)


def test_roc_auc_handles_ties_and_missing_classes():
    assert roc_auc(np.array([1, 0]), np.array([0.5, 0.5])) == 0.5
    assert roc_auc(np.array([1, 1]), np.array([0.2, 0.4])) is None


def test_three_classes_are_supported():
    labels = ["a", "b", "c"]
    m = classification_metrics([0, 1, 2], np.eye(3), labels)
    assert m["accuracy"] == 1.0 and m["roc_auc"] == 1.0 and len(m["confusion"]) == 3


def test_degrade_blurs_detail_but_keeps_size():
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 255, (2, 96, 96, 3), dtype=np.uint8)
    out = degrade(crops, 24)
    assert out.shape == crops.shape
    assert (
        np.abs(np.diff(out.astype(int), axis=2)).mean()
        < np.abs(np.diff(crops.astype(int), axis=2)).mean() / 3
    )
