"""Training page: launch, watch, cancel or resume a training; curves; compare models; export.

Everything about a run lives in the run store (runs/), not in the browser session, so a page
refresh finds the training where it is. One training runs at a time, in its own process.
Widgets and calls only: the logic is in facemask (config, datasets, events, compare, files).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path

import streamlit as st

import ui
from app_pages import training_models
from facemask import access, compare, events, files
from facemask.config import DEFAULTS, INPUT_SIZES, WEIGHTS_CHOICES, form_config, train_args
from facemask.datasets import check_dataset, dataset_choices, dataset_roots
from facemask.errors import FacemaskError
from facemask.models import BACKBONES, resolve_weights
from facemask.runs import RunStore

REFRESH_S = 2.0
WEIGHTS_TEXT = {"imagenet": "ImageNet weights", "none": "Scratch (random)"}
LAYERS_HELP = ", ".join(f"{b.fine_tune_layers} for {b.title}" for b in BACKBONES.values())
_WATCH_KEY = "training_watch"


def _default(choices: Iterable, field: str) -> int:
    """Where TrainConfig's default for `field` is among a widget's choices."""
    return list(choices).index(DEFAULTS[field])


def _title(backbone: str | None) -> str:
    return BACKBONES[backbone].title if backbone in BACKBONES else "?"


def training_form(store: RunStore) -> None:
    """The launch form; its initial values are TrainConfig's defaults (facemask.config)."""
    roots = dataset_roots()
    choices = dataset_choices(roots)
    where = ", ".join(str(r) for r in roots)
    with st.form("train_form"):
        st.markdown("**Train a new model**")
        left, right = st.columns(2)
        first = _default(BACKBONES, "backbone")
        backbone = left.selectbox("Backbone", list(BACKBONES), first, _title, key="form_backbone")
        dataset = right.selectbox(
            "Dataset folder",
            list(choices),
            index=None,
            key="form_dataset",
            placeholder="Choose a folder of class folders",
            help=f"Folders in {where} (FACEMASK_DATA_DIR)."
            if roots
            else "No dataset folder: put one under data/ or set FACEMASK_DATA_DIR.",
        )
        start = _default(WEIGHTS_CHOICES, "weights")
        weights = left.selectbox(
            "Start from", WEIGHTS_CHOICES, start, WEIGHTS_TEXT.get, key="form_weights"
        )
        size_index = _default(INPUT_SIZES, "input_size")
        size = right.selectbox("Image size (px)", INPUT_SIZES, index=size_index, key="form_size")
        head = left.number_input(
            "Epochs, head (base frozen)", 1, 100, DEFAULTS["epochs_head"], key="form_epochs_head"
        )
        fine = right.number_input(
            "Epochs, fine-tuning", 0, 100, DEFAULTS["epochs_fine"], key="form_epochs_fine"
        )
        fine_tune = left.toggle("Fine-tune the top of the base", True, key="form_fine_tune")
        layers = right.number_input(
            "Layers to unfreeze",
            1,
            200,
            value=None,
            placeholder="backbone default",
            key="form_layers",
            help=f"Empty: {LAYERS_HELP}.",
        )
        augment = left.toggle(
            "Augmentation (flips, crops, colour)", DEFAULTS["augment"], key="form_augment"
        )
        submitted = st.form_submit_button("Start training", type="primary")
    if not submitted:
        return
    if dataset is None:
        st.error("Choose a dataset folder first.")
        return
    try:
        counts = check_dataset(choices[dataset], roots)
        resolve_weights(backbone, weights)
    except FacemaskError as exc:
        ui.show_error(exc)
        return
    config = form_config(
        str(choices[dataset]), backbone, size, head, fine, fine_tune, layers, augment, weights
    )
    launch(store, train_args(config), None, backbone)
    if st.session_state.get(_WATCH_KEY) is None:
        return
    found = ", ".join(f"{n} {c}" for c, n in counts.items())
    st.session_state["training_launched"] = f"Training started on {dataset} ({found})."
    st.rerun()


