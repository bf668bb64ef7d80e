"""Backbone registry: MobileNetV2 and VGG-16 from keras.applications, with a small head.

Preprocessing lives inside the model, so every runtime (Keras, TFLite, TF.js) feeds raw RGB
pixels in [0, 255]. It is built from standard layers only, so `safe_mode` loading needs no
custom objects.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from facemask.errors import WeightsMissingError

if TYPE_CHECKING:  # keras is imported where a model is built: the registry stays light
    import keras

DROPOUT = 0.3
"""Dropout before the classifier's softmax layer."""


@dataclass(frozen=True)
class Backbone:
    """A keras.applications base network and how to feed it."""

    key: str
    title: str
    application: str
    """The keras.applications constructor."""
    preprocessing: str
    """Input scaling: "tf" (to [-1, 1]) or "caffe" (RGB -> BGR, minus the ImageNet mean)."""
    weights_file: str
    fine_tune_layers: int
    """How many layers at the top of the base are unfrozen in the fine-tuning phase."""


BACKBONES: dict[str, Backbone] = {
    "mobilenetv2": Backbone(
        "mobilenetv2",
        "MobileNetV2",
        "MobileNetV2",
        "tf",
        "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5",
        fine_tune_layers=54,  # blocks 13-16 and the last 1x1 conv
    ),
    "vgg16": Backbone(
        "vgg16",
        "VGG-16",
        "VGG16",
        "caffe",
        "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
        fine_tune_layers=4,  # block5: three convs and the pool
    ),
}

VGG_MEAN_BGR = (103.939, 116.779, 123.68)


def keras_cache_dir() -> Path:
    """Where Keras looks for downloaded weights: $KERAS_HOME/models or ~/.keras/models."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "models"


def resolve_weights(backbone: str, weights: str) -> str | None:
    """Turn 'imagenet' | 'none' | a file path into what keras.applications takes.

    ImageNet weights come only from the Keras cache, never the network.
    """
    if weights in ("none", "", None):
        return None
    spec = get_backbone(backbone)
    path = keras_cache_dir() / spec.weights_file if weights == "imagenet" else Path(weights)
    if not path.is_file():
        raise WeightsMissingError(
            f"ImageNet weights for {spec.title} are missing: put {spec.weights_file} in "
            f"{keras_cache_dir()} (or set KERAS_HOME), or train from scratch with --weights none."
        )
    return str(path)


def get_backbone(key: str) -> Backbone:
    try:
        return BACKBONES[key]
    except KeyError:
        raise ValueError(
            f"Unknown backbone {key!r}: choose one of {', '.join(BACKBONES)}."
        ) from None


def _preprocess(spec: Backbone, x: keras.KerasTensor) -> keras.KerasTensor:
    import keras

    if spec.preprocessing == "tf":
        return keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="preprocess")(x)
    # VGG-16 ("caffe" mode): RGB -> BGR and subtract the ImageNet mean, as a fixed 1x1 conv.
    to_bgr = keras.layers.Conv2D(3, 1, name="preprocess", trainable=False)
    y = to_bgr(x)
    kernel = np.zeros((1, 1, 3, 3), dtype=np.float32)
    for out_channel, in_channel in enumerate((2, 1, 0)):
        kernel[0, 0, in_channel, out_channel] = 1.0
    to_bgr.set_weights([kernel, -np.asarray(VGG_MEAN_BGR, dtype=np.float32)])
    return y


def build_classifier(
    backbone: str,
    input_size: int,
    num_classes: int,
    weights: str = "imagenet",
) -> tuple[keras.Model, keras.Model]:
    """Build (classifier, base); input is RGB float in [0, 255]."""
    import keras

    spec = get_backbone(backbone)
    weights_path = resolve_weights(backbone, weights)
    shape = (input_size, input_size, 3)
    application = getattr(keras.applications, spec.application)
    base = application(input_shape=shape, include_top=False, weights=None)
    if weights_path:
        base.load_weights(weights_path)
    # A pretrained base starts frozen (phase 1 trains the head); a random one trains throughout.
    base.trainable = weights_path is None
    inputs = keras.Input(shape=shape, name="image")
    x = _preprocess(spec, inputs)
    x = base(x, training=False)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    x = keras.layers.Dropout(DROPOUT, name="dropout")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="probabilities")(x)
    model = keras.Model(inputs, outputs, name=f"facemask_{backbone}")
    return model, base


def unfreeze_top(base: keras.Model, layers: int) -> int:
    """Make the top `layers` layers of the base trainable (BatchNorm stays frozen).

    Returns how many layers are now trainable.
    """
    import keras

    base.trainable = True
    cut = max(0, len(base.layers) - layers)
    count = 0
    for i, layer in enumerate(base.layers):
        trainable = i >= cut and not isinstance(layer, keras.layers.BatchNormalization)
        layer.trainable = trainable
        count += int(trainable)
    return count
