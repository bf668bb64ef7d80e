"""Exports (TFLite float/int8, TF.js float32/float16) checked against Keras on real face crops.

TF.js results come from real TF.js 4.22 under node. Those tests skip only when
node_modules/@tensorflow/tfjs is missing outside CI; in CI (CI=true) they fail instead.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest

from facemask.classify import MaskClassifier, read_card
from facemask.convert import export_tfjs, export_tflite
from facemask.export import export_all
from facemask.images import load_image
from facemask.pipeline import crop_faces
from facemask.serving import (
    BROWSER_MAX_BYTES,
    BROWSER_MIN_AGREEMENT,
    INT8_MAX_TIME_RATIO,
    INT8_MIN_AGREEMENT,
    choose_serving,
)
from facemask.tfjs_node import RUN_TFJS_SCRIPT, tfjs_unavailable
from facemask.verify import (
    TFJS_VERIFY_MAX,
    interleaved_ms_per_crop,
    keras_probabilities,
    verify_tfjs,
    verify_tflite,
)

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
LABELS = ["with_mask", "without_mask"]
TINY_SIZE = 64


def require_tfjs() -> None:
    reason = tfjs_unavailable()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"TF.js must run in CI: {reason}")
        pytest.skip(reason)


def face_crops(folder: Path, size: int) -> np.ndarray:
    """Whole-photo square crops of the dataset's face photos, as the classifier sees them."""
    photos = sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".jpg", ".png"))
    assert photos, f"{folder} holds no photos"
    crops = []
    for path in photos:
        rgb = load_image(path)
        height, width = rgb.shape[:2]
        crops.append(crop_faces(rgb, [(0, 0, width, height)], size, margin=0.0)[0])
    return np.stack(crops)


@pytest.fixture(scope="module")
def crops64(mini_dataset: Path) -> np.ndarray:
    return face_crops(mini_dataset, TINY_SIZE)


@pytest.fixture(scope="module")
def random_model(crops64: np.ndarray):
    """MobileNetV2 at 64 px, random but deterministic weights. BatchNorm statistics are set
    from the crops (else random weights collapse every output to 0.5), so outputs vary."""
    import keras

    from facemask.models import build_classifier

    keras.utils.set_random_seed(7)
    model, base = build_classifier("mobilenetv2", TINY_SIZE, len(LABELS), weights="none")
    base.trainable = True
    for layer in base.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.0
    model(crops64.astype(np.float32), training=True)
    base.trainable = False
    probs = keras_probabilities(model, crops64)
    assert probs[:, 0].std() > 0.01, "the test model must not answer the same for every crop"
    return model


