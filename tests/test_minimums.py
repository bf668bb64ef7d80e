"""Too little data is said, not served: a minimum of images per class and per split, one sentence
before training starts, and a run whose test split is too small to measure is not served."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from facemask.config import TrainConfig
from facemask.data import MIN_IMAGES_PER_CLASS, class_counts
from facemask.errors import DatasetError, ModelError
from facemask.events import Error, read_events
from facemask.files import CARD_FILE, read_json
from facemask.runs import NOT_SERVABLE, RunStore
from facemask.train import train

APP = Path(__file__).resolve().parent.parent / "app.py"


def subset(mini_dataset: Path, folder: Path, per_class: dict[str, int]) -> Path:
    for label, n in per_class.items():
        (folder / label).mkdir(parents=True)
        for photo in sorted((mini_dataset / label).iterdir())[:n]:
            shutil.copy(photo, folder / label)
    return folder


def test_a_class_below_the_minimum_is_one_sentence(tmp_path: Path, mini_dataset: Path) -> None:
    folder = subset(mini_dataset, tmp_path / "lopsided", {"with_mask": 12, "without_mask": 1})
    with pytest.raises(DatasetError) as caught:
        class_counts(folder)
    assert str(caught.value) == (
        "Too few images to train and test on in lopsided: without_mask has 1; "
        f"each class needs at least {MIN_IMAGES_PER_CLASS}."
    )


def test_the_training_form_refuses_too_little_data(
    tmp_path: Path, monkeypatch, mini_dataset: Path
) -> None:
    data = tmp_path / "data"
    subset(mini_dataset, data / "lopsided", {"with_mask": 12, "without_mask": 1})
    monkeypatch.setenv("FACEMASK_DATA_DIR", str(data))
    monkeypatch.setenv("FACEMASK_RUNS_DIR", str(tmp_path / "runs"))
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.switch_page("app_pages/training.py").run()
    at.selectbox(key="form_dataset").set_value("data/lopsided")
    at.button[0].click().run()
    assert not at.exception
    (message,) = [e.value for e in at.main.get("error")]
    assert message.startswith("Too few images to train and test on in lopsided")
    assert RunStore(tmp_path / "runs").in_progress() == []  # nothing was started


def test_splits_too_small_stop_before_training(tmp_path: Path, mini_dataset: Path) -> None:
    """4 images per class used to fail inside numpy ("need at least one array to stack")."""
    folder = subset(mini_dataset, tmp_path / "four", {"with_mask": 4, "without_mask": 4})
    store = RunStore(tmp_path / "runs", tmp_path / "models")
    with pytest.raises(DatasetError, match="Too few distinct images in four to train"):
        train(TrainConfig(data=str(folder), weights="none"), store, "four", log=lambda _: None)
    (event,) = [e for e in read_events(store.partial_dir("four")) if isinstance(e, Error)]
    assert "each class needs at least 5 in train, 1 in val, 1 in test" in event.message


def test_a_run_measured_on_too_few_images_is_not_served(tmp_path: Path, mini_dataset: Path) -> None:
    folder = subset(mini_dataset, tmp_path / "small", {"with_mask": 11, "without_mask": 11})
    store = RunStore(tmp_path / "runs", tmp_path / "models")
    config = TrainConfig(
        data=str(folder), weights="none", input_size=32, epochs_head=1, epochs_fine=0,
        batch_size=8, export_tfjs=False, command="tests/test_minimums.py",
    )  # fmt: skip
    run_dir = train(config, store, "small", log=lambda _: None)
    card = read_json(run_dir / CARD_FILE)
    assert card[NOT_SERVABLE].startswith("Not served: its test split holds only 1 with_mask")
    assert store.finished() == [run_dir]  # listed and compared, with its reason
    assert store.models() == [] and store.not_servable() == [("small", card[NOT_SERVABLE])]
    with pytest.raises(ModelError, match="Not served"):
        store.resolve_model("small")
