"""FaceDetector on real face photos: boxes, scaling, filtering, odd inputs, threads."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facemask.detect import (
    MODEL_FILES,
    PHOTO,
    WEBCAM,
    DetectorSettings,
    Face,
    FaceDetector,
    box_iou,
    tile_windows,
)
from facemask.images import load_image

ROOT = Path(__file__).resolve().parents[1]
FACES_DIR = ROOT / "tests" / "data" / "faces"
ASSETS = ROOT / "facemask" / "assets"

# Face boxes (x1, y1, x2, y2) read by eye on a 10 px grid: brows to chin, cheek to cheek.
FACES: dict[str, tuple[int, int, int, int]] = {
    "astronaut.jpg": (175, 80, 275, 180),
    "with_mask_00820.jpg": (10, 60, 130, 185),
    "with_mask_00002.jpg": (55, 85, 195, 225),
    "without_mask_00001.jpg": (55, 45, 112, 105),
    "without_mask_00597.jpg": (50, 100, 200, 255),
    "without_mask_00599.jpg": (45, 80, 138, 178),
}
FULL = DetectorSettings(model="full")
FULL_TILED = DetectorSettings(model="full", tiles=2, close_up_pass=True)


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    return float(box_iou(np.array([a]), np.array([b]))[0, 0])


def photo(name: str) -> np.ndarray:
    return load_image(FACES_DIR / name)


@pytest.fixture(scope="module")
def detectors() -> dict[str, FaceDetector]:
    built = {
        "webcam": FaceDetector(WEBCAM),
        "full": FaceDetector(FULL),
        "photo": FaceDetector(PHOTO),
        "full-tiled": FaceDetector(FULL_TILED),
    }
    yield built
    for detector in built.values():
        detector.close()


def check_faces(faces: list[Face], width: int, height: int) -> None:
    """Invariants every result holds: ints inside the image, scores sorted in 0..1."""
    scores = [f.score for f in faces]
    assert scores == sorted(scores, reverse=True)
    for face in faces:
        x1, y1, x2, y2 = face.box
        assert all(isinstance(v, int) for v in face.box)
        assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height
        assert 0.0 <= face.score <= 1.0


@pytest.mark.parametrize("preset", ["webcam", "full", "photo", "full-tiled"])
@pytest.mark.parametrize("name", sorted(FACES))
def test_finds_the_known_face(detectors, preset: str, name: str) -> None:
    rgb = photo(name)
    faces = detectors[preset].detect(rgb)
    check_faces(faces, rgb.shape[1], rgb.shape[0])
    assert len(faces) == 1, faces
    assert iou(faces[0].box, FACES[name]) >= 0.6, (faces[0].box, FACES[name])
    assert faces[0].score >= 0.5


def test_keypoints_are_in_original_pixels(detectors) -> None:
    face = detectors["webcam"].detect(photo("astronaut.jpg"))[0]
    assert len(face.keypoints) == 6  # right eye, left eye, nose tip, mouth, right ear, left ear
    x1, y1, x2, y2 = face.box
    (rx, ry), (lx, ly) = face.keypoints[:2]
    assert x1 < rx < lx < x2 and y1 < ry < (y1 + y2) / 2 and y1 < ly < (y1 + y2) / 2
    mouth_y = face.keypoints[3][1]
    assert ry < mouth_y < y2


@pytest.mark.parametrize("preset", ["webcam", "photo"])
@pytest.mark.parametrize("scale", [0.5, 2.0])
def test_boxes_follow_a_scaled_image(detectors, preset: str, scale: float) -> None:
    rgb = photo("astronaut.jpg")
    size = round(512 * scale)
    scaled = np.asarray(Image.fromarray(rgb).resize((size, size), Image.Resampling.BILINEAR))
    (face,) = detectors[preset].detect(scaled)
    expected = tuple(v * scale for v in FACES["astronaut.jpg"])
    assert iou(face.box, expected) >= 0.6
    nose_x, nose_y = face.keypoints[2]
    assert expected[0] < nose_x < expected[2] and expected[1] < nose_y < expected[3]


def webcam_frame() -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """640x480 frame, plain background, the astronaut's face pasted at (200, 100)."""
    frame = np.full((480, 640, 3), 90, dtype=np.uint8)
    frame[100:356, 200:456] = photo("astronaut.jpg")[:256, 100:356]
    x1, y1, x2, y2 = FACES["astronaut.jpg"]
    return frame, (x1 + 100, y1 + 100, x2 + 100, y2 + 100)


@pytest.mark.parametrize("preset", ["webcam", "photo"])
def test_webcam_frame(detectors, preset: str) -> None:
    frame, expected = webcam_frame()
    faces = detectors[preset].detect(frame)
    check_faces(faces, 640, 480)
    assert len(faces) == 1
    assert iou(faces[0].box, expected) >= 0.6


def three_face_strip() -> tuple[np.ndarray, list[tuple[float, ...]]]:
    """Three real photos side by side at 240 px high, with their face boxes mapped."""
    names = ["without_mask_00597.jpg", "with_mask_00002.jpg", "without_mask_00599.jpg"]
    parts, boxes, x = [], [], 0
    for name in names:
        rgb = photo(name)
        scale = 240 / rgb.shape[0]
        width = round(rgb.shape[1] * scale)
        parts.append(np.asarray(Image.fromarray(rgb).resize((width, 240))))
        x1, y1, x2, y2 = FACES[name]
        boxes.append((x + x1 * scale, y1 * scale, x + x2 * scale, y2 * scale))
        x += width
    return np.concatenate(parts, axis=1), boxes


