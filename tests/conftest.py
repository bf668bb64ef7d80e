"""Shared test fixtures: an isolated Keras cache, real face photos, and tiny real models.

KERAS_HOME points at a temporary folder holding the ImageNet MobileNetV2 file from ../shared
(when present), set before anything imports keras, so no test can reach the network for weights.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
DATA = TESTS / "data"
SHARED = Path(os.environ.get("FACEMASK_SHARED", REPO.parent / "shared"))
MNV2_WEIGHTS = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"

_keras_home = Path(tempfile.mkdtemp(prefix="facemask-keras-home-"))
atexit.register(shutil.rmtree, _keras_home, ignore_errors=True)
(_keras_home / "models").mkdir()
if (SHARED / "weights" / MNV2_WEIGHTS).is_file():
    os.symlink(SHARED / "weights" / MNV2_WEIGHTS, _keras_home / "models" / MNV2_WEIGHTS)
os.environ["KERAS_HOME"] = str(_keras_home)
if "FACEMASK_CACHE_DIR" not in os.environ:
    os.environ["FACEMASK_CACHE_DIR"] = tempfile.mkdtemp(prefix="facemask-cache-")
    atexit.register(shutil.rmtree, os.environ["FACEMASK_CACHE_DIR"], ignore_errors=True)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def has_imagenet_weights() -> bool:
    return (_keras_home / "models" / MNV2_WEIGHTS).is_file()


def require_shared(*parts: str) -> Path:
    """A path inside ../shared, or skip (outside CI) when it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{path} is missing in CI")
        pytest.skip(f"{path} is not available here")
    return path


@pytest.fixture(scope="session")
def mini_dataset() -> Path:
    """48 real labelled photos (24 per class), a folder of class folders."""
    return DATA / "mini-dataset"


@pytest.fixture(scope="session")
def face_images() -> list[Path]:
    """Real face photos (see tests/data/faces/SOURCE.md)."""
    faces = sorted(p for p in (DATA / "faces").glob("*") if p.suffix in (".jpg", ".png"))
    assert faces, "tests/data/faces holds no photos"
    return faces


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory, mini_dataset: Path) -> Path:
    """A real, finished run: MobileNetV2 at 64 px, trained for three epochs on the mini dataset
    (from ImageNet weights when ../shared has them, else from scratch), exported to TFLite.
    Tests must not modify it: copy it first (see `model_copy`)."""
    from facemask.runs import RunStore
    from facemask.train import TrainConfig, train

    store = RunStore(tmp_path_factory.mktemp("runs"), tmp_path_factory.mktemp("models"))
    config = TrainConfig(
        data=str(mini_dataset),
        input_size=64,
        epochs_head=2,
        epochs_fine=1,
        fine_tune_layers=10,
        batch_size=16,
        weights="imagenet" if has_imagenet_weights() else "none",
        export_tfjs=False,
        name="tiny",
        command="tests/conftest.py tiny_model_dir",
    )
    return train(config, store, run_id="tiny", log=lambda _: None)


@pytest.fixture
def model_copy(tiny_model_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny model that a test may change."""
    return Path(shutil.copytree(tiny_model_dir, tmp_path / "tiny"))


@pytest.fixture(scope="session")
def shipped_model_dir() -> Path:
    """The default model committed under models/ (the app serves it)."""
    path = REPO / "models" / "mobilenetv2"
    if not (path / "card.json").is_file():
        pytest.fail("models/mobilenetv2 is missing: the shipped default model must be committed")
    return path


@pytest.fixture()
def face_scenes(tmp_path: Path, face_images: list[Path]) -> Path:
    """A scene folder (annotations.json + images/) of the labelled test photos, each pasted in
    the middle of a grey canvas twice its size with its face annotated."""
    import json

    from PIL import Image

    root = tmp_path / "scenes"
    (root / "images").mkdir(parents=True)
    entries = []
    for i, path in enumerate(p for p in face_images if "_mask_" in p.name):
        image = Image.open(path).convert("RGB")
        w, h = image.size
        canvas = Image.new("RGB", (w * 2, h * 2), (90, 90, 90))
        canvas.paste(image, (w // 2, h // 2))
        canvas.save(root / "images" / f"{i}.png")
        label = "without_mask" if path.name.startswith("without") else "with_mask"
        box = [w // 2 + w // 6, h // 2 + h // 8, w // 2 + 5 * w // 6, h // 2 + 7 * h // 8]
        entries.append(
            {"file": f"{i}.png", "width": 2 * w, "height": 2 * h,
             "faces": [{"box": box, "label": label}]}
        )  # fmt: skip
    (root / "annotations.json").write_text(json.dumps(entries))
    return root
