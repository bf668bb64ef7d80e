"""crop_faces, smoothing, annotation and the whole Pipeline on real photos and a real model."""

import dataclasses

import cv2
import numpy as np
import pytest

from facemask.classify import MaskClassifier
from facemask.detect import (
    MODEL_NAMES,
    PHOTO,
    WEBCAM,
    DetectorSettings,
    FaceDetector,
    describe,
)
from facemask.face_models import box_iou
from facemask.images import load_image
from facemask.pipeline import (
    DETECTOR_PRESETS,
    PRESET_USES,
    Detection,
    FaceTracker,
    Pipeline,
    annotate,
    crop_faces,
    crop_interpolation,
    label_color,
    preset_caption,
    square_box,
)

LABELS = ("with_mask", "without_mask")


def test_square_box_is_centred_and_padded():
    x1, y1, x2, y2 = square_box((10, 20, 30, 60), margin=0.5)
    assert x2 - x1 == y2 - y1 == 60
    assert (x1 + x2) / 2 == 20 and (y1 + y2) / 2 == 40


def test_crop_faces_pads_at_the_border_by_replication():
    frame = np.zeros((100, 100, 3), np.uint8)
    frame[:, :50] = 200
    crops = crop_faces(frame, [(0, 0, 40, 40), (60, 60, 100, 100)], size=32, margin=0.5)
    assert crops.shape == (2, 32, 32, 3) and crops.dtype == np.uint8
    assert crops[0, :, :8].min() == 200  # left of the image: the bright border repeated
    assert crops[1].max() == 0


def test_crop_faces_of_nothing_is_an_empty_batch():
    assert crop_faces(np.zeros((10, 10, 3), np.uint8), [], size=16).shape == (0, 16, 16, 3)


def _det(label: str, probs, box=(10, 10, 50, 50)) -> Detection:
    return Detection(box, label, max(probs), 0.9, tuple(probs))


def test_tracker_holds_a_label_against_one_contrary_frame():
    tracker = FaceTracker()
    for _ in range(5):
        out = tracker.update([_det("with_mask", (0.9, 0.1))], LABELS)
    flicker = tracker.update([_det("without_mask", (0.45, 0.55), box=(12, 11, 52, 51))], LABELS)
    assert flicker[0].label == "with_mask" and flicker[0].track_id == out[0].track_id
    for _ in range(4):
        out = tracker.update([_det("without_mask", (0.1, 0.9))], LABELS)
    assert out[0].label == "without_mask"


def test_tracker_settles_on_worn_wrong_with_three_labels():
    labels = ("mask_worn_incorrectly", "with_mask", "without_mask")
    tracker = FaceTracker()
    for _ in range(5):
        out = tracker.update([_det("with_mask", (0.1, 0.8, 0.1))], labels)
    assert out[0].label == "with_mask"
    for _ in range(5):  # the mask slips under the nose
        out = tracker.update([_det("mask_worn_incorrectly", (0.8, 0.15, 0.05))], labels)
    assert out[0].label == "mask_worn_incorrectly" and len(out[0].probabilities) == 3


def test_tracker_keeps_separate_faces_apart_and_forgets_lost_ones():
    tracker = FaceTracker(max_missed=1)
    a = _det("with_mask", (0.9, 0.1), box=(0, 0, 40, 40))
    b = _det("without_mask", (0.2, 0.8), box=(200, 0, 240, 40))
    first = tracker.update([a, b], LABELS)
    assert len({d.track_id for d in first}) == 2
    tracker.update([], LABELS)
    tracker.update([], LABELS)
    again = tracker.update([a], LABELS)
    assert again[0].track_id not in {d.track_id for d in first}


def test_annotate_draws_in_label_colours_without_touching_the_input():
    frame = np.full((120, 160, 3), 127, np.uint8)
    dets = [
        _det("with_mask", (0.9, 0.1), (20, 40, 70, 100)),
        _det("without_mask", (0.1, 0.9), (90, 40, 140, 100)),
    ]
    out = annotate(frame, dets, overlay=["12.0 fps"])
    assert frame.min() == frame.max() == 127
    assert tuple(out[70, 20]) == label_color("with_mask")
    assert tuple(out[70, 140]) == label_color("without_mask")
    assert label_color("with_mask") != label_color("without_mask")


