"""The worn-mask generator: landmarks on real faces, masks where the placement says, seeded."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from facemask import MASKED, WORN_WRONG
from facemask import face_mesh as fm
from facemask import worn_masks as wm
from facemask.detect import TRAINING, FaceDetector
from facemask.images import load_image

DATA = Path(__file__).parent / "data"
BARE = DATA / "mini-dataset" / "without_mask"


@pytest.fixture(scope="module")
def bare_face() -> tuple[np.ndarray, np.ndarray]:
    """A real bare face and its 468 landmarks."""
    rgb = load_image(DATA / "faces" / "without_mask_00001.jpg")
    with FaceDetector(TRAINING) as detector:
        points = wm.face_points(rgb, detector, fm.FaceMesh())
    assert points is not None
    return rgb, points


def test_landmarks_lie_on_the_face_in_anatomical_order(bare_face) -> None:
    rgb, points = bare_face
    assert points.shape == (468, 2)
    height, width = rgb.shape[:2]
    assert (points[:, 0] > -0.1 * width).all() and (points[:, 0] < 1.1 * width).all()
    order = (fm.NOSE_BRIDGE, fm.NOSE_TIP, fm.UPPER_LIP, fm.LOWER_LIP, fm.CHIN)
    heights = [points[i, 1] for i in order]
    assert heights == sorted(heights)


def test_no_landmarks_on_a_blank_picture() -> None:
    blank = np.full((160, 160, 3), 128, np.uint8)
    assert fm.FaceMesh().landmarks(blank, (0, 0, 160, 160)) is None


@pytest.mark.parametrize(
    ("placement", "nose_covered", "mouth_covered"),
    [
        ("worn_right", True, True),
        ("under_nose", False, True),
        ("mouth_only", False, True),
        ("on_chin", False, False),
    ],
)
def test_placement_covers_what_it_says(bare_face, placement, nose_covered, mouth_covered) -> None:
    rgb, points = bare_face
    for seed in range(4):  # any draw of shape, colour and angle keeps the placement's meaning
        rng = np.random.default_rng(seed)
        made = wm._region(points, rgb.shape[:2], placement, wm.SHAPES[seed % 3], rng)[0]

        def inside(i: int, made: np.ndarray = made) -> bool:
            return bool(made[int(points[i, 1]), int(points[i, 0])] > 0.5)

        assert inside(fm.NOSE_MID) == nose_covered, (placement, seed)
        assert inside(fm.NOSE_TIP) == nose_covered, (placement, seed)
        assert inside(fm.LOWER_LIP) == mouth_covered, (placement, seed)


def test_drawn_mask_changes_the_lower_face_only(bare_face) -> None:
    rgb, points = bare_face
    made = wm.draw_mask(rgb, points, "worn_right", np.random.default_rng(3), shape="surgical")
    assert made.image.shape == rgb.shape and made.image.dtype == np.uint8
    assert made.shape == "surgical" and made.placement == "worn_right"
    x1, y1, x2, y2 = made.face_box
    assert 0 <= x1 < x2 <= rgb.shape[1] and 0 <= y1 < y2 <= rgb.shape[0]
    # the angle turns the picture a little, so compare regions rather than exact pixels
    lip, brow = int(points[fm.UPPER_LIP, 1]), int(points[fm.NOSE_BRIDGE, 1]) // 2
    lower = np.abs(made.image[lip:].astype(int) - rgb[lip:])
    forehead = np.abs(made.image[:brow].astype(int) - rgb[:brow])
    assert lower.mean() > 2 * forehead.mean()


def test_unknown_placement_is_refused(bare_face) -> None:
    rgb, points = bare_face
    with pytest.raises(ValueError, match="placement must be one of"):
        wm.draw_mask(rgb, points, "on_forehead", np.random.default_rng(0))


def test_made_folder_is_labelled_listed_and_the_same_for_a_seed(tmp_path: Path) -> None:
    first, second, other = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    counts = wm.make_dataset(BARE, first, seed=5, right_share=0.5, limit=6, log=lambda _: None)
    wm.make_dataset(BARE, second, seed=5, right_share=0.5, limit=6, log=lambda _: None)
    wm.make_dataset(BARE, other, seed=6, right_share=0.5, limit=6, log=lambda _: None)
    assert counts[WORN_WRONG] + counts["skipped"] == 6
    with open(first / "manifest.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == counts[WORN_WRONG] + counts.get(MASKED, 0)
    for row in rows:
        assert (first / row["file"]).is_file()
        assert row["label"] == wm.PLACEMENTS[row["placement"]]
        assert row["shape"] in wm.SHAPES and (BARE / row["source"]).is_file()
    assert sorted(p.name for p in first.iterdir()) == sorted(p.name for p in second.iterdir())
    for row in rows:
        assert (first / row["file"]).read_bytes() == (second / row["file"]).read_bytes()
    with open(other / "manifest.csv", newline="") as fh:
        assert [r["placement"] + r["shape"] for r in csv.DictReader(fh)] != [
            r["placement"] + r["shape"] for r in rows
        ]


def test_command_line_refuses_a_full_folder_and_writes_a_sheet(tmp_path: Path, capsys) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.txt").write_text("x")
    assert wm.main([str(BARE), str(tmp_path / "full")]) == 2
    assert "not empty" in capsys.readouterr().err
    sheet = tmp_path / "sheet.png"
    out = tmp_path / "made"
    args = [str(BARE), str(out), "--limit", "24", "--right-share", "1", "--sheet", str(sheet)]
    assert wm.main(args) == 0
    assert sheet.stat().st_size > 10_000
    image = load_image(sheet)
    assert image.shape[1] == 2 * 8 * 64 + 8  # two panels of 8 tiles side by side
