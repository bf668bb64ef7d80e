"""Classifier metrics: accuracy, per-class precision / recall / F1, confusion matrix, ROC AUC;
and the same on faces degraded to the small, soft crops that real video gives."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import cv2
import numpy as np

from facemask import BARE, MASKED, WORN_WRONG
from facemask.classify import decide_indices

SMALL_FACE_SIZES = (24, 32, 48)
"""Sides (px) test crops are shrunk to, then scaled back up, for the small-face check."""


def roc_auc(positive: np.ndarray, scores: np.ndarray) -> float | None:
    """Area under the ROC curve (Mann-Whitney U with tied ranks); None if one class is absent."""
    positive = np.asarray(positive, dtype=bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores), dtype=np.float64)
    sorted_scores = np.asarray(scores)[order]
    i = 0
    while i < len(sorted_scores):  # average ranks over ties
        j = i
        while j + 1 < len(sorted_scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def classification_metrics(
    y_true: Sequence[int],
    probabilities: np.ndarray,
    labels: Sequence[str],
    thresholds: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """Accuracy, per-class P/R/F1, confusion (rows true, columns predicted), ROC AUC.

    Labels are decided by a card's `thresholds` (facemask.classify.decide_indices; none: argmax).
    """
    y_true = np.asarray(y_true, dtype=int)
    probabilities = np.asarray(probabilities, dtype=np.float64).reshape(-1, len(labels))
    y_pred = decide_indices(probabilities, labels, thresholds)
    k = len(labels)
    confusion = np.zeros((k, k), dtype=int)
    np.add.at(confusion, (y_true, y_pred), 1)
    per_class = {}
    for i, name in enumerate(labels):
        tp = confusion[i, i]
        predicted, actual = confusion[:, i].sum(), confusion[i, :].sum()
        precision = tp / predicted if predicted else 0.0
        recall = tp / actual if actual else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[name] = {
            "precision": round(float(precision), 4),
            "recall": round(float(recall), 4),
            "f1": round(float(f1), 4),
            "support": int(actual),
        }
    aucs = [roc_auc(y_true == i, probabilities[:, i]) for i in range(k)]
    aucs = [a for a in aucs if a is not None]
    return {
        "n": int(len(y_true)),
        "accuracy": round(float((y_pred == y_true).mean()) if len(y_true) else 0.0, 4),
        "macro_f1": round(macro_f1(per_class) or 0.0, 4),
        "per_class": per_class,
        "confusion": confusion.tolist(),
        # binary: AUC of class 0's score (same for both classes); more classes: macro one-vs-rest
        "roc_auc": round(float(aucs[0] if k == 2 else np.mean(aucs)), 4) if aucs else None,
    }


def macro_f1(per_class: Mapping[str, Any]) -> float | None:
    """The unweighted mean F1 of the classes present (support > 0) in a metrics block's
    "per_class"; None when it has no such class or an F1 is missing."""
    if not isinstance(per_class, Mapping):
        return None
    present = [c for c in per_class.values() if isinstance(c, Mapping) and c.get("support")]
    scores = [c.get("f1") for c in present]
    if not scores or not all(isinstance(s, (int, float)) for s in scores):
        return None
    return float(np.mean(scores))


def mask_figures(metrics: Mapping[str, Any], labels: Sequence[str]) -> dict[str, Any]:
    """From classification_metrics: the errors that matter at a door, bare faces called masked
    (count, of how many, share) and masked faces recalled; {} without both labels. A model
    with `mask_worn_incorrectly` adds that class's recall and precision."""
    if MASKED not in labels or BARE not in labels:
        return {}
    row = metrics["confusion"][list(labels).index(BARE)]
    called, bare = int(row[list(labels).index(MASKED)]), int(sum(row))
    figures = {
        "bare_called_masked": called,
        "bare_faces": bare,
        "bare_called_masked_share": round(called / bare, 4) if bare else None,
        "masked_recall": metrics["per_class"][MASKED]["recall"],
    }
    wrong = metrics["per_class"].get(WORN_WRONG) if WORN_WRONG in labels else None
    if wrong:
        figures.update(
            worn_wrong_recall=wrong["recall"],
            worn_wrong_precision=wrong["precision"],
            worn_wrong_faces=wrong["support"],
        )
    return figures


