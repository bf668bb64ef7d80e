"""Masks worn wrong as a cascade, measured: the shipped two-label model decides mask / no mask
exactly as it serves; only the faces it calls masked get a second judgement, worn right or worn
wrong. So the two-label figures stay the default's (a mask worn wrong is a mask).

    .venv/bin/python bench/worn_cascade.py SCENES [--two models/mobilenetv2]
        [--three models/mobilenetv2-3class] [--seed 0] [--min-precision 0.6] [--output FILE.json]

SCENES is a scenes folder with `mask_weared_incorrect` faces (maskilc-scenes); faces >= 24 px.
Each model crops at its own card's margin and decides by its own card's rule. Second judgements:

- q: the three-label model's p(worn wrong) / (p(worn wrong) + p(with mask)) >= t;
- landmarks: MediaPipe's 468 face landmarks (facemask/face_mesh.py, presence not required:
  a masked face often scores low) and the colour under them, blurred over 2.5% of the face:
  s = d(nose, mouth) - d(nose, skin) >= t, d a distance in CIELAB (a, b chroma, L weighted 0
  or 0.25), skin the forehead (and under the eyes), nose its tip (and wings), mouth the upper
  lip (and chin, cheeks): the nose looks like the face's skin and unlike the mouth's cover;
- landmarks+q: s + w * q >= t, w in 20 / 40 / 80.

Tuning is honest: the photos are split in two halves by a permutation seeded with --seed; each
judgement's settings (regions, colour weights, w, t) are chosen on one half, as the highest
worn-wrong recall at precision >= --min-precision with the classifier alone (ties: the higher
precision), and reported on the other half and on all photos, classifier alone (annotated boxes)
and with the PHOTO detector (faces it found); then the halves swap. AP@0.5 per class with the
detector (facemask.scenes.evaluate_scenes) is given for the settings chosen on half A. Not a
test: a development measurement on photos that are never trained on (docs/worn-wrong.md).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from facemask import BARE, MASKED, WORN_WRONG  # noqa: E402
from facemask.classify import MaskClassifier, decide_indices  # noqa: E402
from facemask.detect import PHOTO, FaceDetector  # noqa: E402
from facemask.face_mesh import FaceMesh  # noqa: E402
from facemask.pipeline import Pipeline  # noqa: E402
from facemask.scenes import Scene, _match, evaluate_scenes, load_scenes  # noqa: E402

CLASSES = (WORN_WRONG, MASKED, BARE)
"""Truth indices: 0 worn wrong, 1 mask, 2 no mask."""
MIN_FACE = 24
FOREHEAD = (151, 9, 8, 108, 337, 69, 299)
UNDER_EYES = (117, 346, 118, 347)
NOSE_TIP = (1, 4, 5, 45, 275, 44, 274)
NOSE_WINGS = (98, 327, 64, 294, 2)
UPPER_LIP = (0, 37, 267, 39, 269, 164)
CHIN = (152, 175, 199, 200, 18)
CHEEKS = (50, 280, 101, 330, 205, 425)
"""Landmark indices of mediapipe's canonical face mesh, by region."""
SKIN = {"forehead": FOREHEAD, "forehead+under eyes": FOREHEAD + UNDER_EYES}
NOSE = {"tip": NOSE_TIP, "tip+wings": NOSE_TIP + NOSE_WINGS, "wings": NOSE_WINGS}
MOUTH = {
    "upper lip": UPPER_LIP,
    "chin": CHIN,
    "upper lip+chin": UPPER_LIP + CHIN,
    "upper lip+chin+cheeks": UPPER_LIP + CHIN + CHEEKS,
}
L_WEIGHTS = (0.0, 0.25)
Q_WEIGHTS = {"landmarks": (0.0,), "landmarks+q": (20.0, 40.0, 80.0)}


