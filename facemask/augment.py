"""Training-time augmentation, as tf.data maps on batches of RGB float images in [0, 255].

Besides the usual flips, rotation, zoom, shifts and colour, it fights the shortcut the training data
invites: most training photos are large, sharp face crops, while faces in real video are small
and soft. So crops are often shrunk and scaled back up, blurred, JPEG-compressed, darkened or
partly covered, and the classifier has to look at the mask, not at the sharpness.

Everything but JPEG runs on whole batches (one op for all images), which is what makes it
cheap enough for a 2-core CPU.
"""

from __future__ import annotations

import tensorflow as tf

LOW_RES_P = 0.4
LOW_RES_SIDES = (14, 48)  # px a face is shrunk to before being scaled back up
BLUR_P = 0.2
JPEG_P = 0.3
OCCLUDE_P = 0.2
GREY_P = 0.08
ROTATION_DEG = 15.0  # faces tilt: each crop turns by up to this many degrees either way
ZOOM = (0.8, 1.15)  # crop side relative to the image: < 1 zooms in, > 1 zooms out
SHIFT = 0.08  # crop centre offset, as a fraction of the side


def _chosen(batch: tf.Tensor, p: float) -> tf.Tensor:
    """A (B, 1, 1, 1) boolean mask picking each image with probability p."""
    return tf.random.uniform((tf.shape(batch)[0], 1, 1, 1)) < p


def _zoom_shift_flip(images: tf.Tensor, size: int) -> tf.Tensor:
    n = tf.shape(images)[0]
    side = tf.random.uniform((n,), *ZOOM)
    cy = 0.5 + tf.random.uniform((n,), -SHIFT, SHIFT)
    cx = 0.5 + tf.random.uniform((n,), -SHIFT, SHIFT)
    flip = tf.random.uniform((n,)) < 0.5
    x1, x2 = cx - side / 2, cx + side / 2
    x1, x2 = tf.where(flip, x2, x1), tf.where(flip, x1, x2)  # a box given right-to-left mirrors
    boxes = tf.stack([cy - side / 2, x1, cy + side / 2, x2], axis=1)
    # zooming out leaves borders: fill them with each image's mean colour
    return tf.image.crop_and_resize(
        images, boxes, tf.range(n), (size, size), extrapolation_value=-1.0
    )


def _rotate(images: tf.Tensor, size: int) -> tf.Tensor:
    """Turn each image about its centre by a random angle; corners are filled by reflection."""
    n = tf.shape(images)[0]
    angle = tf.random.uniform((n,), -ROTATION_DEG, ROTATION_DEG) * (3.141592653589793 / 180.0)
    cos, sin = tf.cos(angle), tf.sin(angle)
    centre = (size - 1) / 2.0
    # output pixel (x, y) samples input (cos*x - sin*y + tx, sin*x + cos*y + ty)
    tx = centre - cos * centre + sin * centre
    ty = centre - sin * centre - cos * centre
    zeros = tf.zeros_like(cos)
    transforms = tf.stack([cos, -sin, tx, sin, cos, ty, zeros, zeros], axis=1)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=transforms,
        output_shape=tf.constant([size, size]),
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="REFLECT",
    )


def _fill_outside(images: tf.Tensor, original: tf.Tensor) -> tf.Tensor:
    mean = tf.reduce_mean(original, axis=(1, 2), keepdims=True)
    return tf.where(images < 0.0, mean, images)


def _colour(images: tf.Tensor) -> tf.Tensor:
    n = tf.shape(images)[0]
    brightness = tf.random.uniform((n, 1, 1, 1), -40.0, 40.0)
    contrast = tf.random.uniform((n, 1, 1, 1), 0.65, 1.35)
    saturation = tf.random.uniform((n, 1, 1, 1), 0.6, 1.4)
    saturation = tf.where(_chosen(images, GREY_P), 0.0, saturation)
    mean = tf.reduce_mean(images, axis=(1, 2, 3), keepdims=True)
    images = (images - mean) * contrast + mean + brightness
    grey = tf.reduce_mean(images, axis=3, keepdims=True)
    return tf.clip_by_value(grey + (images - grey) * saturation, 0.0, 255.0)


def _low_resolution(images: tf.Tensor, size: int) -> tf.Tensor:
    side = tf.random.uniform((), *LOW_RES_SIDES, dtype=tf.int32)
    small = tf.image.resize(images, (side, side), method="area")
    soft = tf.image.resize(small, (size, size), method="bilinear")
    return tf.where(_chosen(images, LOW_RES_P), soft, images)


def _blur(images: tf.Tensor) -> tf.Tensor:
    # box blur, once or twice (a depthwise Gaussian was 30x slower on CPU)
    blurred = tf.nn.avg_pool2d(images, 3, 1, "SAME")
    twice = tf.random.uniform(()) < 0.5
    blurred = tf.cond(twice, lambda: tf.nn.avg_pool2d(blurred, 3, 1, "SAME"), lambda: blurred)
    return tf.where(_chosen(images, BLUR_P), blurred, images)


def _occlude(images: tf.Tensor, size: int) -> tf.Tensor:
    n = tf.shape(images)[0]
    grid = tf.range(size, dtype=tf.float32) / size
    h = tf.random.uniform((n, 1, 1), 0.12, 0.33)
    w = tf.random.uniform((n, 1, 1), 0.12, 0.33)
    y = tf.random.uniform((n, 1, 1)) * (1.0 - h)
    x = tf.random.uniform((n, 1, 1)) * (1.0 - w)
    inside = (
        (grid[None, :, None] >= y) & (grid[None, :, None] < y + h)
        & (grid[None, None, :] >= x) & (grid[None, None, :] < x + w)
    )  # fmt: skip
    colour = tf.random.uniform((n, 1, 1, 3), 0.0, 255.0)
    mask = inside[..., None] & _chosen(images, OCCLUDE_P)
    return tf.where(mask, colour, images)


def _jpeg(image: tf.Tensor) -> tf.Tensor:
    """JPEG artefacts on one image (the only per-image step)."""
    return tf.cond(
        tf.random.uniform(()) < JPEG_P,
        lambda: tf.image.random_jpeg_quality(image / 255.0, 25, 85) * 255.0,
        lambda: image,
    )


def augment_batch(images: tf.Tensor, size: int) -> tf.Tensor:
    """One random augmentation of each (size, size, 3) float crop in [0, 255] of a batch."""
    original = images
    images = _fill_outside(_zoom_shift_flip(_rotate(images, size), size), original)
    images = _colour(images)
    images = _low_resolution(images, size)  # what far-away faces look like
    images = _blur(images)
    images = _occlude(images, size)
    return tf.clip_by_value(images, 0.0, 255.0)


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
        ds = ds.map(lambda x, y: (_jpeg(x), y), num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.batch(batch_size)
    if training and augment:
        ds = ds.map(lambda x, y: (augment_batch(x, size), y), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)
