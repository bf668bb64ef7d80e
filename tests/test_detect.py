"""FaceDetector on real face photos: boxes, scaling, filtering, odd inputs, threads."""

from __future__ import annotations

import dataclasses
import hashlib
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from conftest import require_shared
from PIL import Image

from facemask.detect import PHOTO, WEBCAM, DetectorSettings, Face, FaceDetector
from facemask.face_models import MODEL_FILES, box_iou, ssd_anchors, weighted_nms
from facemask.images import load_image
from facemask.scenes import load_scenes

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
FULL_CLOSE = DetectorSettings(model="full", close_up_pass=True)
YUNET = DetectorSettings(model="yunet", min_score=0.6, min_face=16)
# BlazeFace short range, every face the model reports: through LiteRT (ours) and through Tasks
LITERT = DetectorSettings(model="short", min_score=0.5, min_face=0, runtime="litert")
TASKS = dataclasses.replace(LITERT, runtime="tasks")


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
        "full+close": FaceDetector(FULL_CLOSE),
        "yunet": FaceDetector(YUNET),
        "tasks": FaceDetector(TASKS),
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


@pytest.mark.parametrize("preset", ["webcam", "full", "photo", "full+close", "yunet", "tasks"])
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


@pytest.mark.parametrize("preset", ["webcam", "photo", "yunet"])
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


@pytest.mark.parametrize("preset", ["webcam", "photo", "yunet"])
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


@pytest.mark.parametrize("preset", ["webcam", "full", "photo", "full+close", "yunet"])
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
        np.full((20, 1000, 3), 90, np.uint8),
        np.full((16, 8, 3), 90, np.uint8),
    ],
    ids=["black", "gray", "empty", "no-rows", "1x1", "5x7", "20x1000", "16x8"],
)
@pytest.mark.parametrize("preset", ["webcam", "photo", "yunet", "tasks"])
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
        DetectorSettings(model="full", runtime="litert")
    with pytest.raises(ValueError):
        DetectorSettings(model="short", scale=2.0)
    with pytest.raises(ValueError):
        DetectorSettings(runtime="onnx")


def test_thread_safe(detectors) -> None:
    images = [photo(name) for name in sorted(FACES)] * 3
    detector = detectors["photo"]
    sequential = [detector.detect(image) for image in images]
    with ThreadPoolExecutor(4) as pool:
        parallel = list(pool.map(detector.detect, images))
    assert parallel == sequential


