"""One source for each training default: TrainConfig feeds the CLI, the form and the records."""

from __future__ import annotations

import dataclasses
import shlex

import pytest

from facemask.cli import build_parser
from facemask.config import (
    DEFAULTS,
    TrainConfig,
    config_from_args,
    form_config,
    recorded_command,
    train_args,
)
from facemask.files import REPO_ROOT
from facemask.models import BACKBONES


def parse_train(args: list[str]) -> TrainConfig:
    return config_from_args(build_parser().parse_args(["train", *args]))


def test_the_cli_defaults_are_the_config_defaults() -> None:
    parsed = parse_train(["--data", "d"])
    expected = TrainConfig(data="d", command=parsed.command)
    assert parsed == expected
    assert DEFAULTS["input_size"] == 128 and DEFAULTS["backbone"] == "mobilenetv2"


def test_the_cli_offers_the_registry_backbones(capsys) -> None:
    for key in BACKBONES:  # every registered backbone is a CLI choice ...
        assert parse_train(["--data", "d", "--backbone", key]).backbone == key
    with pytest.raises(SystemExit):  # ... and nothing else is
        parse_train(["--data", "d", "--backbone", "resnet50"])
    assert "invalid choice: 'resnet50'" in capsys.readouterr().err


@pytest.mark.parametrize(
    "config",
    [
        TrainConfig(data="data/mini", command=""),
        TrainConfig(
            data="x y/d", backbone="vgg16", input_size=32, epochs_head=5, epochs_fine=0,
            fine_tune_layers=0, batch_size=8, lr_head=1e-4, augment=False, weights="none",
            patience=2, seed=3, limit_per_class=12, export_tfjs=False, name="vgg", command="",
            crop_margin=0.1, occluders=True,
        ),
    ],
)  # fmt: skip
def test_train_args_give_back_the_config(config: TrainConfig) -> None:
    parsed = parse_train(train_args(config))
    assert dataclasses.replace(parsed, command="") == config


def test_the_form_maps_onto_the_config() -> None:
    off = form_config("data/mini", "mobilenetv2", 128, 2, 6, False, 30, False, "none")
    assert (off.epochs_head, off.epochs_fine, off.fine_tune_layers, off.augment) == (2, 0, 0, False)
    default_layers = form_config("data/mini", "vgg16", 160, 1, 4, True, None, True, "imagenet")
    assert default_layers.fine_tune_layers == BACKBONES["vgg16"].fine_tune_layers
    assert default_layers.epochs_fine == 4 and default_layers.input_size == 160
    with pytest.raises(ValueError, match="Unknown backbone"):
        form_config("data/mini", "resnet", 128, 1, 0, False, None, True, "none")


def test_recorded_commands_carry_no_machine_path(tmp_path) -> None:
    inside = REPO_ROOT / "tests" / "data" / "mini-dataset"
    argv = ["train", "--data", str(inside), "--runs-dir", str(tmp_path / "runs"),
            f"--weights={tmp_path / 'w.h5'}", "--name", "m"]  # fmt: skip
    command = recorded_command(argv)
    assert command == (
        "facemask train --data tests/data/mini-dataset --runs-dir runs --weights=w.h5 --name m"
    )
    assert str(tmp_path) not in command
    assert shlex.split(recorded_command(["train", "--weights", "imagenet"]))[-1] == "imagenet"