@dataclass
class Faces:
    """Per face: photo index, truth (CLASSES index), the default's p(mask) and its call on it,
    q, landmark Lab."""

    photo: np.ndarray
    truth: np.ndarray
    p_mask: np.ndarray
    masked: np.ndarray
    q: np.ndarray
    lab: np.ndarray  # (N, 468, 3) float32, OpenCV's 8-bit CIELAB

    def subset(self, keep: np.ndarray) -> Faces:
        return Faces(*(getattr(self, k)[keep] for k in FIELDS))


FIELDS = ("photo", "truth", "p_mask", "masked", "q", "lab")


def landmark_colours(mesh: FaceMesh, rgb: np.ndarray, box) -> np.ndarray:
    """(468, 3) CIELAB colours (OpenCV's 8-bit scale) under the face's landmarks, the picture
    blurred over 2.5% of the face's side so one landmark reads its neighbourhood."""
    points = mesh.landmarks(rgb, tuple(float(v) for v in box), min_presence=0.0)
    sigma = max(box[2] - box[0], box[3] - box[1]) * 0.025
    blurred = cv2.GaussianBlur(rgb, (0, 0), sigma) if sigma > 1 else rgb
    lab = cv2.cvtColor(blurred, cv2.COLOR_RGB2LAB)
    height, width = rgb.shape[:2]
    xs = np.clip(np.round(points[:, 0]).astype(int), 0, width - 1)
    ys = np.clip(np.round(points[:, 1]).astype(int), 0, height - 1)
    return lab[ys, xs]


class Judge:
    """Both models and the landmark model: the per-face quantities every judgement uses."""

    def __init__(self, two: str, three: str) -> None:
        detector = FaceDetector(PHOTO)
        self.two = Pipeline(detector, MaskClassifier(two, runtime="tflite"))
        self.three = Pipeline(detector, MaskClassifier(three, runtime="tflite"))
        self.mesh = FaceMesh()
        self.detector = detector

    def features(self, rgb: np.ndarray, boxes: list) -> tuple[np.ndarray, ...]:
        """(default's p(mask), its call, q, Lab at the 468 landmarks) for face boxes in `rgb`."""
        two, three = self.two.classifier, self.three.classifier
        p2 = self.two.classify_boxes(rgb, boxes)
        masked = decide_indices(p2, two.labels, two.thresholds) == two.labels.index(MASKED)
        p3 = self.three.classify_boxes(rgb, boxes)
        worn, right = p3[:, three.labels.index(WORN_WRONG)], p3[:, three.labels.index(MASKED)]
        q = worn / np.maximum(worn + right, 1e-12)
        lab = np.stack([landmark_colours(self.mesh, rgb, box) for box in boxes]).astype(np.float32)
        return p2[:, two.labels.index(MASKED)], masked, q, lab


def collect(scenes: list[Scene], judge: Judge) -> tuple[Faces, Faces, list[list]]:
    """Faces >= MIN_FACE px cut from their annotated boxes, the same faces as the detector found
    them, and every detection of every photo (box, p_mask, masked, q, lab) for AP."""
    alone: list[tuple] = []
    found: list[tuple] = []
    detections: list[list] = []
    for index, scene in enumerate(scenes):
        rgb = scene.load()
        faces = [
            f for f in scene.faces if min(f.box[2] - f.box[0], f.box[3] - f.box[1]) >= MIN_FACE
        ]
        faces = [f for f in faces if f.label in CLASSES]
        if faces:
            truth = [CLASSES.index(f.label) for f in faces]
            alone.append((index, truth, *judge.features(rgb, [f.box for f in faces])))
        ranked = sorted(judge.detector.detect(rgb), key=lambda f: f.score, reverse=True)
        feats = judge.features(rgb, [f.box for f in ranked]) if ranked else ((),) * 4
        detections.append([(f.box, *x) for f, *x in zip(ranked, *feats, strict=True)])
        gt = np.array([f.box for f in faces], dtype=np.float64).reshape(-1, 4)
        boxes = np.array([f.box for f in ranked], dtype=np.float64).reshape(-1, 4)
        matched, duplicate = _match(boxes, gt, 0.5)
        keep = [d for d in range(len(ranked)) if matched[d] >= 0 and not duplicate[d]]
        if keep:
            truth = [CLASSES.index(faces[matched[d]].label) for d in keep]
            found.append((index, truth, *(np.asarray(x)[keep] for x in feats)))
    return _faces(alone), _faces(found), detections


