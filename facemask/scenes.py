"""Scene-level evaluation: detector recall/precision and per-class AP on labelled scene photos.

A scenes folder holds `annotations.json` (a list of {"file", "width", "height", "faces": [{"box":
[x1, y1, x2, y2], "label"}]}) and `images/`. Faces whose shorter side is below `min_face` are
"ignored" (VOC-style difficult): finding them is neither credited nor penalised, and neither is an
unmatched detection smaller than `min_face`. Many background faces carry no box, so precision and
AP are lower bounds.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from facemask import WORN_WRONG
from facemask.detect import Face
from facemask.errors import DatasetError
from facemask.face_models import box_iou
from facemask.images import load_image

Box = tuple[float, float, float, float]
SIZE_BINS: tuple[tuple[str, float, float], ...] = (
    ("24-48", 24, 48),
    ("48-96", 48, 96),
    ("96+", 96, float("inf")),
)
"""Shorter-side bins (px) for recall by face size."""


@dataclass(frozen=True)
class SceneFace:
    """One labelled face box in a scene."""

    box: Box
    label: str


@dataclass(frozen=True)
class Scene:
    """One annotated photo."""

    path: Path
    width: int
    height: int
    faces: tuple[SceneFace, ...]

    def load(self) -> np.ndarray:
        """The photo as RGB uint8 (raises facemask.errors.ImageError)."""
        return load_image(self.path)


class Detector(Protocol):
    def detect(self, rgb: np.ndarray) -> list[Face]: ...


def load_scenes(root: str | Path) -> list[Scene]:
    """Read `root/annotations.json`; images are expected in `root/images/`."""
    root = Path(root)
    ann_path = root / "annotations.json"
    if not ann_path.is_file():
        raise DatasetError(f"{root} has no annotations.json: it is not a scenes folder.")
    try:
        entries = json.loads(ann_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(f"{ann_path} is not valid JSON: {exc}.") from exc
    if not isinstance(entries, list) or not entries:
        raise DatasetError(f"{ann_path} must hold a non-empty list of images.")
    scenes = [_parse_entry(root, i, entry) for i, entry in enumerate(entries)]
    missing = [s.path.name for s in scenes if not s.path.is_file()]
    if missing:
        raise DatasetError(
            f"{len(missing)} image(s) listed in {ann_path} are not in {root / 'images'}, "
            f"e.g. {missing[0]}."
        )
    return scenes


SCENE_LABELS = {"mask_weared_incorrect": WORN_WRONG}
"""Scene-set label names that differ from the product's: read as the product's label."""


def _parse_entry(root: Path, index: int, entry: Any) -> Scene:
    try:
        faces = tuple(
            SceneFace(box=_as_box(face["box"]), label=_label(str(face["label"])))
            for face in entry["faces"]
        )
        name = str(entry["file"])
        if Path(name).name != name:
            raise ValueError(f"file {name!r} must be a plain file name")
        return Scene(
            path=root / "images" / name,
            width=int(entry["width"]),
            height=int(entry["height"]),
            faces=faces,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise DatasetError(f"annotations.json entry {index} is malformed: {exc!r}.") from exc


def _label(name: str) -> str:
    return SCENE_LABELS.get(name, name)


def _as_box(values: Iterable[Any]) -> Box:
    x1, y1, x2, y2 = (float(v) for v in values)
    if not (x2 > x1 and y2 > y1):
        raise ValueError(f"box {[x1, y1, x2, y2]} has no area")
    return (x1, y1, x2, y2)


def _short_side(box: Sequence[float]) -> float:
    return min(box[2] - box[0], box[3] - box[1])


def _match(
    det_boxes: np.ndarray, gt_boxes: np.ndarray, iou: float
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy VOC matching, detections already sorted by confidence.

    Returns for each detection the index of its GT (-1: none) and whether it is a duplicate.
    """
    matched_gt = np.full(len(det_boxes), -1)
    duplicate = np.zeros(len(det_boxes), dtype=bool)
    if len(det_boxes) == 0 or len(gt_boxes) == 0:
        return matched_gt, duplicate
    overlaps = box_iou(det_boxes, gt_boxes)
    taken = np.zeros(len(gt_boxes), dtype=bool)
    for d in range(len(det_boxes)):
        # prefer the best still-free GT; a detection only on taken GTs is a duplicate
        free = np.where(taken, -1.0, overlaps[d])
        g = int(np.argmax(free))
        if free[g] >= iou:
            matched_gt[d], taken[g] = g, True
        elif overlaps[d].max() >= iou:
            matched_gt[d], duplicate[d] = int(np.argmax(overlaps[d])), True
    return matched_gt, duplicate


