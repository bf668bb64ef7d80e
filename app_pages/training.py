"""Training page: launch, watch, cancel or resume a training; curves; compare models; export.

Everything about a run lives in the run store (runs/), not in the browser session, so a page
refresh finds the training where it is. One training runs at a time, in its own process.
"""

from __future__ import annotations

import io
import os
import time
import zipfile
from pathlib import Path
from typing import Any

import streamlit as st

import ui
from facemask.classify import TFLITE_FILE, TFLITE_INT8_FILE, MaskClassifier
from facemask.compare import (
    COLUMNS,
    comparison_figure,
    comparison_rows,
    confusion,
    confusion_figure,
    curves,
    curves_figure,
    measure_latency_ms,
)
from facemask.data import class_counts
from facemask.errors import DatasetError, FacemaskError
from facemask.runs import CONFIG_FILE, RunStore, read_json

BACKBONES = {"mobilenetv2": "MobileNetV2", "vgg16": "VGG-16"}
INPUT_SIZES = [96, 128, 160, 192, 224]
PHASES = {"head": "Training the new head (base frozen)", "fine": "Fine-tuning the top of the base"}
REFRESH_S = 2.0
TFJS_FOLDERS = [("tfjs", "TF.js (zip)"), ("tfjs_float16", "TF.js, float16 weights (zip)")]
"""TF.js graph models in a model folder (facemask.export writes them)."""
_WATCH_KEY = "training_watch"
_LATENCY_KEY = "measured_latency"


# -- the dataset folder: chosen among folders meant for it, never typed -----------------------
def dataset_roots() -> list[Path]:
    """Folders whose sub-folders may be trained on: FACEMASK_DATA_DIR (default <repo>/data)
    and ../shared/datasets next to the repository when it exists."""
    roots = [Path(os.environ.get("FACEMASK_DATA_DIR", ui.repo_root() / "data"))]
    shared = ui.repo_root().parent / "shared" / "datasets"
    if shared.is_dir():
        roots.append(shared)
    return [r.resolve() for r in roots if r.is_dir()]


def dataset_choices(roots: list[Path]) -> dict[str, Path]:
    """{display name: folder} for every visible sub-folder of the roots."""
    choices: dict[str, Path] = {}
    for root in roots:
        for path in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            choices[f"{root.name}/{path.name}"] = root / path.name
    return choices


def check_dataset(folder: Path, roots: list[Path]) -> dict[str, int]:
    """Images per class folder; DatasetError with one sentence when it cannot be trained on."""
    if not any(folder.parent == root for root in roots) or folder.name.startswith("."):
        raise DatasetError(f"{folder} is not inside a dataset folder this app may read.")
    return class_counts(folder)


def train_args(
    backbone: str,
    data: Path,
    epochs_head: int,
    epochs_fine: int,
    fine_tune: bool,
    fine_tune_layers: int | None,
    input_size: int,
    augment: bool,
    weights: str,
) -> list[str]:
    """`facemask train` flags for the form's choices (the run id is added by launch)."""
    args = ["--backbone", backbone, "--data", str(data), "--input-size", str(input_size)]
    args += ["--epochs-head", str(epochs_head), "--weights", weights]
    if fine_tune:
        args += ["--epochs-fine", str(epochs_fine)]
        if fine_tune_layers is not None:
            args += ["--fine-tune-layers", str(fine_tune_layers)]
    else:
        args += ["--epochs-fine", "0", "--fine-tune-layers", "0"]
    if not augment:
        args.append("--no-augment")
    return args


