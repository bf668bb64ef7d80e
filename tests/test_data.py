"""Dataset scanning, leak-free splitting and crop extraction on real photos."""

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import require_shared

from facemask.data import (
    CROP_STORE_SIZE,
    extract_crops,
    near_duplicate_groups,
    scan_dataset,
    split_dataset,
    thumbnail,
)
from facemask.detect import TRAINING, FaceDetector
from facemask.errors import DatasetError
from facemask.images import load_image


@pytest.fixture
def messy_dataset(tmp_path: Path, mini_dataset: Path) -> Path:
    root = tmp_path / "messy"
    shutil.copytree(mini_dataset, root)
    (root / "with_mask" / "notes.txt").write_text("not an image")
    (root / "without_mask" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    return root


def test_scan_skips_and_lists_bad_files(messy_dataset):
    scan = scan_dataset(messy_dataset)
    assert scan.labels == ("with_mask", "without_mask")
    assert scan.counts() == {"with_mask": 24, "without_mask": 24}
    reasons = dict(scan.skipped)
    assert "not an image file" in reasons["with_mask/notes.txt"]
    assert "not a readable image" in reasons["without_mask/broken.jpg"]


def test_missing_folder_missing_class_and_empty_class_are_clear_errors(tmp_path, mini_dataset):
    with pytest.raises(DatasetError, match="does not exist"):
        scan_dataset(tmp_path / "nope")
    one = tmp_path / "one"
    shutil.copytree(mini_dataset / "with_mask", one / "with_mask")
    with pytest.raises(DatasetError, match="one folder per class"):
        scan_dataset(one)
    with pytest.raises(DatasetError, match="no folder for class without_mask"):
        scan_dataset(one, labels=["with_mask", "without_mask"])
    (one / "without_mask").mkdir()
    (one / "without_mask" / "x.txt").write_text("x")
    with pytest.raises(DatasetError, match="without_mask .* no readable image"):
        scan_dataset(one)


def test_flips_recrops_and_reencodes_are_grouped(face_images):
    rgb = load_image(face_images[0])
    h, w = rgb.shape[:2]
    variants = [
        rgb,
        rgb[:, ::-1],
        rgb[h // 40 : h - h // 40, w // 40 : w - w // 40],
        np.clip(rgb.astype(int) + 6, 0, 255).astype(np.uint8),
    ]
    other = load_image(face_images[-1])
    groups = near_duplicate_groups(np.stack([thumbnail(v) for v in [*variants, other]]))
    assert len(set(groups[:4])) == 1
    assert groups[4] != groups[0]


def test_split_is_deterministic_stratified_and_complete(mini_dataset):
    scan = scan_dataset(mini_dataset)
    a, b = split_dataset(scan, seed=0), split_dataset(scan, seed=0)
    assert a == b
    everything = sorted(i for idx in a.values() for i in idx)
    assert everything == list(range(len(scan.items)))
    for name in ("val", "test"):
        labels = {scan.items[i].label for i in a[name]}
        assert labels == {0, 1}, f"{name} split lacks a class"


def test_no_near_duplicate_group_of_the_real_dataset_straddles_splits():
    root = require_shared("datasets", "chandrikadeb7-face-mask")
    scan = scan_dataset(root)
    where = {}
    for name, indices in split_dataset(scan).items():
        for i in indices:
            where[str(scan.items[i].path.relative_to(root))] = name
    groups: dict[str, set[str]] = {}
    with open(root / "manifest.csv") as handle:
        for row in csv.DictReader(handle):
            if int(row["dup_group_size"]) > 1:
                groups.setdefault(row["dup_group"], set()).add(where[row["file"]])
    assert len(groups) > 100
    assert [g for g, splits in groups.items() if len(splits) > 1] == []


def test_crops_are_cached_by_content(mini_dataset, tmp_path):
    scan = scan_dataset(mini_dataset, limit_per_class=3)
    detector = FaceDetector(TRAINING)
    first = extract_crops(scan.items, detector, cache_dir=tmp_path)
    assert first.crops.shape == (6, CROP_STORE_SIZE, CROP_STORE_SIZE, 3)
    assert first.face_found.sum() >= 4
    assert len(list((tmp_path / "crops").glob("*.png"))) == 6
    second = extract_crops(scan.items, detector, cache_dir=tmp_path)
    assert np.array_equal(first.crops, second.crops)
    assert np.array_equal(first.face_found, second.face_found)
    assert not list((tmp_path / "crops").glob(".tmp-*"))  # written through atomic_path

    # A torn cache (a kill mid-write, a full disk) is a miss: cut again, rewritten whole.
    records = sorted((tmp_path / "crops").glob("*.json"))
    whole = records[0].read_text()
    records[0].write_text(whole[: len(whole) // 2])
    records[1].write_text("")
    png = records[2].with_suffix(".png")
    png.write_bytes(png.read_bytes()[:100])
    third = extract_crops(scan.items, detector, cache_dir=tmp_path)
    assert np.array_equal(first.crops, third.crops)
    assert np.array_equal(first.face_found, third.face_found)
    assert np.array_equal(first.padded_retry, third.padded_retry)
    assert records[0].read_text() == whole and json.loads(records[1].read_text())