def evaluate_detector(
    scenes: Sequence[Scene], detector: Detector, min_face: int = 24, iou: float = 0.5
) -> dict[str, Any]:
    """Face recall (GT faces >= min_face px), precision (a lower bound) and ms per image."""
    found = {name: 0 for name, _, _ in SIZE_BINS}
    total = {name: 0 for name, _, _ in SIZE_BINS}
    tp = fp = ignored_dets = n_faces = n_small = n_dets = 0
    times: list[float] = []
    for scene in scenes:
        rgb = scene.load()
        start = time.perf_counter()
        faces = detector.detect(rgb)
        times.append(time.perf_counter() - start)
        faces = sorted(faces, key=lambda f: f.score, reverse=True)
        gt = np.array([f.box for f in scene.faces], dtype=np.float64).reshape(-1, 4)
        gt_size = np.array([_short_side(b) for b in gt])
        small = gt_size < min_face
        n_faces += int((~small).sum())
        n_small += int(small.sum())
        n_dets += len(faces)
        det = np.array([f.box for f in faces], dtype=np.float64).reshape(-1, 4)
        matched_gt, duplicate = _match(det, gt, iou)
        for d, g in enumerate(matched_gt):
            if g >= 0 and small[g]:
                ignored_dets += 1
            elif g >= 0 and not duplicate[d]:
                tp += 1
            elif g < 0 and _short_side(det[d]) < min_face:
                ignored_dets += 1
            else:
                fp += 1
        hit = np.zeros(len(gt), dtype=bool)
        hit[matched_gt[(matched_gt >= 0) & ~duplicate]] = True
        for name, lo, hi in SIZE_BINS:
            in_bin = (gt_size >= lo) & (gt_size < hi)
            total[name] += int(in_bin.sum())
            found[name] += int((in_bin & hit).sum())
    return {
        "images": len(scenes),
        "faces": n_faces,
        "faces_ignored_small": n_small,
        "detections": n_dets,
        "true_positives": tp,
        "false_positives": fp,
        "detections_ignored": ignored_dets,
        "recall": tp / n_faces if n_faces else None,
        "precision": tp / (tp + fp) if tp + fp else None,
        "recall_by_size": {
            name: (found[name] / total[name] if total[name] else None) for name in total
        },
        "faces_by_size": total,
        "ms_per_image": 1000 * float(np.mean(times)) if times else None,
        "ms_median": 1000 * float(np.median(times)) if times else None,
        "min_face": min_face,
        "iou": iou,
    }


def average_precision(
    confidences: Sequence[float], is_tp: Sequence[bool], n_positives: int
) -> float:
    """VOC all-point interpolated AP from scored detections marked true/false positive."""
    if n_positives <= 0:
        raise ValueError("AP is undefined without positives.")
    order = np.argsort(-np.asarray(confidences, dtype=np.float64), kind="stable")
    hits = np.asarray(is_tp, dtype=np.float64)[order]
    tp_cum, fp_cum = np.cumsum(hits), np.cumsum(1.0 - hits)
    recall = tp_cum / n_positives
    precision = tp_cum / np.maximum(tp_cum + fp_cum, np.finfo(np.float64).eps)
    mrec = np.concatenate(([0.0], recall, [1.0]))
    mpre = np.concatenate(([0.0], precision, [0.0]))
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]  # precision envelope
    steps = np.where(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[steps + 1] - mrec[steps]) * mpre[steps + 1]))


