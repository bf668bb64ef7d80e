"""The Training page through the real app, driven by AppTest: the launch form's checks, a
training in progress (watched, cancelled, discarded), and the comparison of model folders."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from facemask import events
from facemask.cli import build_parser
from facemask.runs import RunStore

APP = Path(__file__).resolve().parent.parent / "app.py"
PAGE = "app_pages/training.py"
TIMEOUT = 60


@pytest.fixture
def folders(tmp_path: Path, monkeypatch, mini_dataset: Path) -> dict[str, Path]:
    """Empty run store and models folder; a data folder with one good and three bad datasets."""
    data = tmp_path / "data"
    sample = next((mini_dataset / "with_mask").iterdir())
    for folder in ("only_masks/with_mask", "empty_class/with_mask", "empty_class/without_mask"):
        (data / folder).mkdir(parents=True)
    shutil.copy(sample, data / "only_masks/with_mask")
    shutil.copy(sample, data / "empty_class/with_mask")
    (data / "notes").mkdir()
    (data / "notes" / "README.txt").write_text("no class folders here\n")
    (data / "mini").symlink_to(mini_dataset)
    paths = {"data": data, "runs": tmp_path / "runs", "models": tmp_path / "models"}
    paths["models"].mkdir()
    monkeypatch.setenv("FACEMASK_DATA_DIR", str(data))
    monkeypatch.setenv("FACEMASK_RUNS_DIR", str(paths["runs"]))
    monkeypatch.setenv("FACEMASK_MODELS_DIR", str(paths["models"]))
    return paths


def open_page() -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.switch_page(PAGE).run()
    no_exception(at)
    return at


def no_exception(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def errors(at: AppTest) -> list[str]:
    """Error messages on the page itself (the sidebar says no model is served: none here)."""
    return [e.value for e in at.main.get("error")]


def submit(at: AppTest, dataset: str | None, **choices) -> AppTest:
    at.selectbox(key="form_dataset").set_value(dataset)
    for key, value in choices.items():
        widget = next(w for w in at.main.get(choices_kind(key)) if w.key == key)
        widget.set_value(value)
    at.button[0].click().run()  # the form's submit button
    no_exception(at)
    return at


def choices_kind(key: str) -> str:
    return {"form_epochs_head": "number_input", "form_epochs_fine": "number_input"}.get(
        key, "toggle" if key in ("form_fine_tune", "form_augment") else "selectbox"
    )


def test_dataset_choices_stay_inside_the_data_folders(folders) -> None:
    at = open_page()
    options = at.selectbox(key="form_dataset").options
    ours = sorted(o for o in options if o.startswith("data/"))
    assert ours == ["data/empty_class", "data/mini", "data/notes", "data/only_masks"]
    assert all(o.startswith(("data/", "datasets/")) for o in options)  # + ../shared/datasets


def test_form_refuses_bad_datasets_and_launches_nothing(folders) -> None:
    at = open_page()
    assert errors(submit(at, None)) == ["Choose a dataset folder first."]
    (message,) = errors(submit(at, "data/only_masks"))
    assert message.endswith(
        "only_masks must hold one folder per class (e.g. with_mask/ and without_mask/); "
        "found 1: with_mask."
    )
    assert "notes must hold one folder per class" in errors(submit(at, "data/notes"))[0]
    (message,) = errors(submit(at, "data/empty_class"))
    assert message.startswith("Class without_mask in ") and message.endswith("has no image files.")
    vgg = submit(at, "data/mini", form_backbone="vgg16", form_weights="imagenet")
    assert errors(vgg)[0].startswith("ImageNet weights for VGG-16 are missing: put ")

    store = RunStore(folders["runs"], folders["models"])
    assert store.in_progress() == [] and store.finished() == [] and store.active() is None
    assert not at.success


def test_a_valid_form_launches_the_cli_with_its_flags(folders, monkeypatch) -> None:
    launched: list[tuple[list[str], str]] = []
    sleeper: list[subprocess.Popen] = []

    def launch(self: RunStore, args: list[str], run_id=None, backbone: str = "run") -> int:
        """Record the command; a sleeping process stands in for the trainer (like launch: its
        command line names `facemask train` and the run, so the store trusts its pid)."""
        run_id = run_id or self.new_id(backbone)
        launched.append((args, run_id))
        sleeper.append(stand_in_trainer(run_id))
        self.partial_dir(run_id).mkdir(parents=True)
        (self.partial_dir(run_id) / "train.pid").write_text(str(sleeper[0].pid))
        return sleeper[0].pid

    monkeypatch.setattr(RunStore, "launch", launch)
    try:
        at = open_page()
        submit(
            at,
            "data/mini",
            form_weights="none",
            form_size=128,
            form_epochs_head=2,
            form_fine_tune=False,
            form_augment=False,
        )
        assert not errors(at)
        assert at.success.values == [
            "Training started on data/mini (24 with_mask, 24 without_mask)."
        ]
        ((args, run_id),) = launched
        assert at.subheader.values == [f"Training {run_id}"]
        assert not [s for s in at.selectbox if s.key == "form_dataset"]
    finally:
        for process in sleeper:
            process.kill()
            process.wait()
    assert run_id.endswith("-mobilenetv2")
    parsed = build_parser().parse_args(["train", *args, "--run-id", run_id])
    assert Path(parsed.data) == folders["data"] / "mini"
    assert (parsed.backbone, parsed.weights, parsed.input_size) == ("mobilenetv2", "none", 128)
    assert (parsed.epochs_head, parsed.epochs_fine, parsed.fine_tune_layers) == (2, 0, 0)
    assert parsed.no_augment is True and parsed.resume is False


def write_partial_run(runs: Path, run_id: str, pid: int | None) -> Path:
    """A run in progress as the trainer leaves it: config, progress events, pid file."""
    run_dir = runs / ".partial" / run_id
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text(json.dumps({"backbone": "mobilenetv2", "data": "/d/mini"}))
    log = events.EventLog(run_dir)  # written as the trainer writes them (facemask.events)
    log.emit(events.Stage("crops", "Finding and cropping faces (cached)"))
    log.emit(events.EpochBegin("head", 1, 6))
    epoch_logs = {"loss": 0.5, "accuracy": 0.8, "val_loss": 0.4, "val_accuracy": 0.85}
    log.emit(events.Epoch("head", 1, 6, epoch_logs, seconds=40.0, images_per_s=60.0))
    log.emit(events.EpochBegin("head", 2, 6))
    log.emit(events.Batch("head", 2, 6, 10, 40, eta_s=65.0, logs={"loss": 0.3, "accuracy": 0.9}))
    (run_dir / "history.csv").write_text(
        "epoch,phase,phase_epoch,loss,accuracy,val_loss,val_accuracy,learning_rate,seconds\n"
        "1,head,1,0.5,0.8,0.4,0.85,0.001,40.0\n"
    )
    if pid is not None:
        (run_dir / "train.pid").write_text(str(pid))
    return run_dir


def stand_in_trainer(run_id: str) -> subprocess.Popen:
    """A real process standing in for the trainer (the page only signals it): its command line
    names `facemask train` and the run, as the run store requires of a pid it trusts."""
    sleep = [sys.executable, "-c", "import time; time.sleep(60)"]
    return subprocess.Popen([*sleep, "facemask", "train", "--run-id", run_id])


def test_a_training_in_progress_is_watched_cancelled_and_discarded(folders) -> None:
    trainer = stand_in_trainer("20260101-000000-mobilenetv2")
    try:
        run_dir = write_partial_run(folders["runs"], "20260101-000000-mobilenetv2", trainer.pid)
        at = open_page()
        assert at.subheader.values == ["Training 20260101-000000-mobilenetv2"]
        assert at.info.values[0].startswith("One training at a time")
        assert "**Stage:** Training the new head (base frozen)" in at.markdown.values
        progress = [p.proto.text for p in at.get("progress")]
        assert progress == ["Phase head · epoch 2/6 · batch 10/40 · ETA of the epoch 1 min 05 s"]
        assert "Now: loss 0.3000 · accuracy 0.9000" in at.caption.values
        assert not [s for s in at.selectbox if s.key == "form_dataset"]  # no second training
        assert len(at.get("plotly_chart")) == 2 + 2  # live curves + the Curves tab

        at.button(key="cancel_20260101-000000-mobilenetv2").click().run()
        no_exception(at)
        assert trainer.wait(timeout=10) == -15  # SIGTERM: the trainer checkpoints and stops

        at.run()
        no_exception(at)
        assert "**Unfinished runs**" in at.markdown.values
        assert at.warning.values == [
            "The training process ended without finishing (killed or crashed)."
        ]
        assert not at.get("progress")
        assert at.button(key="resume_20260101-000000-mobilenetv2").disabled is False
        assert [s for s in at.selectbox if s.key == "form_dataset"]  # the form is back
        at.button(key="discard_20260101-000000-mobilenetv2").click().run()
        no_exception(at)
        assert not run_dir.exists()
        assert "**Unfinished runs**" not in at.markdown.values
    finally:
        trainer.kill()
        trainer.wait()


VGG_CARD = {
    "name": "vgg16-demo",
    "architecture": "VGG-16",
    "backbone": "vgg16",
    "labels": ["with_mask", "without_mask"],
    "input_size": 128,
    "weights": "none",
    "parameters": {"total": 14_780_610},
    "files": {"model.tflite": 59_000_000},
    "serving": {"file": "model.tflite", "runtime": "tflite"},
    "metrics": {"test": {"accuracy": 0.9, "confusion": [[17, 3], [1, 19]]}},
    "training": {"wall_time_s": 5400.0},
}


def test_comparison_curves_and_exports(folders, tiny_model_dir: Path) -> None:
    shutil.copytree(tiny_model_dir, folders["runs"] / "tiny")
    card_path = folders["runs"] / "tiny" / "card.json"
    card = json.loads(card_path.read_text())
    del card["latency_ms"]  # a card without latency: the page offers to measure it here
    card_path.write_text(json.dumps(card))
    (folders["models"] / "vgg16-demo").mkdir()
    (folders["models"] / "vgg16-demo" / "card.json").write_text(json.dumps(VGG_CARD))
    at = open_page()

    table = at.dataframe[0].value
    assert list(table["Model"]) == ["vgg16-demo", "tiny"]
    assert list(table["Architecture"]) == ["VGG-16", "MobileNetV2"]
    assert table["Test accuracy"][0] == "90.0%" and table["Served file (MB)"][0] == "59.00"
    assert not [c for c in at.caption.values if c.startswith("VGG-16 vs MobileNetV2")]
    charts = at.get("plotly_chart")
    assert len(charts) == 2 + 4 + 2  # curves (tiny's history), bars, two confusion matrices

    latency = list(table["CPU latency / face (ms)"])
    assert latency == ["—", "—"]  # neither card carries it
    at.button(key="measure_latency").click().run()  # vgg16-demo has no model file to time
    no_exception(at)
    latency = list(at.dataframe[0].value["CPU latency / face (ms)"])
    assert latency[0] == "—" and latency[1].endswith(" *") and float(latency[1][:-2]) > 0
    assert "Latency marked * was measured here" in at.caption.values[0]
    assert not [b for b in at.button if b.key == "measure_latency"]  # nothing left to measure

    assert at.selectbox(key="export_model").options == ["tiny"]  # vgg16-demo has no model file
    downloads = [b.label for b in at.get("download_button")]
    assert any(label.startswith("TFLite (float) · ") for label in downloads)
    assert any(label.startswith("TFLite (int8, smaller and faster) · ") for label in downloads)
    assert "TF.js (zip): not exported for this model." in at.caption.values


def test_a_cancelled_run_is_resumed_with_resume(folders, monkeypatch) -> None:
    run_dir = write_partial_run(folders["runs"], "20260101-000000-mobilenetv2", pid=None)
    message = "Stopped; resume it to continue from the last epoch."
    events.EventLog(run_dir).emit(events.Cancelled(message))
    launched: list[tuple[list[str], str]] = []
    monkeypatch.setattr(
        RunStore,
        "launch",
        lambda self, args, run_id=None, backbone="": launched.append((args, run_id)) or 0,
    )
    at = open_page()
    assert at.warning.values == ["Stopped; resume it to continue from the last epoch."]
    assert "`20260101-000000-mobilenetv2` · MobileNetV2 on `mini`" in at.markdown.values
    at.button(key="resume_20260101-000000-mobilenetv2").click().run()
    no_exception(at)
    assert launched == [(["--resume"], "20260101-000000-mobilenetv2")]
    assert build_parser().parse_args(["train", "--resume", "--run-id", launched[0][1]]).resume