def launch(store: RunStore, args: list[str], run_id: str | None, backbone: str = "") -> None:
    """Start a training (a new run when run_id is None, else resume run_id): the operator's."""
    if not ui.is_operator():
        ui.require_operator_text()
        return
    try:
        store.launch(args, run_id, backbone)
    except FacemaskError as exc:
        ui.show_error(exc)
        return
    st.session_state[_WATCH_KEY] = run_id or "new"


def show_status(status: events.RunStatus) -> None:
    """Stage, progress bar, latest metrics and why it stopped (facemask.events.status_view)."""
    view = events.status_view(status)
    if view.stage:
        st.markdown(f"**Stage:** {view.stage}")
    if view.bar:
        st.progress(view.bar[0], text=view.bar[1])
    for caption in (view.now, view.last_epoch):
        if caption:
            st.caption(caption)
    if view.warning:
        st.warning(view.warning)
    if view.note:
        st.caption(view.note)


@st.fragment(run_every=REFRESH_S)
def watch_active() -> None:
    """Live progress of the training running now (re-drawn every REFRESH_S seconds)."""
    store = ui.get_store()
    running = store.active()
    if running is None:
        if st.session_state.get(_WATCH_KEY):  # it just ended: redraw listings, curves, comparison
            st.session_state[_WATCH_KEY] = None
            st.rerun(scope="app")
        return
    run_id = st.session_state[_WATCH_KEY] = running[0]
    with st.container(border=True):
        st.subheader(f"Training {run_id}")
        st.info("One training at a time: a new one can start when this one ends or is cancelled.")
        status = store.status(run_id)
        show_status(status)
        if series := compare.curves(status.dir):
            training_models.curves_charts({run_id: series}, "live")
        if not ui.is_operator():
            st.caption(access.READ_ONLY_TEXT)
        elif st.button("Cancel the training", key=f"cancel_{run_id}"):
            if ui.is_operator() and store.cancel(run_id):
                st.toast("Cancelling: the last finished epoch is kept; resume continues from it.")
            time.sleep(0.5)


def unfinished_runs(store: RunStore) -> None:
    """Runs that stopped before the end (cancelled, failed, killed): resume or discard."""
    running = store.active()
    operator = ui.is_operator()
    stopped = [p for p in store.in_progress() if not running or p.name != running[0]]
    if stopped:
        st.markdown("**Unfinished runs**")
    for path in stopped:
        run_id, busy = path.name, running is not None
        with st.container(border=True):
            config = files.read_json(path / files.CONFIG_FILE, {})
            config = config if isinstance(config, dict) else {}
            data = Path(str(config.get("data", "?"))).name
            st.markdown(f"`{run_id}` · {_title(config.get('backbone'))} on `{data}`")
            show_status(store.status(run_id))
            if not operator:
                continue
            resume, discard = st.columns(2)
            if resume.button("Resume", key=f"resume_{run_id}", disabled=busy or not config):
                launch(store, ["--resume"], run_id)
                st.rerun()
            if discard.button("Discard", key=f"discard_{run_id}", disabled=busy):
                try:
                    store.discard(run_id)
                except FacemaskError as exc:
                    ui.show_error(exc)
                else:
                    st.rerun()


def main() -> None:
    st.title("Training and comparison")
    store = ui.get_store()
    if notice := st.session_state.pop("training_launched", None):
        st.success(notice)
    train_tab, curves_tab, compare_tab, export_tab = st.tabs(
        ["Train", "Curves", "Compare models", "Export"]
    )
    with train_tab:
        watch_active()
        if store.active() is None:
            if ui.is_operator():
                training_form(store)
            else:
                ui.require_operator_text()
        unfinished_runs(store)
    with curves_tab:
        training_models.curves_section(store)
    with compare_tab:
        training_models.compare_section(store)
    with export_tab:
        training_models.export_section(store)


try:
    main()
except Exception as exc:  # the page boundary: one sentence, the traceback goes to the log
    ui.show_error(exc)