def _as_detection(item: Any) -> tuple[Box, str, float]:
    """(box, label, confidence) from a tuple or from an object with those attributes."""
    if isinstance(item, tuple | list):
        box, label, confidence = item
    else:
        box, label, confidence = item.box, item.label, item.confidence
    x1, y1, x2, y2 = (float(v) for v in box)
    return (x1, y1, x2, y2), str(label), float(confidence)


def evaluate_scenes(
    scenes: Sequence[Scene],
    detect_and_classify: Callable[[np.ndarray], Iterable[Any]],
    labels: Sequence[str],
    min_face: int = 24,
    iou: float = 0.5,
) -> dict[str, Any]:
    """Per-class AP@iou (VOC all-point) for a detect+classify function on the scenes.

    detect_and_classify(rgb) returns (box, label, confidence) items. GT faces of a class the model
    lacks are ignored for every class (the model cannot name them) and that class is not scored.
    """
    labels = list(labels)
    gt_labels = sorted({f.label for s in scenes for f in s.faces})
    classes = labels + [c for c in gt_labels if c not in labels]
    records: dict[str, list[tuple[float, bool]]] = {c: [] for c in labels}
    positives = {c: 0 for c in classes}
    ignored = {c: 0 for c in classes}
    times: list[float] = []
    for scene in scenes:
        rgb = scene.load()
        start = time.perf_counter()
        items = [_as_detection(item) for item in detect_and_classify(rgb)]
        times.append(time.perf_counter() - start)
        gt = np.array([f.box for f in scene.faces], dtype=np.float64).reshape(-1, 4)
        gt_label = [f.label for f in scene.faces]
        skip = np.array([_short_side(b) < min_face for b in gt], dtype=bool)
        for g, label in enumerate(gt_label):
            if skip[g]:
                ignored[label] += 1
            elif label in labels:
                positives[label] += 1
        # GT boxes of classes the model lacks: detections on them are not counted at all
        unscorable = skip | np.array([lb not in labels for lb in gt_label], dtype=bool)
        for cls in labels:
            dets = sorted((d for d in items if d[1] == cls), key=lambda d: d[2], reverse=True)
            det_boxes = np.array([d[0] for d in dets], dtype=np.float64).reshape(-1, 4)
            own = np.array([lb == cls for lb in gt_label], dtype=bool)
            free_gt = own | unscorable  # other scorable classes' faces cannot absorb a detection
            idx = np.where(free_gt)[0]
            matched, duplicate = _match(det_boxes, gt[idx], iou)
            for d, m in enumerate(matched):
                g = idx[m] if m >= 0 else -1
                if g >= 0 and unscorable[g]:
                    continue
                if g < 0 and _short_side(det_boxes[d]) < min_face:
                    continue
                records[cls].append((dets[d][2], bool(g >= 0 and own[g] and not duplicate[d])))
    per_class: dict[str, dict[str, Any]] = {}
    for cls in classes:
        row: dict[str, Any] = {"faces": positives[cls], "faces_ignored_small": ignored[cls]}
        if cls not in labels:
            n = sum(1 for s in scenes for f in s.faces if f.label == cls)
            row.update(faces=n, scored=False, reason=f"the model has no {cls!r} label")
        elif positives[cls] == 0:
            row.update(scored=False, reason=f"no {cls!r} faces of at least {min_face} px")
        else:
            conf = [c for c, _ in records[cls]]
            hits = [h for _, h in records[cls]]
            n_tp = int(sum(hits))
            row.update(
                scored=True,
                ap=average_precision(conf, hits, positives[cls]),
                detections=len(hits),
                true_positives=n_tp,
                recall=n_tp / positives[cls],
                precision=n_tp / len(hits) if hits else None,
            )
        per_class[cls] = row
    aps = [row["ap"] for row in per_class.values() if row.get("scored")]
    return {
        "images": len(scenes),
        "classes": per_class,
        "mean_ap": float(np.mean(aps)) if aps else None,
        "ms_per_image": 1000 * float(np.mean(times)) if times else None,
        "min_face": min_face,
        "iou": iou,
    }


