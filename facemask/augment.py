"""Training-time augmentation, as tf.data maps on RGB float images in [0, 255].

Besides the usual flips, rotation, zoom and colour, it fights the shortcut the training data
invites: most training photos are large, sharp face crops, while faces in real video are small
and soft. So crops are often shrunk and scaled back up, blurred, JPEG-compressed, darkened or
partly covered, and the classifier has to look at the mask, not at the sharpness.
"""

from __future__ import annotations

import keras
import tensorflow as tf

LOW_RES_P = 0.4
LOW_RES_MIN_SIDE = 14
BLUR_P = 0.2
JPEG_P = 0.3
OCCLUDE_P = 0.2
GREY_P = 0.08


def _maybe(p: float) -> tf.Tensor:
    return tf.random.uniform(()) < p


def _low_resolution(image: tf.Tensor, size: int) -> tf.Tensor:
    side = tf.random.uniform(
        (), LOW_RES_MIN_SIDE, max(LOW_RES_MIN_SIDE + 1, int(size * 0.6)), tf.int32
    )
    small = tf.image.resize(image, (side, side), method="area", antialias=True)
    return tf.image.resize(small, (size, size), method="bilinear")


def _blur(image: tf.Tensor) -> tf.Tensor:
    sigma = tf.random.uniform((), 0.6, 2.0)
    x = tf.range(-3, 4, dtype=tf.float32)
    kernel_1d = tf.exp(-(x**2) / (2.0 * sigma**2))
    kernel_1d /= tf.reduce_sum(kernel_1d)
    kernel = tf.tile((kernel_1d[:, None] * kernel_1d[None, :])[:, :, None, None], (1, 1, 3, 1))
    padded = tf.pad(image[None], [[0, 0], [3, 3], [3, 3], [0, 0]], mode="REFLECT")
    return tf.nn.depthwise_conv2d(padded, kernel, (1, 1, 1, 1), "VALID")[0]


def _occlude(image: tf.Tensor, size: int) -> tf.Tensor:
    h = tf.random.uniform((), size // 8, size // 3, tf.int32)
    w = tf.random.uniform((), size // 8, size // 3, tf.int32)
    y = tf.random.uniform((), 0, size - h, tf.int32)
    x = tf.random.uniform((), 0, size - w, tf.int32)
    color = tf.random.uniform((3,), 0.0, 255.0)
    mask = tf.pad(tf.ones((h, w, 1)), [[y, size - y - h], [x, size - x - w], [0, 0]])
    return image * (1.0 - mask) + mask * color


def augment_face(image: tf.Tensor, size: int) -> tf.Tensor:
    """One random augmentation of one (size, size, 3) float crop in [0, 255]."""
    image = tf.image.random_flip_left_right(image)
    # zoom in and shift: a random crop of 80-100% of the side, scaled back
    scale = tf.random.uniform((), 0.8, 1.0)
    side = tf.cast(tf.cast(size, tf.float32) * scale, tf.int32)
    image = tf.image.resize(tf.image.random_crop(image, (side, side, 3)), (size, size))
    # light and colour
    image = image + tf.random.uniform((), -40.0, 40.0)
    mean = tf.reduce_mean(image)
    image = (image - mean) * tf.random.uniform((), 0.65, 1.35) + mean
    image = tf.clip_by_value(image, 0.0, 255.0)
    image = tf.image.random_saturation(image / 255.0, 0.6, 1.4) * 255.0
    image = tf.image.random_hue(image / 255.0, 0.04) * 255.0
    image = tf.cond(
        _maybe(GREY_P),
        lambda: tf.image.grayscale_to_rgb(tf.image.rgb_to_grayscale(image)),
        lambda: image,
    )
    # what real, far-away faces look like
    image = tf.cond(_maybe(LOW_RES_P), lambda: _low_resolution(image, size), lambda: image)
    image = tf.cond(_maybe(BLUR_P), lambda: _blur(image), lambda: image)
    image = tf.clip_by_value(image, 0.0, 255.0)
    image = tf.cond(
        _maybe(JPEG_P),
        lambda: tf.image.random_jpeg_quality(image / 255.0, 25, 85) * 255.0,
        lambda: image,
    )
    image = tf.cond(_maybe(OCCLUDE_P), lambda: _occlude(image, size), lambda: image)
    image = tf.clip_by_value(image, 0.0, 255.0)
    image.set_shape((size, size, 3))
    return image


def rotation_layer(seed: int = 0) -> keras.layers.Layer:
    """Small random rotations, applied to whole batches."""
    return keras.layers.RandomRotation(0.05, fill_mode="reflect", seed=seed)


def make_dataset(
    crops, labels, batch_size: int, *, training: bool, augment: bool = True, seed: int = 0
) -> tf.data.Dataset:
    """tf.data pipeline over uint8 crops: (float images in [0, 255], int labels)."""
    size = int(crops.shape[1])
    ds = tf.data.Dataset.from_tensor_slices((crops, labels))
    if training:
        ds = ds.shuffle(len(crops), seed=seed, reshuffle_each_iteration=True)
    ds = ds.map(lambda x, y: (tf.cast(x, tf.float32), y), num_parallel_calls=tf.data.AUTOTUNE)
    if training and augment:
        ds = ds.map(lambda x, y: (augment_face(x, size), y), num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.batch(batch_size)
    if training and augment:
        rotate = rotation_layer(seed)
        ds = ds.map(lambda x, y: (rotate(x, training=True), y), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)
