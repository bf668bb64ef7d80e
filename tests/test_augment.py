"""Training augmentation on real face crops: shapes and ranges kept, images really changed."""

from __future__ import annotations

import cv2
import numpy as np
import tensorflow as tf

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