# -- launching ---------------------------------------------------------------------------------
def training_form(store: RunStore) -> None:
    roots = dataset_roots()
    choices = dataset_choices(roots)
    with st.form("train_form"):
        st.markdown("**Train a new model**")
        left, right = st.columns(2)
        backbone = left.selectbox(
            "Backbone", list(BACKBONES), format_func=BACKBONES.get, key="form_backbone"
        )
        dataset = right.selectbox(
            "Dataset folder",
            list(choices),
            index=None,
            placeholder="Choose a folder of class folders",
            key="form_dataset",
            help="Folders in " + ", ".join(str(r) for r in roots) + " (FACEMASK_DATA_DIR)."
            if roots
            else "No dataset folder: put one under data/ or set FACEMASK_DATA_DIR.",
        )
        weights = left.selectbox(
            "Start from",
            ["imagenet", "none"],
            format_func={"imagenet": "ImageNet weights", "none": "Scratch (random)"}.get,
            key="form_weights",
        )
        input_size = right.selectbox(
            "Image size (px)", INPUT_SIZES, index=INPUT_SIZES.index(128), key="form_size"
        )
        epochs_head = left.number_input(
            "Epochs, head (base frozen)", 1, 100, 6, key="form_epochs_head"
        )
        epochs_fine = right.number_input("Epochs, fine-tuning", 0, 100, 6, key="form_epochs_fine")
        fine_tune = left.toggle("Fine-tune the top of the base", True, key="form_fine_tune")
        layers = right.number_input(
            "Layers to unfreeze",
            1,
            200,
            value=None,
            placeholder="backbone default",
            key="form_layers",
            help="Empty: 54 for MobileNetV2, 4 (block 5) for VGG-16.",
        )
        augment = left.toggle("Augmentation (flips, crops, colour)", True, key="form_augment")
        submitted = st.form_submit_button("Start training", type="primary")
    if not submitted:
        return
    if dataset is None:
        st.error("Choose a dataset folder first.")
        return
    try:
        counts = check_dataset(choices[dataset], roots)
        from facemask.models import resolve_weights

        resolve_weights(backbone, weights)
    except FacemaskError as exc:
        ui.show_error(exc)
        return
    args = train_args(
        backbone,
        choices[dataset],
        int(epochs_head),
        int(epochs_fine),
        fine_tune,
        None if layers is None else int(layers),
        int(input_size),
        augment,
        weights,
    )
    launch(store, args, store.new_id(backbone))
    st.session_state["training_launched"] = (
        f"Training started on {dataset} ({', '.join(f'{n} {c}' for c, n in counts.items())})."
    )
    st.rerun()


def launch(store: RunStore, args: list[str], run_id: str) -> None:
    try:
        store.launch(args, run_id)
    except FacemaskError as exc:
        ui.show_error(exc)
        return
    st.session_state[_WATCH_KEY] = run_id