def _faces(rows: list[tuple]) -> Faces:
    photo = np.concatenate([[i] * len(t) for i, t, *_ in rows])
    truth = np.concatenate([t for _, t, *_ in rows])
    return Faces(photo, truth, *(np.concatenate([r[k] for r in rows]) for k in range(2, 6)))


def score(faces: Faces, settings: dict[str, Any]) -> np.ndarray:
    """A judgement's score per face: higher is more worn wrong."""
    if settings["kind"] == "q":
        return faces.q
    lab = faces.lab

    def region(name: str, table: dict) -> np.ndarray:
        return np.median(lab[:, list(table[settings[name]])], axis=1)

    weights = np.array([settings["l_weight"], 1.0, 1.0])
    nose = region("nose", NOSE)
    to_mouth = np.linalg.norm((nose - region("mouth", MOUTH)) * weights, axis=1)
    to_skin = np.linalg.norm((nose - region("skin", SKIN)) * weights, axis=1)
    return to_mouth - to_skin + settings["q_weight"] * faces.q


def figures(faces: Faces, scores: np.ndarray, t: float) -> dict[str, Any]:
    """Worn-wrong recall and precision of the cascade at threshold t, and the two-label
    figures (the default's: a mask worn wrong counts as a mask)."""
    called = faces.masked & (scores >= t)
    worn = faces.truth == 0
    hits = int((called & worn).sum())
    bare, right = faces.truth == 2, faces.truth == 1
    return {
        "worn_wrong_recall": round(hits / max(int(worn.sum()), 1), 3),
        "worn_wrong_precision": round(hits / max(int(called.sum()), 1), 3),
        "worn_wrong_found": hits,
        "worn_wrong_faces": int(worn.sum()),
        "called_worn_wrong": int(called.sum()),
        "bare_called_masked": f"{int((faces.masked & bare).sum())} of {int(bare.sum())}",
        "masked_recall": round(float(faces.masked[right].mean()), 4),
    }


def best_threshold(faces: Faces, scores: np.ndarray, min_precision: float) -> tuple:
    """(recall, precision, t): the highest worn-wrong recall at precision >= min_precision."""
    pool = np.sort(np.unique(scores[faces.masked]))[::-1]
    order = np.argsort(-scores[faces.masked], kind="stable")
    hits = np.cumsum((faces.truth[faces.masked] == 0)[order])
    calls = np.arange(1, len(order) + 1)
    sorted_scores = scores[faces.masked][order]
    best = (-1.0, 0.0, float("inf"))
    n_worn = max(int((faces.truth == 0).sum()), 1)
    for t in pool:  # every face scoring >= t is called: the last index with score >= t
        last = int(np.searchsorted(-sorted_scores, -t, side="right")) - 1
        recall, precision = hits[last] / n_worn, hits[last] / calls[last]
        if precision >= min_precision and (recall, precision) > best[:2]:
            best = (float(recall), float(precision), float(t))
    return best


def grid(kind: str) -> list[dict[str, Any]]:
    """Every setting of a judgement tried on the tuning half."""
    if kind == "q":
        return [{"kind": "q"}]
    return [
        {"kind": kind, "skin": s, "nose": n, "mouth": m, "l_weight": lw, "q_weight": qw}
        for s, n, m, lw, qw in itertools.product(SKIN, NOSE, MOUTH, L_WEIGHTS, Q_WEIGHTS[kind])
    ]


def tune(faces: Faces, kind: str, min_precision: float) -> tuple[dict, float, tuple]:
    """The settings and threshold a judgement gets on `faces` (the tuning half)."""
    best = None
    for settings in grid(kind):
        recall, precision, t = best_threshold(faces, score(faces, settings), min_precision)
        if best is None or (recall, precision) > best[2][:2]:
            best = (settings, t, (recall, precision))
    return best