def degrade(crops: np.ndarray, side: int) -> np.ndarray:
    """Shrink crops to `side` px and scale them back: what a far-away face looks like."""
    size = crops.shape[1]
    out = np.empty_like(crops)
    for i, crop in enumerate(crops):
        small = cv2.resize(crop, (side, side), interpolation=cv2.INTER_AREA)
        out[i] = cv2.resize(small, (size, size), interpolation=cv2.INTER_LINEAR)
    return out


def small_face_metrics(
    predict: Callable[[np.ndarray], np.ndarray],
    crops: np.ndarray,
    y_true: Sequence[int],
    labels: Sequence[str],
    sides: Sequence[int] = SMALL_FACE_SIZES,
    thresholds: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """Metrics on the crops degraded to each small size, and pooled over all sizes."""
    per_size, pooled_probs = {}, []
    for side in sides:
        probs = predict(degrade(crops, side))
        pooled_probs.append(probs)
        per_size[str(side)] = classification_metrics(y_true, probs, labels, thresholds)["accuracy"]
    pooled = classification_metrics(
        np.tile(np.asarray(y_true), len(sides)), np.concatenate(pooled_probs), labels, thresholds
    )
    pooled["accuracy_by_side_px"] = per_size
    return pooled


def format_metrics(metrics: dict[str, Any], labels: Sequence[str], title: str = "") -> str:
    """Metrics as a small text report for the terminal."""
    lines = [title] if title else []
    lines.append(
        f"  images: {metrics['n']}   accuracy: {metrics['accuracy']:.2%}   "
        f"macro F1: {metrics['macro_f1']:.3f}   ROC AUC: {metrics['roc_auc']}"
    )
    lines.append(f"  {'class':<24}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}")
    for name in labels:
        c = metrics["per_class"][name]
        lines.append(
            f"  {name:<24}{c['precision']:>10.3f}{c['recall']:>10.3f}{c['f1']:>10.3f}"
            f"{c['support']:>10}"
        )
    width = max(len(n) for n in labels) + 2
    lines.append("  confusion (rows: true, columns: predicted)")
    lines.append("  " + " " * width + "".join(f"{n[:14]:>16}" for n in labels))
    for name, row in zip(labels, metrics["confusion"], strict=True):
        lines.append(f"  {name:<{width}}" + "".join(f"{v:>16}" for v in row))
    if "accuracy_by_side_px" in metrics:
        sides = ", ".join(f"{s} px: {a:.2%}" for s, a in metrics["accuracy_by_side_px"].items())
        lines.append(f"  accuracy by face size: {sides}")
    return "\n".join(lines)


def threshold_curve(
    y_true: Sequence[int], scores: np.ndarray, positive: int, thresholds: Sequence[float]
) -> list[dict[str, float]]:
    """For each threshold T on the positive label's probability: its recall, and the share of
    the other faces called positive (p >= T), e.g. bare faces called masked."""
    y_true = np.asarray(y_true, dtype=int)
    scores = np.asarray(scores, dtype=np.float64)
    pos, neg = y_true == positive, y_true != positive
    return [
        {
            "threshold": float(t),
            "recall": float((scores[pos] >= t).mean()) if pos.any() else 0.0,
            "others_called": float((scores[neg] >= t).mean()) if neg.any() else 0.0,
            "others_called_n": int((scores[neg] >= t).sum()),
        }
        for t in thresholds
    ]


def choose_threshold(
    y_true: Sequence[int], scores: np.ndarray, positive: int, min_recall: float, step: float = 0.01
) -> float:
    """The highest threshold on a grid of `step` that keeps the positive label's recall at or
    above `min_recall`: the fewest other faces called positive at that recall."""
    y_true = np.asarray(y_true, dtype=int)
    positives = np.sort(np.asarray(scores, dtype=np.float64)[y_true == positive])
    if not len(positives):
        raise ValueError("no faces of the positive label to keep recalled")
    allowed_misses = int(np.floor((1.0 - min_recall) * len(positives) + 1e-9))
    exact = positives[allowed_misses]  # recall stays >= min_recall for any T <= this score
    return float(np.floor(exact / step + 1e-9) * step)
