"""Model and run folders: atomic writes, portable paths, what is servable and downloadable."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from facemask.data import MIN_IMAGES_PER_CLASS
from facemask.datasets import check_dataset, dataset_choices, find_dataset
from facemask.errors import DatasetError
from facemask.files import (
    REPO_ROOT,
    atomic_path,
    downloadable,
    is_servable,
    portable_path,
    read_json,
    write_json,
    zip_folder,
)


def test_an_atomic_write_that_fails_leaves_the_old_file_and_no_litter(tmp_path: Path) -> None:
    target = tmp_path / "card.json"
    write_json(target, {"name": "old"})
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text('{"name": "half')
        raise RuntimeError("killed mid-write")
    assert read_json(target) == {"name": "old"}
    assert [p.name for p in tmp_path.iterdir()] == ["card.json"]
    with atomic_path(tmp_path / "best.weights.h5") as tmp:
        assert tmp.name.endswith("best.weights.h5")  # Keras checks the file name's ending
        tmp.write_bytes(b"w")
    assert (tmp_path / "best.weights.h5").read_bytes() == b"w"
    assert read_json(tmp_path / "missing.json", {}) == {}


def test_portable_paths_are_repository_relative_or_a_folder_name(tmp_path: Path) -> None:
    assert portable_path(REPO_ROOT / "tests" / "data" / "mini-dataset") == "tests/data/mini-dataset"
    assert portable_path(REPO_ROOT) == "."
    assert portable_path(tmp_path / "datasets" / "faces") == "faces"


def test_servable_and_downloadable_files(tmp_path: Path, tiny_model_dir: Path) -> None:
    assert is_servable(tiny_model_dir) and not is_servable(tmp_path)
    assert downloadable(tiny_model_dir, "model.tflite") == tiny_model_dir / "model.tflite"
    assert downloadable(tiny_model_dir, "tfjs") is None  # the tiny model has no TF.js export
    (tmp_path / "tfjs").mkdir()
    assert downloadable(tmp_path, "tfjs") is None  # a folder without model.json is not one
    (tmp_path / "tfjs" / "model.json").write_text("{}")
    (tmp_path / "tfjs" / "group1-shard1of1.bin").write_bytes(b"\0" * 10)
    assert downloadable(tmp_path, "tfjs") == tmp_path / "tfjs"
    with zipfile.ZipFile(io.BytesIO(zip_folder(tmp_path / "tfjs"))) as archive:
        assert archive.namelist() == ["tfjs/group1-shard1of1.bin", "tfjs/model.json"]
        assert archive.read("tfjs/model.json") == b"{}"


def test_a_dataset_is_chosen_among_the_root_sub_folders_only(tmp_path: Path) -> None:
    root = tmp_path / "data"
    for folder in ("faces/with_mask", "faces/without_mask", ".hidden/with_mask"):
        (root / folder).mkdir(parents=True)
    photo = (REPO_ROOT / "tests/data/faces/astronaut.jpg").read_bytes()
    for label in ("with_mask", "without_mask"):
        for i in range(MIN_IMAGES_PER_CLASS):
            (root / "faces" / label / f"{i}.jpg").write_bytes(photo)
    choices = dataset_choices([root])
    assert choices == {"data/faces": root / "faces"}
    counts = {"with_mask": MIN_IMAGES_PER_CLASS, "without_mask": MIN_IMAGES_PER_CLASS}
    assert check_dataset(root / "faces", [root]) == counts
    for outside in (root / "faces" / "with_mask", tmp_path, root / ".hidden"):
        with pytest.raises(DatasetError, match="not inside a dataset folder this app may read"):
            check_dataset(outside, [root])


def test_a_recorded_dataset_is_found_again_by_its_portable_name(tmp_path: Path) -> None:
    (tmp_path / "faces").mkdir()
    assert find_dataset("tests/data/mini-dataset", []) == REPO_ROOT / "tests/data/mini-dataset"
    assert find_dataset("faces", [tmp_path]) == tmp_path / "faces"
    assert find_dataset("chandrikadeb7-face-mask", [tmp_path]) is None