@pytest.fixture(scope="module")
def random_tfjs(random_model, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_tfjs(random_model, tmp_path_factory.mktemp("tfjs") / "tfjs")


# ------------------------------------------------------------------ one model folder, every export


@pytest.fixture(scope="module")
def exported(tiny_model_dir: Path, mini_dataset: Path, tmp_path_factory: pytest.TempPathFactory):
    """A copy of the trained tiny model, exported to every format on its own face crops;
    tempfile's folder is a private one, to see what the export leaves behind. Without node,
    the TF.js files are still written; only their checks skip."""
    model_dir = Path(shutil.copytree(tiny_model_dir, tmp_path_factory.mktemp("m") / "tiny"))
    before = {p.relative_to(model_dir).as_posix() for p in model_dir.rglob("*") if p.is_file()}
    size = read_card(model_dir)["input_size"]
    crops = face_crops(mini_dataset, size)
    scratch = tmp_path_factory.mktemp("tempdir")
    saved_tempdir = tempfile.tempdir
    tempfile.tempdir = str(scratch)
    try:
        exports = export_all(model_dir, crops, tfjs=True)
    finally:
        tempfile.tempdir = saved_tempdir
    return model_dir, crops, exports, scratch, before


def test_export_all_writes_every_variant_and_nothing_else(exported) -> None:
    model_dir, _, exports, scratch, before = exported
    tfjs_dirs = {"tfjs", "tfjs_float16"} | ({"tfjs_mixed"} if tfjs_unavailable() is None else set())
    assert set(exports) == {"tflite", "tflite_int8"} | tfjs_dirs
    assert {"card.json", "model.keras", "model.tflite", "model_int8.tflite"} <= before
    tfjs_files = {name for key in tfjs_dirs for name in exports[key]["files"]}
    assert {"tfjs/model.json", "tfjs_float16/model.json"} <= tfjs_files
    after = {p.relative_to(model_dir).as_posix() for p in model_dir.rglob("*") if p.is_file()}
    assert after == before | tfjs_files
    assert {p.name for p in model_dir.iterdir() if p.is_dir()} == tfjs_dirs
    # Temp work (SavedModel, staging, crop files) is gone; TF's own autograph files go at exit.
    leftovers = [p.name for p in scratch.iterdir() if not p.name.startswith("__autograph")]
    assert leftovers == []


def test_card_gets_exports_files_and_serving(exported) -> None:
    model_dir, crops, exports, *_ = exported
    card = read_card(model_dir)
    assert card["exports"] == exports
    for name, size in card["files"].items():
        assert (model_dir / name).stat().st_size == size, name
    for variant in exports.values():
        for name in variant.get("files", {variant.get("file")}):
            assert name in card["files"]
    assert exports["tflite"]["n"] == exports["tflite_int8"]["n"] == len(crops)
    assert exports["tflite_int8"]["bytes"] < exports["tflite"]["bytes"] / 2
    assert exports["tfjs_float16"]["bytes"] < exports["tfjs"]["bytes"] * 0.6
    assert json.loads((model_dir / "tfjs" / "model.json").read_text())["userDefinedMetadata"] == {
        "facemask": {"labels": card["labels"], "input_size": card["input_size"]}
    }


def test_float_tflite_matches_keras(exported) -> None:
    check = exported[2]["tflite"]
    assert check["agreement"] == 100.0
    assert check["max_abs_diff"] < 1e-4
    assert check["keras_predicted"] == check["predicted"]


def test_int8_tflite_is_measured(exported) -> None:
    _, crops, exports, *_ = exported
    assert_measured(exports["tflite_int8"], len(crops))
    assert exports["tflite_int8"]["input"] == "uint8"


def test_float_tfjs_matches_keras_in_real_tfjs(exported) -> None:
    require_tfjs()
    _, crops, exports, *_ = exported
    check = exports["tfjs"]
    assert check["runtime"].startswith("TF.js 4.22.0")
    assert check["n"] == min(len(crops), TFJS_VERIFY_MAX)
    assert check["agreement"] == 100.0
    assert check["max_abs_diff"] < 1e-4


def test_float16_tfjs_is_measured_in_real_tfjs_and_stays_close(exported) -> None:
    require_tfjs()
    _, crops, exports, *_ = exported
    assert_measured(exports["tfjs_float16"], min(len(crops), TFJS_VERIFY_MAX))
    # float16 weights move a probability by hundredths at most (0.020 seen on the tiny model,
    # which sits nearer 0.5 than a trained one); a broken export moves it by tenths
    assert exports["tfjs_float16"]["max_abs_diff"] < 0.03


def test_browser_export_fits_the_download_budget_and_is_measured_on_every_crop(exported) -> None:
    require_tfjs()
    model_dir, crops, exports, *_ = exported
    mixed = exports["tfjs_mixed"]
    assert_measured(mixed, len(crops))
    assert "wasm backend" in mixed["runtime"]
    assert mixed["bytes"] <= BROWSER_MAX_BYTES < exports["tfjs_float16"]["bytes"]
    assert mixed["float16_weights"]  # the small tensors at least stay float16
    spec = json.loads((model_dir / "tfjs_mixed" / "model.json").read_text())
    dtypes = {
        w["quantization"]["dtype"] for g in spec["weightsManifest"] for w in g["weights"]
        if "quantization" in w
    }  # fmt: skip
    assert dtypes == {"uint8", "float16"}
    serving = read_card(model_dir)["serving_browser"]
    good = mixed["agreement"] >= BROWSER_MIN_AGREEMENT
    assert serving["dir"] == ("tfjs_mixed" if good else "tfjs_float16"), serving


def assert_measured(check: dict, n: int) -> None:
    """A quantized export: measured on every crop, not bit-exact, not garbage."""
    assert check["n"] == n
    assert 0.0 <= check["agreement"] <= 100.0
    assert check["disagreements"] == round(n * (100 - check["agreement"]) / 100)
    assert 0 <= check["near_ties"] <= check["disagreements"]
    assert 0.0 < check["max_abs_diff"] < 1.0
    assert sum(check["predicted"].values()) == n


def test_serving_choice_follows_the_int8_rule(exported) -> None:
    model_dir, crops, exports, *_ = exported
    serving = read_card(model_dir)["serving"]
    int8, float_ = exports["tflite_int8"], exports["tflite"]
    int8_ok = (
        int8["agreement"] >= INT8_MIN_AGREEMENT
        and int8["ms_per_crop"] <= INT8_MAX_TIME_RATIO * float_["ms_per_crop"]
    )
    assert serving["file"] == ("model_int8.tflite" if int8_ok else "model.tflite")
    assert serving["runtime"] == "tflite"
    assert f"{exports['tflite_int8']['agreement']:g}%" in serving["reason"]
    # The app's classifier serves that file, and the reported agreement is the real one.
    import keras

    classifier = MaskClassifier(model_dir)
    assert classifier.served_file == serving["file"]
    served = exports["tflite_int8" if int8_ok else "tflite"]
    probs = classifier.predict(crops)
    model = keras.saving.load_model(model_dir / "model.keras", compile=False, safe_mode=True)
    reference = keras_probabilities(model, crops)
    agreement = float(np.mean(probs.argmax(1) == reference.argmax(1))) * 100
    assert served["n"] == len(crops)
    assert round(agreement, 3) == served["agreement"]
    assert np.abs(probs - reference).max() == pytest.approx(served["max_abs_diff"], abs=1e-6)


@pytest.mark.parametrize(
    "agreement, int8_ms, served",
    [
        (99.0, 0.9, "model_int8.tflite"),  # accurate enough and faster
        (98.9, 0.5, "model.tflite"),  # faster, but changes too many labels
        (100.0, 0.95, "model.tflite"),  # exact, but not faster (no int8 dot products)
    ],
)
def test_serving_rule_threshold(agreement: float, int8_ms: float, served: str) -> None:
    measured = {"n": 1000, "max_abs_diff": 0.2, "near_ties": 0}
    exports = {
        "tflite": {**measured, "file": "model.tflite", "agreement": 100.0, "disagreements": 0,
                   "ms_per_crop": 1.0},
        "tflite_int8": {**measured, "file": "model_int8.tflite", "agreement": agreement,
                        "disagreements": round(10 * (100 - agreement)), "ms_per_crop": int8_ms},
    }  # fmt: skip
    serving = choose_serving(exports)
    assert serving["file"] == served and serving["runtime"] == "tflite"
    assert f"{agreement:g}% of 1000 face crops" in serving["reason"]


def test_export_without_tfjs_leaves_no_tfjs(tiny_model_dir: Path) -> None:
    """The fixture's run was exported with tfjs=False: TFLite only, nothing stale."""
    card = read_card(tiny_model_dir)
    assert set(card["exports"]) == {"tflite", "tflite_int8"}
    assert not (tiny_model_dir / "tfjs").exists()
    assert not (tiny_model_dir / "tfjs_float16").exists()
    assert card["serving"]["file"] in ("model.tflite", "model_int8.tflite")


# ------------------------------------------------------------------ the single-format functions


def test_int8_tflite_takes_raw_uint8_pixels(random_model, crops64, tmp_path: Path) -> None:
    from ai_edge_litert.interpreter import Interpreter

    path = export_tflite(random_model, tmp_path / "m.tflite", crops64, quantize=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.tflite"]
    detail = Interpreter(model_path=str(path)).get_input_details()[0]
    assert detail["dtype"] == np.uint8
    assert detail["quantization"] == (1.0, 0)  # calibrated on real photos spanning 0-255
    check = verify_tflite(random_model, path, crops64, LABELS)
    assert check["n"] == len(crops64)
    assert check["max_abs_diff"] < 0.5
    assert check["ms_per_crop"] > 0


def test_int8_needs_representative_crops(random_model, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="representative"):
        export_tflite(random_model, tmp_path / "m.tflite", None, quantize=True)
    assert list(tmp_path.iterdir()) == []


def test_verify_tflite_rejects_wrong_labels(random_model, crops64, tmp_path: Path) -> None:
    from facemask.errors import ModelError

    path = export_tflite(random_model, tmp_path / "m.tflite")
    with pytest.raises(ModelError, match="2 outputs but 3 labels"):
        verify_tflite(random_model, path, crops64[:2], [*LABELS, "mask_weared_incorrect"])


def test_verify_tfjs_skips_without_node(random_model, crops64, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no `node` on PATH
    result = verify_tfjs(random_model, tmp_path, crops64, LABELS)
    assert result == {"skipped": "node is not installed, so the TF.js export cannot be run."}


def test_verify_tfjs_runs_real_tfjs(random_model, random_tfjs, crops64) -> None:
    require_tfjs()
    check = verify_tfjs(random_model, random_tfjs, crops64, LABELS, max_crops=12)
    assert check["n"] == 12
    assert check["agreement"] == 100.0
    assert check["max_abs_diff"] < 1e-4


# ------------------------------------------------------------------ the node script itself


def run_script(args: dict) -> tuple[int, dict]:
    done = subprocess.run(
        ["node", str(RUN_TFJS_SCRIPT), json.dumps(args)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    return done.returncode, json.loads(done.stdout.strip().splitlines()[-1])


def test_node_script_runs_a_known_model(random_model, random_tfjs, crops64, tmp_path) -> None:
    require_tfjs()
    few = crops64[::8]
    raw = tmp_path / "crops.f32"
    raw.write_bytes(few.astype(np.float32).tobytes())
    code, out = run_script(
        {"model": str(random_tfjs), "input": str(raw), "dtype": "float32",
         "shape": list(few.shape), "batch": 4}
    )  # fmt: skip
    assert code == 0, out
    assert out["backend"] == "wasm" and out["tfjs_version"] == "4.22.0"  # what browsers run
    assert out["inputs"][0]["shape"] == [-1, TINY_SIZE, TINY_SIZE, 3]
    probs = np.asarray(out["probabilities"], dtype=np.float32)
    np.testing.assert_allclose(probs, keras_probabilities(random_model, few), atol=1e-4)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_node_script_refuses_shards_outside_the_model(random_tfjs, crops64, tmp_path) -> None:
    require_tfjs()
    model = Path(shutil.copytree(random_tfjs, tmp_path / "evil"))
    spec = json.loads((model / "model.json").read_text())
    spec["weightsManifest"][0]["paths"][0] = "../../secret.bin"
    (model / "model.json").write_text(json.dumps(spec))
    raw = tmp_path / "crops.u8"
    raw.write_bytes(crops64[:1].tobytes())
    code, out = run_script(
        {"model": str(model), "input": str(raw), "dtype": "uint8", "shape": [1, 64, 64, 3]}
    )
    assert code == 1
    assert "outside the model folder" in out["error"]


def test_node_script_checks_the_input_size(random_tfjs, crops64, tmp_path) -> None:
    require_tfjs()
    raw = tmp_path / "crops.u8"
    raw.write_bytes(crops64[:1].tobytes())
    code, out = run_script(
        {"model": str(random_tfjs), "input": str(raw), "dtype": "uint8", "shape": [2, 64, 64, 3]}
    )
    assert code == 1
    assert "shape 2,64,64,3 needs 24576" in out["error"]


def test_float_and_int8_are_timed_interleaved(exported) -> None:
    model_dir, crops, exports, *_ = exported
    for key in ("tflite", "tflite_int8"):
        assert exports[key]["ms_per_crop"] > 0
        assert "interleaved" in exports[key]["timing"]
    files = [model_dir / "model.tflite", model_dir / "model_int8.tflite"]
    timed = interleaved_ms_per_crop(files, crops[:4], rounds=2)
    assert len(timed) == 2 and all(0 < ms < 1000 for ms in timed)