def test_worn_wrong_is_amber_and_the_legend_names_every_label():
    frame = np.full((160, 320, 3), 127, np.uint8)
    dets = [_det("mask_worn_incorrectly", (0.1, 0.1, 0.8), (20, 20, 80, 90))]
    labels = ("mask_worn_incorrectly", "with_mask", "without_mask")
    plain = annotate(frame, dets)
    out = annotate(frame, dets, legend=labels)
    amber = label_color("mask_worn_incorrectly")
    assert tuple(plain[60, 20]) == amber
    assert len({amber, label_color("with_mask"), label_color("without_mask")}) == 3
    assert amber[0] > 200 and 100 < amber[1] < 200 and amber[2] < 80  # amber, not green or red
    band = out[-30:]  # the legend: a dark band with one swatch per label, bottom-left
    assert (plain[-30:] == 127).all()
    for label in labels:
        assert (band == np.array(label_color(label), np.uint8)).all(axis=2).sum() > 20, label


@pytest.fixture(scope="module")
def pipeline(tiny_model_dir) -> Pipeline:
    return Pipeline(FaceDetector(WEBCAM), MaskClassifier(tiny_model_dir))


def test_pipeline_finds_and_classifies_a_real_face(pipeline, face_images):
    found = 0
    for path in face_images:
        rgb = load_image(path)
        for det in pipeline.process(rgb):
            found += 1
            x1, y1, x2, y2 = det.box
            assert 0 <= x1 < x2 <= rgb.shape[1] and 0 <= y1 < y2 <= rgb.shape[0]
            assert det.label in LABELS and 0.5 <= det.confidence <= 1.0
            assert abs(sum(det.probabilities) - 1) < 1e-3
    assert found >= 1


def test_pipeline_on_an_empty_frame_finds_nothing(pipeline):
    assert pipeline.process(np.zeros((480, 640, 3), np.uint8)) == []


def test_classify_whole_treats_the_image_as_one_face(pipeline, face_images):
    det = pipeline.classify_whole(load_image(face_images[0]))
    assert det.box[:2] == (0, 0) and det.label in LABELS


def test_photo_crops_look_like_the_webcam_crops_the_classifier_learnt_from(face_images):
    """PHOTO (YuNet) and WEBCAM (BlazeFace, as in training) cut nearly the same square."""
    with FaceDetector(PHOTO) as photo, FaceDetector(WEBCAM) as webcam:
        for path in face_images:
            rgb = load_image(path)
            (ours,), (trained_on,) = photo.detect(rgb), webcam.detect(rgb)
            squares = np.array([square_box(ours.box), square_box(trained_on.box)])
            assert box_iou(squares[:1], squares[1:])[0, 0] >= 0.7, path.name


def test_photo_pipeline_classifies_every_test_face(tiny_model_dir, face_images):
    with FaceDetector(PHOTO) as detector:
        pipeline = Pipeline(detector, MaskClassifier(tiny_model_dir))
        for path in face_images:
            (det,) = pipeline.process(load_image(path))
            assert det.label in LABELS and det.detection_score >= PHOTO.min_score


def test_crops_shrink_by_area_from_2x_and_bilinearly_below():
    """crop_interpolation: INTER_AREA only where bilinear would skip source pixels."""
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (600, 600, 3), dtype=np.uint8)
    for side, method in ((300, cv2.INTER_AREA), (256, cv2.INTER_AREA), (200, cv2.INTER_LINEAR),
                         (100, cv2.INTER_LINEAR)):  # fmt: skip
        assert crop_interpolation(side, 128) == method
        crop = crop_faces(frame, [(0, 0, side, side)], 128, margin=0.0)[0]
        expected = cv2.resize(frame[:side, :side], (128, 128), interpolation=method)
        assert np.array_equal(crop, expected), side


def test_preset_captions_say_what_the_presets_do() -> None:
    """The sidebar's caption of each preset is built from its settings, so it stays true."""
    for name, preset in DETECTOR_PRESETS.items():
        caption = preset_caption(name)
        assert caption.startswith(f"{name.capitalize()} preset ({PRESET_USES[name]}): ")
        assert MODEL_NAMES[preset.model] in caption
        assert ("close-up" in caption) == (preset.close_up_pass and preset.model != "short")
        assert ("megapixels" in caption) == bool(preset.max_pixels)
        assert "tile" not in caption
    assert "YuNet" in preset_caption("photo") and "BlazeFace" in preset_caption("webcam")
    full = DetectorSettings(model="full")
    assert describe(full) == "one full-range BlazeFace pass over the whole image"
    assert describe(dataclasses.replace(PHOTO, close_up_pass=False, max_pixels=0, scale=2.0)) == (
        "one YuNet pass over the whole image enlarged 2x"
    )