def test_import_is_light() -> None:
    """Importing facemask.detect must not import mediapipe (and with it tensorflow)."""
    code = "import sys, facemask.detect; assert 'mediapipe' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_presets_run_without_mediapipe() -> None:
    """WEBCAM (LiteRT) and PHOTO find faces and never import mediapipe or tensorflow."""
    code = (
        "import sys, numpy as np\n"
        "from facemask.detect import PHOTO, WEBCAM, FaceDetector\n"
        "from facemask.images import load_image\n"
        "rgb = load_image('tests/data/faces/astronaut.jpg')\n"
        "for settings in (WEBCAM, PHOTO):\n"
        "    assert len(FaceDetector(settings).detect(rgb)) == 1\n"
        "assert 'mediapipe' not in sys.modules and 'tensorflow' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def assert_same_faces(ours: list[Face], theirs: list[Face]) -> None:
    """Same count; each face matched one to one at box IoU >= 0.9, same score and keypoints."""
    assert len(ours) == len(theirs), (ours, theirs)
    if not ours:
        return
    overlaps = box_iou(np.array([f.box for f in ours]), np.array([f.box for f in theirs]))
    match = overlaps.argmax(axis=1)
    assert sorted(match) == list(range(len(theirs)))  # one to one
    for i, j in enumerate(match):
        assert overlaps[i, j] >= 0.9, (ours[i], theirs[j])
        assert ours[i].score == pytest.approx(theirs[j].score, abs=0.01)
        np.testing.assert_allclose(ours[i].keypoints, theirs[j].keypoints, atol=1.5)


def test_litert_finds_what_the_tasks_detector_finds(detectors) -> None:
    ours = FaceDetector(LITERT)
    images = [photo(name) for name in sorted(FACES)]
    images += [webcam_frame()[0], three_face_strip()[0], photo("astronaut.jpg")[40:, 10:400]]
    found = 0
    for image in images:
        faces = ours.detect(image)
        assert_same_faces(faces, detectors["tasks"].detect(image))
        found += len(faces)
    assert found >= len(images)


def test_litert_finds_what_the_tasks_detector_finds_on_scene_photos(detectors) -> None:
    scenes = load_scenes(require_shared("datasets", "maskilc-scenes"))[::32]  # 21 photos
    low = dataclasses.replace(LITERT, min_score=0.3)
    found = 0
    with FaceDetector(low) as ours, FaceDetector(dataclasses.replace(low, runtime="tasks")) as mp:
        for scene in scenes:
            rgb = scene.load()
            faces = ours.detect(rgb)
            assert_same_faces(faces, mp.detect(rgb))
            found += len(faces)
    assert found >= 10


def test_ssd_anchors_follow_mediapipe_short_range_options() -> None:
    anchors = ssd_anchors()
    assert anchors.shape == (896, 2)
    # stride 8: a 16x16 grid, 2 anchors per cell; stride 16 (3 layers): 8x8, 6 per cell
    np.testing.assert_allclose(anchors[:2], [[1 / 32, 1 / 32]] * 2)
    np.testing.assert_allclose(anchors[2], [3 / 32, 1 / 32])
    np.testing.assert_allclose(anchors[512:518], [[1 / 16, 1 / 16]] * 6)
    np.testing.assert_allclose(anchors[-1], [15 / 16, 15 / 16])


def test_weighted_nms_merges_by_score() -> None:
    boxes = np.array([[0, 0, 10, 10], [2, 0, 12, 10], [50, 50, 60, 60]], dtype=np.float64)
    scores = np.array([0.6, 0.9, 0.7])
    keypoints = boxes[:, None, :2].copy()
    merged = weighted_nms(boxes, scores, keypoints, iou=0.3)
    assert [score for _, score, _ in merged] == [0.9, 0.7]
    box, _, points = merged[0]
    expected_x = (0.6 * 0 + 0.9 * 2) / 1.5
    np.testing.assert_allclose(box, [expected_x, 0, expected_x + 10, 10])
    np.testing.assert_allclose(points, [[expected_x, 0]])
    np.testing.assert_allclose(merged[1][0], boxes[2])
    assert len(weighted_nms(boxes, scores, keypoints, iou=0.9)) == 3


@pytest.mark.parametrize("model", ["short", "yunet"])
def test_max_pixels_bounds_the_work_and_maps_boxes_back(model: str) -> None:
    rgb = photo("astronaut.jpg")
    big = np.asarray(Image.fromarray(rgb).resize((4096, 4096), Image.Resampling.BILINEAR))
    settings = DetectorSettings(model=model, min_score=0.5, max_pixels=512 * 512, runtime="litert")
    with FaceDetector(settings) as bounded:
        (face,) = bounded.detect(big)
    with FaceDetector(dataclasses.replace(settings, max_pixels=0)) as whole:
        (small,) = whole.detect(rgb)
    assert iou(face.box, tuple(8 * v for v in small.box)) >= 0.95
    assert iou(face.box, tuple(8 * v for v in FACES["astronaut.jpg"])) >= 0.6
    nose_x, nose_y = face.keypoints[2]
    assert face.box[0] < nose_x < face.box[2] and face.box[1] < nose_y < face.box[3]


def test_yunet_scale_finds_smaller_faces() -> None:
    """A 9 px face: YuNet at the photo's own size misses it, at scale 2 it finds it."""
    rgb = photo("astronaut.jpg")
    tiny = np.asarray(Image.fromarray(rgb).resize((48, 48), Image.Resampling.LANCZOS))
    frame = np.full((240, 320, 3), 90, np.uint8)
    frame[100:148, 120:168] = tiny
    settings = DetectorSettings(model="yunet", min_score=0.6, min_face=4)
    with (
        FaceDetector(settings) as plain,
        FaceDetector(dataclasses.replace(settings, scale=2.0)) as x2,
    ):
        assert plain.detect(frame) == []
        (face,) = x2.detect(frame)
    x1, y1, x2, y2 = (v * 48 / 512 for v in FACES["astronaut.jpg"])
    expected = (120 + x1, 100 + y1, 120 + x2, 100 + y2)
    assert iou(face.box, expected) >= 0.5


def test_bundled_models_match_source_md() -> None:
    source = (ASSETS / "SOURCE.md").read_text()
    for name in MODEL_FILES.values():
        digest = hashlib.sha256((ASSETS / name).read_bytes()).hexdigest()
        assert re.search(rf"`{re.escape(name)}` \| [\d,]+ \| `{digest}`", source), name


@pytest.mark.parametrize("shape", [(32767, 128, 3), (100, 40000, 3)])
def test_hostile_sides_give_no_faces_and_no_error(detectors, shape: tuple[int, int, int]) -> None:
    """OpenCV refuses sides of 32767 px (warpAffine): the detector scales such images down first."""
    image = np.full(shape, 90, np.uint8)
    assert detectors["webcam"].detect(image) == [] and detectors["photo"].detect(image) == []


def test_yunet_ships_with_its_mit_licence() -> None:
    licence = (ASSETS / "LICENSE-yunet.txt").read_text()
    assert licence.startswith("MIT License") and "Shiqi Yu" in licence
    assert "LICENSE-yunet.txt" in (ASSETS / "SOURCE.md").read_text()