@pytest.mark.parametrize("preset", ["webcam", "full", "photo", "full-tiled"])
def test_several_faces(detectors, preset: str) -> None:
    strip, expected = three_face_strip()
    faces = detectors[preset].detect(strip)
    check_faces(faces, strip.shape[1], strip.shape[0])
    assert len(faces) == 3
    for box in expected:
        assert max(iou(f.box, box) for f in faces) >= 0.5


def test_min_face_filters_small_faces() -> None:
    rgb = photo("without_mask_00001.jpg")  # face about 60 px
    with FaceDetector(DetectorSettings(min_face=40)) as keeps:
        assert len(keeps.detect(rgb)) == 1
    with FaceDetector(DetectorSettings(min_face=80)) as drops:
        assert drops.detect(rgb) == []


def test_min_score_filters_weak_faces() -> None:
    rgb = photo("with_mask_00002.jpg")  # short-range score about 0.75
    with FaceDetector(DetectorSettings(min_score=0.95)) as strict:
        assert strict.detect(rgb) == []


@pytest.mark.parametrize(
    "blank",
    [
        np.zeros((480, 640, 3), np.uint8),
        np.full((300, 200, 3), 200, np.uint8),
        np.zeros((0, 0, 3), np.uint8),
        np.zeros((0, 10, 3), np.uint8),
        np.zeros((1, 1, 3), np.uint8),
        np.zeros((5, 7, 3), np.uint8),
    ],
    ids=["black", "gray", "empty", "no-rows", "1x1", "5x7"],
)
@pytest.mark.parametrize("preset", ["webcam", "photo"])
def test_blank_images_have_no_faces(detectors, preset: str, blank: np.ndarray) -> None:
    assert detectors[preset].detect(blank) == []


def test_gray_rgba_odd_size_and_views(detectors) -> None:
    rgb = photo("astronaut.jpg")
    expected = FACES["astronaut.jpg"]
    gray = np.asarray(Image.fromarray(rgb).convert("L"))
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    odd = rgb[3:420, 1:333]  # 417 x 332, a non-contiguous view
    for image, box in [
        (gray, expected),
        (gray[:, :, None], expected),
        (rgba, expected),
        (odd, (expected[0] - 1, expected[1] - 3, expected[2] - 1, expected[3] - 3)),
    ]:
        faces = detectors["webcam"].detect(image)
        assert len(faces) == 1 and iou(faces[0].box, box) >= 0.6
    mirrored = detectors["webcam"].detect(rgb[:, ::-1])
    x1, y1, x2, y2 = expected
    assert iou(mirrored[0].box, (512 - x2, y1, 512 - x1, y2)) >= 0.6


def test_rejects_what_is_not_an_image(detectors) -> None:
    with pytest.raises(ValueError):
        detectors["webcam"].detect(np.zeros((10, 10, 3), np.float32))
    with pytest.raises(ValueError):
        detectors["webcam"].detect(np.zeros((10, 10, 2), np.uint8))
    with pytest.raises(ValueError):
        DetectorSettings(model="long")
    with pytest.raises(ValueError):
        DetectorSettings(tile_overlap=1.0)


def test_thread_safe(detectors) -> None:
    images = [photo(name) for name in sorted(FACES)] * 3
    detector = detectors["photo"]
    sequential = [detector.detect(image) for image in images]
    with ThreadPoolExecutor(4) as pool:
        parallel = list(pool.map(detector.detect, images))
    assert parallel == sequential


@pytest.mark.parametrize("size", [(640, 480), (1024, 576), (333, 500), (256, 256)])
@pytest.mark.parametrize("tiles", [1, 2, 3])
def test_tiles_are_squares_covering_the_image(size: tuple[int, int], tiles: int) -> None:
    width, height = size
    covered = np.zeros((height, width), bool)
    windows = tile_windows(width, height, tiles, 0.5)
    for x0, y0, x1, y1 in windows:
        assert x1 - x0 == y1 - y0 <= min(width, height)
        assert 0 <= x0 and 0 <= y0 and x1 <= width and y1 <= height
        covered[y0:y1, x0:x1] = True
    assert covered.all()
    across_short = {y0 for _, y0, _, _ in windows} if height <= width else {w[0] for w in windows}
    assert len(across_short) == tiles


def test_min_tile_means_fewer_tiles_on_small_images() -> None:
    assert tile_windows(640, 480, 0, 0.5) == []
    assert len(tile_windows(1024, 576, 4, 0.5, min_tile=128)) == 4 * 8  # 231 px tiles
    small = tile_windows(180, 270, 4, 0.5, min_tile=128)  # 4 across would be 72 px
    assert small and min(x1 - x0 for x0, _, x1, _ in small) >= 128
    assert tile_windows(100, 150, 4, 0.5, min_tile=128) == []


def test_presets() -> None:
    assert WEBCAM.model == "short" and WEBCAM.tiles == 0 and not WEBCAM.close_up_pass
    assert PHOTO.tiles > 0 and PHOTO.min_score >= 0.5


def test_import_is_light() -> None:
    """Importing facemask.detect must not import mediapipe (and with it tensorflow)."""
    code = "import sys, facemask.detect; assert 'mediapipe' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_bundled_models_match_source_md() -> None:
    source = (ASSETS / "SOURCE.md").read_text()
    for name in MODEL_FILES.values():
        digest = hashlib.sha256((ASSETS / name).read_bytes()).hexdigest()
        assert re.search(rf"`{re.escape(name)}` \| [\d,]+ \| `{digest}`", source), name