# -- watching ----------------------------------------------------------------------------------
def _eta(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def _metrics_text(logs: dict[str, Any]) -> str:
    return " · ".join(f"{k.replace('_', ' ')} {v:.4f}" for k, v in logs.items() if k != "lr")


def show_status(status: dict[str, Any]) -> None:
    """Stage, phase, epoch x/y, batch x/y, ETA and the latest metrics of one run.

    A run that is not running shows where it stopped and why, without progress bars.
    """
    last = status.get("last", {})
    stage = status.get("stage", {})
    batch, epoch = status.get("batch"), status.get("epoch")
    fitting = last.get("type") in ("batch", "epoch", "epoch_begin")
    running = bool(status.get("running"))
    if fitting:
        st.markdown(f"**Stage:** {PHASES.get(last.get('phase'), 'Training')}")
    elif stage:
        st.markdown(f"**Stage:** {stage.get('message', stage.get('stage', ''))}")
    elif not running:
        st.markdown("**Stage:** stopped before its first step")
    if running and last.get("type") == "progress" and last.get("total"):
        done, total = int(last["done"]), int(last["total"])
        st.progress(min(done / total, 1.0), text=f"{last.get('stage', '')}: {done} of {total}")
    if batch and fitting and running:
        st.progress(
            min(batch["batch"] / max(batch["batches"], 1), 1.0),
            text=f"Phase {batch['phase']} · epoch {batch['epoch']}/{batch['epochs']} · "
            f"batch {batch['batch']}/{batch['batches']} · ETA of the epoch {_eta(batch['eta_s'])}",
        )
        st.caption("Now: " + _metrics_text(batch.get("logs", {})))
    if epoch:
        st.caption(
            f"Last finished epoch: {epoch['phase']} {epoch['epoch']}/{epoch['epochs']} in "
            f"{epoch.get('seconds', 0):.0f} s ({epoch.get('images_per_s', 0):.0f} images/s) · "
            + _metrics_text(epoch.get("logs", {}))
        )
    if last.get("type") in ("error", "cancelled"):
        st.warning(last.get("message", last["type"]))
    elif not running:
        st.warning("The training process ended without finishing (killed or crashed).")


@st.fragment(run_every=REFRESH_S)
def watch_active() -> None:
    """Live progress of the training running now (re-drawn every REFRESH_S seconds)."""
    store = ui.get_store()
    running = store.active()
    watched = st.session_state.get(_WATCH_KEY)
    if running is None:
        if watched:  # it just ended: redraw the whole page (listings, curves, comparison)
            st.session_state[_WATCH_KEY] = None
            st.rerun(scope="app")
        return
    run_id = running[0]
    st.session_state[_WATCH_KEY] = run_id
    with st.container(border=True):
        st.subheader(f"Training {run_id}")
        st.info("One training at a time: a new one can start when this one ends or is cancelled.")
        status = store.status(run_id)
        show_status(status)
        series = curves(status["dir"])
        if series:
            left, right = st.columns(2)
            left.plotly_chart(curves_figure({run_id: series}, "loss"), key="live_loss")
            right.plotly_chart(curves_figure({run_id: series}, "accuracy"), key="live_accuracy")
        if st.button("Cancel the training", key=f"cancel_{run_id}"):
            if store.cancel(run_id):
                st.toast("Cancelling: the run saves a checkpoint and stays resumable.")
            time.sleep(0.5)


def unfinished_runs(store: RunStore) -> None:
    """Runs that stopped before the end (cancelled, failed, killed): resume or discard."""
    running = store.active()
    stopped = [p for p in store.in_progress() if not running or p.name != running[0]]
    if not stopped:
        return
    st.markdown("**Unfinished runs**")
    for path in stopped:
        run_id = path.name
        with st.container(border=True):
            config = read_json(path / CONFIG_FILE, {}) or {}
            st.markdown(
                f"`{run_id}` · {BACKBONES.get(config.get('backbone'), '?')} on "
                f"`{Path(str(config.get('data', '?'))).name}`"
            )
            show_status(store.status(run_id))
            resume, discard = st.columns(2)
            if resume.button(
                "Resume", key=f"resume_{run_id}", disabled=running is not None or not config
            ):
                launch(store, ["--resume"], run_id)
                st.rerun()
            if discard.button("Discard", key=f"discard_{run_id}", disabled=running is not None):
                try:
                    store.discard(run_id)
                except FacemaskError as exc:
                    ui.show_error(exc)
                else:
                    st.rerun()


# -- curves, comparison, export ----------------------------------------------------------------
def curves_section(store: RunStore) -> None:
    dirs = {p.name: p for p in [*store.in_progress(), *store.compared_runs()]}
    with_history = {name: curves(path) for name, path in dirs.items()}
    with_history = {name: c for name, c in with_history.items() if c}
    if not with_history:
        st.info("No training history yet: curves appear here once a run finishes its first epoch.")
        return
    chosen = st.multiselect(
        "Runs", list(with_history), default=list(with_history)[:3], key="curves_runs"
    )
    shown = {name: with_history[name] for name in chosen}
    if not shown:
        return
    left, right = st.columns(2)
    left.plotly_chart(curves_figure(shown, "loss"), key="curve_loss")
    right.plotly_chart(curves_figure(shown, "accuracy"), key="curve_accuracy")


def _format_row(row: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, title in COLUMNS.items():
        value = row.get(key)
        if key in ("accuracy", "macro_f1", "small_face_accuracy") and value is not None:
            value = f"{value:.1%}"
        elif key == "parameters" and value is not None:
            value = f"{value / 1e6:.2f} M"
        elif key == "training_s" and value is not None:
            value = f"{value / 60:.1f} min"
        elif key == "latency_ms" and value is not None:
            value = f"{value:.1f}" + (" *" if row.get("latency_measured_here") else "")
        elif isinstance(value, float):
            value = f"{value:.2f}"
        out[title] = "—" if value is None else value
    return out


def _servable(model_dir: Path) -> bool:
    return any(model_dir.glob("model*.tflite")) or (model_dir / "model.keras").is_file()


def _with_measured_latency(row: dict[str, Any]) -> dict[str, Any]:
    """The row, with this session's measured latency where its card has none."""
    measured = st.session_state.get(_LATENCY_KEY, {}).get(row["dir"])
    if row["latency_ms"] is not None or measured is None:
        return row
    return {**row, "latency_ms": measured, "latency_measured_here": True}


def compare_section(store: RunStore) -> None:
    rows = comparison_rows(store.compared_runs())
    if not rows:
        st.info("Nothing to compare yet: ship a model in models/ or finish a training run.")
        return
    names = [r["name"] for r in rows]
    chosen = st.multiselect("Models", names, default=names[:4], key="compare_models")
    rows = [r for r in rows if r["name"] in chosen]
    if not rows:
        return
    rows = [_with_measured_latency(r) for r in rows]
    missing = [r for r in rows if r["latency_ms"] is None and _servable(Path(r["dir"]))]
    if missing and st.button(
        f"Measure CPU latency on this machine ({len(missing)} model(s) without it)",
        key="measure_latency",
        help="Classifies one face crop 20 times with each model's served file; median ms.",
    ):
        measured = st.session_state.setdefault(_LATENCY_KEY, {})
        failed = False
        with st.spinner("Measuring..."):
            for row in missing:
                try:
                    measured[row["dir"]] = measure_latency_ms(MaskClassifier(row["dir"]))
                except FacemaskError as exc:
                    ui.show_error(exc)
                    failed = True
        if not failed:
            st.rerun()  # redraw the table and charts with the numbers, without the button
        rows = [_with_measured_latency(r) for r in rows]
    if any(r.get("latency_measured_here") for r in rows):
        st.caption("Latency marked * was measured here, now, under this machine's current load.")
    architectures = {r["architecture"] for r in rows}
    if not {"VGG-16", "MobileNetV2"} <= architectures:
        st.caption(
            "VGG-16 vs MobileNetV2: train the missing backbone above to see both side by side."
        )
    st.dataframe([_format_row(r) for r in rows], hide_index=True)
    charts = st.columns(4)
    for column, key in zip(
        charts, ("accuracy", "latency_ms", "size_mb", "parameters"), strict=True
    ):
        column.plotly_chart(comparison_figure(rows, key), key=f"bar_{key}")
    st.markdown("**Confusion matrices** (test split; rows: true label, columns: predicted)")
    for start in range(0, len(rows), 3):
        columns = st.columns(3)
        for column, row in zip(columns, rows[start : start + 3], strict=False):
            card = read_json(Path(row["dir"]) / "card.json", {})
            labels, matrix = confusion(card)
            if matrix:
                column.plotly_chart(
                    confusion_figure(labels, matrix, row["name"]), key=f"cm_{row['dir']}"
                )
            else:
                column.caption(f"{row['name']}: no confusion matrix in its card.")


@st.cache_data(max_entries=4, show_spinner="Zipping the TF.js model...")
def _zip_folder(folder: str, mtime: float) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(Path(folder).rglob("*")):
            if path.is_file():
                archive.write(path, Path(Path(folder).name) / path.relative_to(folder))
    return buffer.getvalue()


def _size(n_bytes: float) -> str:
    return f"{n_bytes / 1e6:.1f} MB" if n_bytes >= 1e5 else f"{n_bytes / 1e3:.0f} KB"


def export_section(store: RunStore) -> None:
    entries = {e.name: e for e in store.models()}
    if not entries:
        st.info("No model to export yet.")
        return
    name = st.selectbox("Model", list(entries), key="export_model")
    path = entries[name].path
    files = [
        (TFLITE_FILE, "TFLite (float)", "application/octet-stream"),
        (TFLITE_INT8_FILE, "TFLite (int8, smaller and faster)", "application/octet-stream"),
        ("card.json", "Model card (JSON)", "application/json"),
    ]
    for column, (filename, title, mime) in zip(st.columns(3), files, strict=True):
        file = path / filename
        if file.is_file():
            column.download_button(
                f"{title} · {_size(file.stat().st_size)}",
                file.read_bytes,
                file_name=f"{name}_{filename}",
                mime=mime,
                key=f"export_{name}_{filename}",
                on_click="ignore",
            )
        else:
            column.caption(f"{title}: not exported for this model.")
    for column, (folder, title) in zip(st.columns(2), TFJS_FOLDERS, strict=True):
        tfjs = path / folder
        if (tfjs / "model.json").is_file():
            mtime = max(p.stat().st_mtime for p in tfjs.rglob("*"))
            archive = _zip_folder(str(tfjs), mtime)
            column.download_button(
                f"{title} · {_size(len(archive))}",
                archive,
                file_name=f"{name}_{folder}.zip",
                mime="application/zip",
                key=f"export_{name}_{folder}",
                on_click="ignore",
            )
        else:
            column.caption(f"{title}: not exported for this model.")


def main() -> None:
    st.title("Training and comparison")
    store = ui.get_store()
    notice = st.session_state.pop("training_launched", None)
    if notice:
        st.success(notice)
    train_tab, curves_tab, compare_tab, export_tab = st.tabs(
        ["Train", "Curves", "Compare models", "Export"]
    )
    with train_tab:
        watch_active()
        if store.active() is None:
            training_form(store)
        unfinished_runs(store)
    with curves_tab:
        curves_section(store)
    with compare_tab:
        compare_section(store)
    with export_tab:
        export_section(store)


try:
    main()
except Exception as exc:  # the page boundary: one sentence, the traceback goes to the log
    ui.show_error(exc)