def cascade_ap(scenes, detections, settings, t) -> dict[str, Any]:
    """Per-class AP@0.5 of the cascade with the PHOTO detector (worn wrong ranked by its score,
    mask and no mask by the default's probabilities)."""
    items = []
    for found in detections:
        if not found:
            items.append([])
            continue
        boxes, *columns = zip(*found, strict=True)
        none = np.zeros(len(boxes))
        faces = Faces(none, none, *(np.asarray(c) for c in columns))
        s = score(faces, settings)
        worn = faces.masked & (s >= t)
        labels = np.where(worn, WORN_WRONG, np.where(faces.masked, MASKED, BARE))
        conf = np.where(worn, s, np.where(faces.masked, faces.p_mask, 1.0 - faces.p_mask))
        items.append(list(zip(boxes, labels, conf, strict=True)))
    it = iter(items)
    lazy = [_Loaded(s.path, s.width, s.height, s.faces) for s in scenes]
    result = evaluate_scenes(lazy, lambda _rgb: next(it), CLASSES, min_face=MIN_FACE)
    return {c: round(row["ap"], 3) for c, row in result["classes"].items() if row.get("scored")}


class _Loaded(Scene):
    """A scene whose detections are already known: its pixels are not read again."""

    def load(self) -> np.ndarray:
        return np.zeros((1, 1, 3), dtype=np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenes")
    parser.add_argument("--two", default=str(REPO / "models" / "mobilenetv2"))
    parser.add_argument("--three", default=str(REPO / "models" / "mobilenetv2-3class"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--min-precision", type=float, default=0.6)
    parser.add_argument("--output")
    args = parser.parse_args()
    scenes = load_scenes(args.scenes)
    alone, found, detections = collect(scenes, Judge(args.two, args.three))
    half_a = np.random.default_rng(args.seed).permutation(len(scenes))[: len(scenes) // 2]
    report: dict[str, Any] = {"scenes": len(scenes), "seed": args.seed, "folds": []}
    for kind in ("q", "landmarks", "landmarks+q"):
        for fit in ("A", "B"):
            in_a = np.isin(alone.photo, half_a)
            tune_on = alone.subset(in_a if fit == "A" else ~in_a)
            settings, t, fitted = tune(tune_on, kind, args.min_precision)
            row: dict[str, Any] = {
                "judgement": kind,
                "tuned_on": fit,
                "settings": settings,
                "t": round(t, 4),
                "tuning_half": [round(x, 3) for x in fitted],
            }
            for name, faces in (("alone", alone), ("detector", found)):
                held = np.isin(faces.photo, half_a) != (fit == "A")
                row[f"{name}_held_out"] = figures(
                    faces.subset(held), score(faces.subset(held), settings), t
                )
                row[f"{name}_all"] = figures(faces, score(faces, settings), t)
            if fit == "A":
                row["ap_detector_all"] = cascade_ap(scenes, detections, settings, t)
            report["folds"].append(row)
            print(_line(row), flush=True)
    if args.output:
        Path(args.output).write_text(json.dumps(report, indent=2))


def _line(row: dict[str, Any]) -> str:
    def rp(f: dict) -> str:
        return (
            f"{f['worn_wrong_recall']:.3f}/{f['worn_wrong_precision']:.3f} "
            f"({f['worn_wrong_found']} of {f['worn_wrong_faces']}, {f['called_worn_wrong']} called)"
        )

    return (
        f"{row['judgement']:<12} tuned on {row['tuned_on']} (t {row['t']}): recall/precision "
        f"held out {rp(row['alone_held_out'])}, all {rp(row['alone_all'])}; with the detector "
        f"held out {rp(row['detector_held_out'])}, all {rp(row['detector_all'])}"
        + (f"; AP {row['ap_detector_all']}" if "ap_detector_all" in row else "")
    )


if __name__ == "__main__":
    main()
