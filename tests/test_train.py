"""Training end to end on real photos: the run contract, cancel and resume, clear errors."""

import json
import os
import signal
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import has_imagenet_weights

from facemask import history
from facemask.classify import MaskClassifier
from facemask.errors import DatasetError, RunError, WeightsMissingError
from facemask.events import Cancelled, Done, Epoch, EpochBegin, Error, read_events
from facemask.models import build_classifier
from facemask.runs import RunStore
from facemask.train import (
    CHECKPOINT_FILE,
    TrainConfig,
    TrainingCancelled,
    _Fitter,
    _save_weights,
    _StopRequests,
    train,
)


def test_finished_run_follows_the_model_directory_contract(tiny_model_dir: Path):
    for name in (
        "model.keras",
        "model.tflite",
        "model_int8.tflite",
        "card.json",
        "config.json",
        "history.csv",
        "metrics.json",
        "events.jsonl",
    ):
        assert (tiny_model_dir / name).is_file(), name
    assert not (tiny_model_dir / "state.json").exists()
    card = json.loads((tiny_model_dir / "card.json").read_text())
    assert card["labels"] == ["with_mask", "without_mask"] and card["input_size"] == 64
    assert card["crop_margin"] == 0.25  # the context its crops had; the app cuts the same
    assert card["architecture"] == "MobileNetV2" and card["parameters"]["total"] > 2_000_000
    assert card["serving"]["file"] in ("model.tflite", "model_int8.tflite")
    test = card["metrics"]["test"]
    assert test["n"] == sum(map(sum, test["confusion"])) > 0
    assert set(card["metrics"]["test_small_faces"]["accuracy_by_side_px"]) == {"24", "32", "48"}
    rows = history.read(tiny_model_dir)
    assert [row["phase"] for row in rows] == ["head"] * 2 + ["fine"]
    assert all(row["images_per_s"] > 0 for row in rows)
    assert read_events(tiny_model_dir)[-1] == Done("tiny", read_events(tiny_model_dir)[-1].seconds)
    # the records name the dataset portably (relative to the repository), never a machine path
    assert json.loads((tiny_model_dir / "config.json").read_text())["data"] == (
        "tests/data/mini-dataset"
    )
    assert card["dataset"]["path"] == "tests/data/mini-dataset"
    # the served model really classifies: TFLite and Keras runtimes agree on the test crops
    assert MaskClassifier(tiny_model_dir).runtime == "tflite"


@pytest.mark.skipif(not has_imagenet_weights(), reason="needs the ImageNet weights from ../shared")
def test_imagenet_start_learns_the_mini_dataset(tiny_model_dir: Path):
    card = json.loads((tiny_model_dir / "card.json").read_text())
    assert card["metrics"]["val"]["accuracy"] + card["metrics"]["test"]["accuracy"] > 1.2


def test_missing_class_stops_before_training(tmp_path, mini_dataset):
    (tmp_path / "data" / "with_mask").mkdir(parents=True)
    store = RunStore(tmp_path / "runs", tmp_path / "models")
    config = TrainConfig(data=str(tmp_path / "data"), labels=["with_mask", "without_mask"])
    with pytest.raises(DatasetError):
        train(config, store, run_id="bad", log=lambda _: None)
    assert store.finished() == []
    assert isinstance(read_events(store.partial_dir("bad"))[-1], Error)


