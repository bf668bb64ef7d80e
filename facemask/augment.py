"""Training-time augmentation, as tf.data maps on batches of RGB float images in [0, 255].

Besides the usual flips, rotation, zoom, shifts and colour, it fights the shortcut the training data
invites: most training photos are large, sharp face crops, while faces in real video are small
and soft. So crops are often shrunk and scaled back up, blurred, JPEG-compressed, darkened or
partly covered, and the classifier has to look at the mask, not at the sharpness.

Occluders (`occluders=True`, `facemask train --occluders`; off by default) add hard cases real
photos show and the training set lacks: on bare faces something in front of the mouth that is
not a mask (a hand, a cup, a foreign texture) or a beard over the jaw; on any face sunglasses.
They are drawn where a face sits in a crop cut with the training margin, before the crop is
turned and shifted. Off by default: on scene photos, models trained with them called more bare
faces masked, not fewer.

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
SUNGLASSES_P = 0.1
BARE_COVER_P = 0.3  # bare faces only: a hand, an object or a beard over the lower face
# where a face sits in a crop with the inference margin, as fractions of the side
EYES_Y = (0.36, 0.48)
MOUTH_Y = 0.7


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
    # box blur, once or twice (much cheaper on a CPU than a depthwise Gaussian)
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


def _grid(size: int) -> tuple[tf.Tensor, tf.Tensor]:
    """(1, size, 1) row and (1, 1, size) column coordinates in [0, 1)."""
    grid = tf.range(size, dtype=tf.float32) / size
    return grid[None, :, None], grid[None, None, :]


def _sunglasses(images: tf.Tensor, size: int) -> tf.Tensor:
    """Two dark lenses over the eyes, joined by a bridge (label-preserving for every class)."""
    n = tf.shape(images)[0]
    ys, xs = _grid(size)
    cy = tf.random.uniform((n, 1, 1), *EYES_Y)
    ry = tf.random.uniform((n, 1, 1), 0.045, 0.08)
    rx = tf.random.uniform((n, 1, 1), 0.09, 0.14)
    gap = tf.random.uniform((n, 1, 1), 0.14, 0.2)
    inside = tf.zeros((n, size, size), dtype=tf.bool)
    for side in (-1.0, 1.0):
        cx = 0.5 + side * gap
        inside |= ((ys - cy) / ry) ** 2 + ((xs - cx) / rx) ** 2 <= 1.0
    inside |= (tf.abs(ys - cy) < 0.012) & (tf.abs(xs - 0.5) < gap)
    tint = tf.random.uniform((n, 1, 1, 3), 0.0, 60.0) + tf.random.uniform((n, 1, 1, 1), 0, 30)
    glass = images * 0.15 + tint
    return tf.where(inside[..., None] & _chosen(images, SUNGLASSES_P), glass, images)


def _bare_cover(images: tf.Tensor, size: int, bare: tf.Tensor) -> tf.Tensor:
    """On bare faces only: part of the lower face hidden by something that is not a mask.

    Each chosen face gets one of: a skin-toned hand (the face's own cheek colour, shaded), a
    patch of another photo of the batch (a cup, food, a scarf corner...), or a grainy beard
    on the chin and jaw. Covers are blobs that leave part of the mouth or chin visible, unlike a
    mask's band from ear to ear.
    """
    n = tf.shape(images)[0]
    ys, xs = _grid(size)
    cy = MOUTH_Y + tf.random.uniform((n, 1, 1), -0.06, 0.12)
    cx = 0.5 + tf.random.uniform((n, 1, 1), -0.2, 0.2)
    ry = tf.random.uniform((n, 1, 1), 0.07, 0.16)
    rx = tf.random.uniform((n, 1, 1), 0.08, 0.2)
    blob = ((ys - cy) / ry) ** 2 + ((xs - cx) / rx) ** 2 <= 1.0
    kind = tf.random.uniform((n, 1, 1, 1), 0, 3, dtype=tf.int32)
    # a hand: the cheek's colour, lit from the top
    cheek = tf.reduce_mean(
        images[:, int(0.45 * size) : int(0.6 * size), int(0.25 * size) : int(0.4 * size)],
        axis=(1, 2), keepdims=True,
    )  # fmt: skip
    shade = 1.1 - 0.35 * tf.clip_by_value((ys - cy + ry) / (2 * ry), 0.0, 1.0)
    hand = cheek * shade[..., None]
    # another photo's background or hair: its top corners, moved onto this mouth
    other = tf.roll(tf.roll(tf.roll(images, 1, axis=0), size // 2, axis=1), size // 2, axis=2)
    # a beard: the chin and jaw below the lips, dark or grey, grainy, the mouth left clear
    chin = MOUTH_Y + tf.random.uniform((n, 1, 1), 0.04, 0.08)
    jaw = (ys > chin) & (((xs - 0.5) / 0.2) ** 2 + ((ys - chin) / 0.25) ** 2 <= 1.0)
    grain = tf.random.uniform(tf.shape(images[..., :1]), 0.6, 1.0)
    hair = tf.random.uniform((n, 1, 1, 1), 20.0, 200.0) * tf.random.uniform((n, 1, 1, 3), 0.8, 1)
    alpha = tf.random.uniform((n, 1, 1, 1), 0.5, 0.85)
    beard = images * (1.0 - alpha) + alpha * hair * grain
    cover = tf.where(kind == 0, hand, tf.where(kind == 1, other, beard))
    region = tf.where(kind[..., 0] == 2, jaw, blob)
    chosen = _chosen(images, BARE_COVER_P) & tf.reshape(bare, (-1, 1, 1, 1))
    return tf.where(region[..., None] & chosen, tf.clip_by_value(cover, 0.0, 255.0), images)


def _jpeg(image: tf.Tensor) -> tf.Tensor:
    """JPEG artefacts on one image (the only per-image step)."""
    return tf.cond(
        tf.random.uniform(()) < JPEG_P,
        lambda: tf.image.random_jpeg_quality(image / 255.0, 25, 85) * 255.0,
        lambda: image,
    )


def augment_batch(
    images: tf.Tensor, size: int, bare: tf.Tensor | None = None, occluders: bool = False
) -> tf.Tensor:
    """One random augmentation of each (size, size, 3) float crop in [0, 255] of a batch.

    With `occluders`: sunglasses on any face, and `_bare_cover` on the faces that `bare` (B,)
    booleans marks as without a mask.
    """
    if occluders:
        images = _sunglasses(images, size)
        if bare is not None:
            images = _bare_cover(images, size, bare)
    original = images
    images = _fill_outside(_zoom_shift_flip(_rotate(images, size), size), original)
    images = _colour(images)
    images = _low_resolution(images, size)  # what far-away faces look like
    images = _blur(images)
    images = _occlude(images, size)
    return tf.clip_by_value(images, 0.0, 255.0)


def make_dataset(
    crops,
    labels,
    batch_size: int,
    *,
    training: bool,
    augment: bool = True,
    seed: int = 0,
    bare_index: int | None = None,
    occluders: bool = False,
) -> tf.data.Dataset:
    """tf.data pipeline over uint8 crops: (float images in [0, 255], int labels).

    `occluders`: add sunglasses, and on faces of label `bare_index` (without a mask) the
    bare-face covers (augment_batch).
    """
    size = int(crops.shape[1])
    ds = tf.data.Dataset.from_tensor_slices((crops, labels))
    if training:
        ds = ds.shuffle(len(crops), seed=seed, reshuffle_each_iteration=True)
    ds = ds.map(lambda x, y: (tf.cast(x, tf.float32), y), num_parallel_calls=tf.data.AUTOTUNE)
    if training and augment:
        ds = ds.map(lambda x, y: (_jpeg(x), y), num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.batch(batch_size)
    if training and augment:

        def batch_map(x, y):
            bare = None if bare_index is None else tf.equal(y, bare_index)
            return augment_batch(x, size, bare, occluders), y

        ds = ds.map(batch_map, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)
