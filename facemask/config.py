"""What defines a training run, said once: TrainConfig's defaults feed `facemask train`'s flags
and the Training page's form; `train_args` turns a config back into those flags.

Light to import (no Keras): the app builds a config without loading TensorFlow.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field, fields

from facemask.classify import CROP_MARGIN
from facemask.files import portable_path
from facemask.models import BACKBONES, get_backbone

INPUT_SIZES = (96, 128, 160, 192, 224)
"""Input sizes the form offers (tools/tradeoff.py measured 96-224: docs/measurements.md)."""
WEIGHTS_CHOICES = ("imagenet", "none")
"""What a UI may start from; the CLI also takes a .h5 file."""
PATH_FLAGS = ("--data", "--runs-dir", "--weights", "--output", "--annotate", "--scenes")
"""Flags whose value a recorded command names portably (files.portable_path)."""


@dataclass
class TrainConfig:
    """Everything that defines a run (saved as config.json; `--resume` reads it back)."""

    data: str
    backbone: str = "mobilenetv2"
    input_size: int = 128
    epochs_head: int = 6
    epochs_fine: int = 6
    fine_tune_layers: int | None = None  # None: the backbone's default; 0: no fine-tuning
    batch_size: int = 32
    lr_head: float = 1e-3
    lr_fine: float = 1e-4
    augment: bool = True
    bare_weight: float = 1.0  # loss weight of faces without a mask (the class photos confuse)
    hard_negatives: float = 0.0  # share of bare training faces repeated in fine-tuning
    crop_margin: float = CROP_MARGIN  # context around each face box; the card carries it
    occluders: bool = False  # sunglasses, and hands / objects / beards over bare faces' mouths
    weights: str = "imagenet"
    patience: int = 3
    seed: int = 0
    limit_per_class: int | None = None  # for quick trials and tests
    export_tfjs: bool = True
    labels: list[str] | None = None
    name: str | None = None
    command: str = field(default_factory=lambda: recorded_command(sys.argv[1:]))

    def __post_init__(self) -> None:
        get_backbone(self.backbone)  # ValueError with the list of backbones
        if not 32 <= self.input_size <= 512:
            raise ValueError("input size must be between 32 and 512 px.")
        if self.epochs_head < 1 or self.epochs_fine < 0:
            raise ValueError("epochs: at least 1 for the head, 0 or more for fine-tuning.")
        if not 0.0 <= self.crop_margin <= 1.0:
            raise ValueError("crop margin must be between 0 and 1 (a fraction of the face box).")
        if self.fine_tune_layers is None:
            self.fine_tune_layers = get_backbone(self.backbone).fine_tune_layers


DEFAULTS = {f.name: f.default for f in fields(TrainConfig) if f.name not in ("data", "command")}
"""TrainConfig's defaults by field name (the form's initial values)."""


def recorded_command(argv: Sequence[str]) -> str:
    """`facemask ARGV` as a card records it: paths relative to the repository, or a folder's
    name when it lies outside (no machine paths in committed records)."""
    args = list(argv)
    for i, arg in enumerate(args):
        flag, eq, value = arg.partition("=")
        if eq and flag in PATH_FLAGS:
            args[i] = f"{flag}={_portable(value)}"
        elif i and args[i - 1] in PATH_FLAGS:
            args[i] = _portable(arg)
    return shlex.join(["facemask", *args])


def _portable(value: str) -> str:
    return value if value in WEIGHTS_CHOICES else portable_path(value)


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """`facemask train`'s flags, with TrainConfig's defaults."""
    d = DEFAULTS
    parser.add_argument("--data", help="dataset folder: one sub-folder of images per class")
    parser.add_argument("--backbone", choices=tuple(BACKBONES), default=d["backbone"])
    parser.add_argument(
        "--input-size", type=int, default=d["input_size"], help="model input side in px"
    )
    parser.add_argument(
        "--epochs-head", type=int, default=d["epochs_head"], help="epochs with the base frozen"
    )
    parser.add_argument(
        "--epochs-fine", type=int, default=d["epochs_fine"], help="fine-tuning epochs (0: none)"
    )
    parser.add_argument(
        "--fine-tune-layers",
        type=int,
        default=d["fine_tune_layers"],
        help="layers at the top of the base to unfreeze (default: per backbone; 0: none)",
    )
    parser.add_argument("--batch-size", type=int, default=d["batch_size"])
    parser.add_argument("--lr-head", type=float, default=d["lr_head"])
    parser.add_argument("--lr-fine", type=float, default=d["lr_fine"])
    parser.add_argument("--no-augment", action="store_true", help="turn augmentation off")
    parser.add_argument(
        "--bare-weight",
        type=float,
        default=d["bare_weight"],
        help="loss weight of without_mask faces",
    )
    parser.add_argument(
        "--hard-negatives",
        type=float,
        default=d["hard_negatives"],
        help="share of without_mask training faces, the most mask-like, repeated in fine-tuning",
    )
    parser.add_argument(
        "--occluders",
        action="store_true",
        help="augment with sunglasses, and hands, objects or beards over bare faces' mouths "
        "(off: measured to call more bare faces masked on scene photos)",
    )
    parser.add_argument(
        "--crop-margin",
        type=float,
        default=d["crop_margin"],
        help="context cut around each face box, as a fraction of its side (the app crops the same)",
    )
    parser.add_argument(
        "--weights",
        default=d["weights"],
        help="imagenet (from the Keras cache), none (from scratch), or a .h5 file",
    )
    parser.add_argument(
        "--patience", type=int, default=d["patience"], help="early-stopping patience (epochs)"
    )
    parser.add_argument("--seed", type=int, default=d["seed"])
    parser.add_argument(
        "--limit-per-class",
        type=int,
        default=d["limit_per_class"],
        help="use at most N images per class",
    )
    parser.add_argument("--no-tfjs", action="store_true", help="skip the TF.js export")
    parser.add_argument("--name", help="model name written in the card (default: the run id)")


NEGATED_FLAGS = {"augment": "--no-augment", "export_tfjs": "--no-tfjs"}
"""True-by-default fields and the flag that turns each off."""
NOT_FLAGS = ("labels", "command")
"""Fields no flag sets: the labels come from the dataset, the command is recorded."""


def _flag(name: str) -> str:
    return NEGATED_FLAGS.get(name, "--" + name.replace("_", "-"))


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The TrainConfig of parsed `facemask train` flags (each field from its flag, by name)."""
    values = {}
    for f in fields(TrainConfig):
        if f.name in NOT_FLAGS:
            continue
        dest = _flag(f.name).removeprefix("--").replace("-", "_")
        values[f.name] = not getattr(args, dest) if f.name in NEGATED_FLAGS else getattr(args, dest)
    values["data"] = str(values["data"] or "")
    return TrainConfig(**values)