class FoundFaces:
    """A detector's faces in each image, found once however many passes over a scene set ask
    (keyed by the image's pixels); call it like `detector.detect`."""

    def __init__(self, detector: Detector) -> None:
        self.detector = detector
        self._found: dict[tuple, list[Face]] = {}

    def __call__(self, rgb: np.ndarray) -> list[Face]:
        key = (rgb.shape, hashlib.blake2b(rgb.tobytes(), digest_size=16).digest())
        if key not in self._found:
            self._found[key] = self.detector.detect(rgb)
        return self._found[key]


def annotated_face_probabilities(
    scenes: Sequence[Scene],
    classify: Callable[[np.ndarray, Sequence[Box]], np.ndarray],
    labels: Sequence[str],
    min_face: int = 24,
    detect: Callable[[np.ndarray], Sequence[Face]] | None = None,
    iou: float = 0.5,
) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """(true label indices, class probabilities, faces left out) of the annotated faces.

    `classify(rgb, boxes)` returns class probabilities per box (Pipeline.classify_boxes).
    Faces smaller than `min_face` or of a class the model lacks are left out, and counted.
    Without `detect`, each face is cropped from its annotated box (the classifier alone). With
    it, from the box of the detection that matches it (IoU >= `iou`, greedy by detector score,
    one detection per face), as the app would crop it; faces no detection matches are counted.
    """
    y_true: list[int] = []
    probabilities: list[np.ndarray] = []
    small = other = missed = 0
    for scene in scenes:
        boxes, truth = [], []
        for face in scene.faces:
            if _short_side(face.box) < min_face:
                small += 1
            elif face.label not in labels:
                other += 1
            else:
                boxes.append(face.box)
                truth.append(labels.index(face.label))
        if not boxes:
            continue
        rgb = scene.load()
        if detect is not None:
            boxes, truth, unmatched = _detected_boxes(detect(rgb), boxes, truth, iou)
            missed += unmatched
        if boxes:
            probabilities.append(classify(rgb, boxes))
            y_true += truth
    if not y_true:
        raise DatasetError("No annotated face of the model's classes is large enough to score.")
    left_out = {f"smaller than {min_face} px": small, "other classes": other}
    if detect is not None:
        left_out["not found by the detector"] = missed
    return np.array(y_true), np.concatenate(probabilities), left_out


def _detected_boxes(
    faces: Sequence[Face], boxes: Sequence[Box], truth: Sequence[int], iou: float
) -> tuple[list[Box], list[int], int]:
    """The detection box standing for each annotated face (greedy VOC matching by detector
    score), the faces' labels, and how many faces no detection matched."""
    ranked = sorted(faces, key=lambda f: f.score, reverse=True)
    det_boxes = np.array([f.box for f in ranked], dtype=np.float64).reshape(-1, 4)
    matched, duplicate = _match(det_boxes, np.array(boxes, dtype=np.float64), iou)
    found = {int(g): d for d, g in enumerate(matched) if g >= 0 and not duplicate[d]}
    kept = sorted(found)
    return [ranked[found[g]].box for g in kept], [truth[g] for g in kept], len(boxes) - len(kept)


def classify_annotated_faces(
    scenes: Sequence[Scene],
    classify: Callable[[np.ndarray, Sequence[Box]], np.ndarray],
    labels: Sequence[str],
    thresholds: Mapping[str, float] | None = None,
    min_face: int = 24,
    detect: Callable[[np.ndarray], Sequence[Face]] | None = None,
) -> dict[str, Any]:
    """The classifier on the annotated faces: a check on real faces. Alone (no `detect`): cut
    from the annotated boxes; with `detect`: from the boxes of the detections that found them.

    Labels are decided by `thresholds` (a card's decision rule; none: argmax); see
    `annotated_face_probabilities` for the faces scored.
    """
    from facemask.evaluate import classification_metrics, mask_figures

    y_true, probabilities, left_out = annotated_face_probabilities(
        scenes, classify, labels, min_face, detect
    )
    metrics = classification_metrics(y_true, probabilities, list(labels), thresholds)
    metrics.update(mask_figures(metrics, labels))
    metrics["left_out"] = left_out
    return metrics