def test_missing_imagenet_weights_name_the_file(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(
        WeightsMissingError, match="vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
    ):
        build_classifier("vgg16", 64, 2, weights="imagenet")
    model, _ = build_classifier("vgg16", 32, 3, weights="none")
    assert model.output_shape == (None, 3)


def _wait_for(predicate, timeout: float, what: str):
    end = time.time() + timeout
    while time.time() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def test_cancelled_run_is_not_listed_and_resumes_to_completion(tmp_path, mini_dataset):
    store = RunStore(tmp_path / "runs", tmp_path / "models")
    args = [
        "--data",
        str(mini_dataset),
        "--input-size",
        "48",
        "--epochs-head",
        "30",
        "--epochs-fine",
        "0",
        "--weights",
        "none",
        "--batch-size",
        "8",
        "--no-tfjs",
        "--limit-per-class",
        "12",
        "--runs-dir",
        str(store.root),
    ]
    store.launch(args, "cancel-me")
    with pytest.raises(RunError, match="one training at a time"):
        store.launch(args, "second")
    events = lambda: read_events(store.partial_dir("cancel-me"))  # noqa: E731
    _wait_for(lambda: any(isinstance(e, Epoch) for e in events()), 180, "a first epoch")
    assert store.cancel("cancel-me")
    _wait_for(lambda: store.active() is None, 60, "the training to stop")
    partial = store.partial_dir("cancel-me")
    assert isinstance(events()[-1], Cancelled)
    assert store.finished() == [] and store.in_progress()[0].name == "cancel-me"
    done_before = len(history.read(partial))
    assert done_before >= 1
    # Cancel keeps the last finished epoch: its checkpoint, and the state that names it.
    assert (partial / CHECKPOINT_FILE).is_file()
    assert json.loads((partial / "state.json").read_text())["epoch"] == done_before
    assert f"epoch {done_before}) is kept" in events()[-1].message
    cancelled_at = len(events())

    config = json.loads((partial / "config.json").read_text())
    config["epochs_head"] = done_before + 1  # finish quickly: one more epoch
    (partial / "config.json").write_text(json.dumps(config))
    said: list[str] = []
    run_dir = train(TrainConfig(data=""), store, run_id="cancel-me", resume=True, log=said.append)
    assert run_dir == store.root / "cancel-me" and store.in_progress() == []
    # Resume continues from that checkpoint: no finished epoch is trained again.
    assert f"  resuming phase head after epoch {done_before}/{done_before + 1}" in said
    resumed = [e.epoch for e in read_events(run_dir)[cancelled_at:] if isinstance(e, EpochBegin)]
    assert resumed == [done_before + 1]
    epochs = [int(row["epoch"]) for row in history.read(run_dir)]
    assert epochs == list(range(1, done_before + 2))
    assert os.path.isfile(run_dir / "model.tflite")


def test_a_stop_during_checkpointing_waits_until_the_checkpoint_is_whole():
    stops = _StopRequests()
    previous = signal.signal(signal.SIGTERM, stops.handler)
    written = []
    try:
        with pytest.raises(TrainingCancelled):
            with stops.protect():
                os.kill(os.getpid(), signal.SIGTERM)
                written.append("checkpoint")
                written.append("state")
        assert written == ["checkpoint", "state"]
        with pytest.raises(TrainingCancelled):  # outside a protected block: at once
            os.kill(os.getpid(), signal.SIGTERM)
            written.append("never")
        assert written == ["checkpoint", "state"]
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_a_damaged_checkpoint_is_a_clear_error_not_a_keras_traceback(tmp_path):
    import keras

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    _save_weights(model, tmp_path / CHECKPOINT_FILE)
    assert not list(tmp_path.glob(".tmp-*"))
    fitter = SimpleNamespace(run_dir=tmp_path)
    _Fitter._restore(fitter, model)  # a whole checkpoint loads
    data = (tmp_path / CHECKPOINT_FILE).read_bytes()
    (tmp_path / CHECKPOINT_FILE).write_bytes(data[: len(data) // 2])
    with pytest.raises(RunError, match="cannot be read.*start a new training"):
        _Fitter._restore(fitter, model)


def test_hard_negatives_repeat_the_most_mask_like_bare_faces(
    tiny_model_dir, mini_dataset, tmp_path
):
    import cv2
    import keras
    import numpy as np

    from facemask.images import load_image
    from facemask.train import HARD_COPIES

    model = keras.saving.load_model(tiny_model_dir / "model.keras", safe_mode=True)
    paths = sorted(mini_dataset.glob("*/*.jpg"))[::3]
    x = np.stack([cv2.resize(load_image(p), (64, 64), interpolation=cv2.INTER_AREA) for p in paths])
    y = np.array([int(p.parent.name == "without_mask") for p in paths], dtype=np.int32)
    config = TrainConfig(data=str(mini_dataset), input_size=64, hard_negatives=0.5, batch_size=8)
    fit = _Fitter(
        config, tmp_path, None, lambda _: None, {"train": x, "val": x}, {"train": y, "val": y},
        {}, _StopRequests(), bare=1,
    )  # fmt: skip
    fit.add_hard_negatives(model, bare=1)
    n_bare, n_hard = int((y == 1).sum()), int(0.5 * int((y == 1).sum()))
    assert n_hard > 0 and fit.n_train == len(x) + HARD_COPIES * n_hard
    labels = np.concatenate([batch_y.numpy() for _, batch_y in fit.train_ds])
    assert int((labels == 1).sum()) == n_bare + HARD_COPIES * n_hard  # bare faces only
    assert int((labels == 0).sum()) == int((y == 0).sum())


def test_resume_trims_a_history_row_written_after_the_last_saved_state(tmp_path: Path) -> None:
    """A SIGKILL between history.csv and state.json leaves one row that resume must drop."""
    path = tmp_path / "history.csv"
    rows = [history.COLUMNS] + [[e, "head", e, 0.5, 0.8, 0.4, 0.9, 1e-3, 10, 50] for e in (1, 2, 3)]
    path.write_text("\n".join(",".join(map(str, r)) for r in rows) + "\n")
    history.trim(tmp_path, 2)
    kept = path.read_text().splitlines()
    assert kept[0].split(",") == list(history.COLUMNS)
    assert [line.split(",")[0] for line in kept[1:]] == ["1", "2"]
    history.trim(tmp_path, 2)  # nothing more to drop: unchanged
    assert path.read_text().splitlines() == kept