def train_args(config: TrainConfig) -> list[str]:
    """`facemask train` flags that give back `config` (its labels and command aside)."""
    args: list[str] = []
    for f in fields(TrainConfig):
        value = getattr(config, f.name)
        if f.name in NOT_FLAGS or value is None:
            continue
        if f.name in NEGATED_FLAGS:
            args += [] if value else [_flag(f.name)]
        elif isinstance(value, bool):  # off by default: the flag alone turns it on
            args += [_flag(f.name)] if value else []
        else:
            args += [_flag(f.name), repr(value) if isinstance(value, float) else str(value)]
    return args


def form_config(
    data: str,
    backbone: str,
    input_size: int,
    epochs_head: int,
    epochs_fine: int,
    fine_tune: bool,
    fine_tune_layers: int | None,
    augment: bool,
    weights: str,
) -> TrainConfig:
    """The Training page's form as a TrainConfig: fine-tuning off means no fine-tuning epochs
    and no unfrozen layers; no layer count means the backbone's default."""
    return TrainConfig(
        data=data,
        backbone=backbone,
        input_size=int(input_size),
        epochs_head=int(epochs_head),
        epochs_fine=int(epochs_fine) if fine_tune else 0,
        fine_tune_layers=(None if fine_tune_layers is None else int(fine_tune_layers))
        if fine_tune
        else 0,
        augment=bool(augment),
        weights=weights,
    )
