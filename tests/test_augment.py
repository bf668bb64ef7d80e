"""Training augmentation on real face crops: shapes and ranges kept, images really changed."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import tensorflow as tf

from facemask import augment
from facemask.augment import ROTATION_DEG, _rotate, augment_batch, make_dataset
from facemask.images import load_image


def _batch(face_images, size: int = 96) -> np.ndarray:
    crops = [cv2.resize(load_image(p), (size, size)) for p in face_images[:4]]
    return np.stack(crops).astype(np.float32)


def test_rotation_turns_about_the_centre_within_the_limit(face_images):
    size = 97  # odd: one centre pixel
    line = np.zeros((1, size, size, 3), np.float32)
    line[0, size // 2, 10:-10] = 255.0  # a horizontal bar through the centre
    turned = _rotate(tf.constant(np.repeat(line, 16, axis=0)), size).numpy()
    assert np.all(turned[:, size // 2, size // 2] > 100)  # the centre stays put
    for image in turned:
        ys, xs = np.nonzero(image[..., 0] > 127)
        slope = np.polyfit(xs, ys, 1)[0]
        assert abs(np.degrees(np.arctan(slope))) <= ROTATION_DEG + 1.0
    angles = [np.polyfit(*np.nonzero(im[..., 0].T > 127), 1)[0] for im in turned]
    assert np.std(angles) > 0.02  # each image gets its own angle
    flat = _rotate(tf.fill((2, 32, 32, 3), 77.0), 32).numpy()
    assert np.allclose(flat, 77.0, atol=1e-3)  # reflected corners: no black wedges


def test_augmented_batches_keep_shape_and_range_and_differ(face_images):
    batch = _batch(face_images)
    out = augment_batch(tf.constant(batch), 96).numpy()
    assert out.shape == batch.shape and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 255.0
    assert np.abs(out - batch).mean() > 5.0
    labels = np.arange(len(batch)) % 2
    images, ys = next(iter(make_dataset(batch.astype(np.uint8), labels, 4, training=False)))
    assert np.array_equal(images.numpy(), batch) and list(ys.numpy()) == list(labels)


def test_bare_face_covers_touch_only_bare_faces_and_only_below_the_eyes(face_images, monkeypatch):
    monkeypatch.setattr(augment, "BARE_COVER_P", 1.0)
    batch = _batch(face_images)
    bare = tf.constant([True, False, True, False])
    out = augment._bare_cover(tf.constant(batch), 96, bare).numpy()
    changed = np.abs(out - batch).max(axis=3) > 0
    assert not changed[1].any() and not changed[3].any()  # masked faces are left alone
    for i in (0, 2):
        rows = np.nonzero(changed[i].any(axis=1))[0]
        assert len(rows) > 5, "a bare face got no cover"
        assert rows.min() >= int(0.45 * 96)  # mouth, chin and jaw (covers reach 0.48 at most)
    assert out.min() >= 0.0 and out.max() <= 255.0


def test_sunglasses_cover_the_eyes_only_with_dark_flat_lenses(face_images, monkeypatch):
    monkeypatch.setattr(augment, "SUNGLASSES_P", 1.0)
    batch = _batch(face_images)
    out = augment._sunglasses(tf.constant(batch), 96).numpy()
    changed = np.abs(out - batch).max(axis=3) > 0
    rows = np.nonzero(changed.any(axis=(0, 2)))[0]
    top, bottom = augment.EYES_Y[0] - 0.09, augment.EYES_Y[1] + 0.09
    assert rows.min() >= int(top * 96) and rows.max() <= int(bottom * 96) + 1
    for image, before, mask in zip(out, batch, changed, strict=True):
        assert mask.sum() > 100  # two lenses
        assert image[mask].max() <= 0.15 * 255 + 90 + 1e-3  # dark glass, whatever was behind
        # tinted glass keeps 15% of the eyes' detail
        assert np.allclose(image[mask].std(axis=0), 0.15 * before[mask].std(axis=0), rtol=0.02)


def test_training_batches_with_a_bare_label_keep_labels_and_range(face_images):
    batch = _batch(face_images).astype(np.uint8)
    labels = np.array([0, 1, 0, 1])
    ds = make_dataset(batch, labels, 4, training=True, bare_index=1)
    images, ys = next(iter(ds))
    assert images.shape == batch.shape and sorted(ys.numpy().tolist()) == [0, 0, 1, 1]
    assert float(tf.reduce_min(images)) >= 0.0 and float(tf.reduce_max(images)) <= 255.0


@pytest.mark.parametrize("occluders", [False, True])
def test_occluders_are_drawn_only_when_asked_for(face_images, monkeypatch, occluders):
    """Sunglasses and bare-face covers are opt-in (`--occluders`); the rest always runs."""
    monkeypatch.setattr(augment, "SUNGLASSES_P", 1.0)
    monkeypatch.setattr(augment, "BARE_COVER_P", 1.0)
    drawn = []
    for name in ("_sunglasses", "_bare_cover"):
        real = getattr(augment, name)
        monkeypatch.setattr(
            augment, name, lambda *a, _real=real, _name=name: drawn.append(_name) or _real(*a)
        )
    batch = _batch(face_images).astype(np.uint8)
    ds = make_dataset(batch, np.array([0, 1, 0, 1]), 4, training=True, bare_index=1,
                      occluders=occluders)  # fmt: skip
    images, _ = next(iter(ds))
    assert images.shape == batch.shape
    assert drawn == (["_sunglasses", "_bare_cover"] if occluders else [])
