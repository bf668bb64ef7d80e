"""bench/worn_cascade.py's second judgement (landmark colours) and its tuning, on real faces."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import test_worn_masks

from facemask import face_mesh as fm
from facemask import worn_masks as wm

REPO = Path(__file__).resolve().parent.parent


def _bench():
    path = REPO / "bench" / "worn_cascade.py"
    spec = importlib.util.spec_from_file_location("worn_cascade", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["worn_cascade"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


bench = _bench()
bare_face = test_worn_masks.bare_face  # the fixture: a real bare face and its landmarks
LANDMARKS = {
    "kind": "landmarks",
    "skin": "forehead",
    "nose": "tip",
    "mouth": "upper lip",
    "l_weight": 0.0,
    "q_weight": 0.0,
}


def _one_face(lab: np.ndarray, q: float = 0.0):
    none = np.zeros(1)
    return bench.Faces(none, none, np.ones(1), np.ones(1, bool), np.array([q]), lab[None])


def test_a_mask_under_the_nose_scores_above_one_worn_right(bare_face) -> None:
    rgb, points = bare_face
    mesh = fm.FaceMesh()
    scores = {}
    for placement in ("worn_right", "under_nose"):
        made = wm.draw_mask(rgb, points, placement, np.random.default_rng(1), shape="surgical")
        lab = bench.landmark_colours(mesh, made.image, made.face_box)
        assert lab.shape == (468, 3)
        scores[placement] = float(bench.score(_one_face(lab), LANDMARKS)[0])
    # nose out: it looks like the forehead and unlike the mask over the lip
    assert scores["under_nose"] > scores["worn_right"] + 10, scores


def test_q_weight_adds_the_three_label_models_share() -> None:
    lab = np.full((468, 3), 128, dtype=np.float32)
    plain = float(bench.score(_one_face(lab, q=0.5), LANDMARKS)[0])
    weighted = float(bench.score(_one_face(lab, q=0.5), {**LANDMARKS, "q_weight": 40.0})[0])
    assert weighted == pytest.approx(plain + 20.0)
    assert float(bench.score(_one_face(lab, q=0.25), {"kind": "q"})[0]) == 0.25


def test_threshold_is_the_highest_recall_at_the_precision_asked() -> None:
    # truth 0 = worn wrong; the default calls the last face bare, so it is never worn wrong
    truth = np.array([0, 1, 0, 1, 0, 2, 0])
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.95])
    masked = np.array([True] * 6 + [False])
    none = np.zeros(len(truth))
    faces = bench.Faces(none, truth, none, masked, scores, np.zeros((len(truth), 468, 3)))
    recall, precision, t = bench.best_threshold(faces, scores, min_precision=0.6)
    assert (recall, precision, t) == (0.75, 0.6, 0.5)  # 3 of 4 worn wrong, 3 of 5 calls
    figures = bench.figures(faces, scores, t)
    assert figures["worn_wrong_found"] == 3 and figures["called_worn_wrong"] == 5
    assert figures["bare_called_masked"] == "1 of 1"
    assert bench.best_threshold(faces, scores, min_precision=1.0)[:2] == (0.25, 1.0)


def test_face_mesh_gives_points_without_a_presence_floor() -> None:
    blank = np.full((200, 200, 3), 127, dtype=np.uint8)
    mesh = fm.FaceMesh()
    assert mesh.landmarks(blank, (40.0, 40.0, 160.0, 160.0)) is None
    points = mesh.landmarks(blank, (40.0, 40.0, 160.0, 160.0), min_presence=0.0)
    assert points is not None and points.shape == (468, 2)
