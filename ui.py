"""Streamlit glue shared by every page: the run store, shared pipelines, the sidebar, errors.

Pages call `settings()` for the sidebar's choices and `get_pipeline(...)` for a model that is
loaded once per process and shared by every session and thread (the classifier and detector
each serialise their own calls).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from facemask.card import decision_text
from facemask.classify import MaskClassifier
from facemask.compare import latency_per_face_ms, served_file_mb
from facemask.detect import PHOTO, WEBCAM, DetectorSettings, FaceDetector
from facemask.errors import FacemaskError
from facemask.pipeline import Pipeline
from facemask.runs import DEFAULT_MODEL, MODELS_DIR, RUNS_DIR, ModelEntry, RunStore

log = logging.getLogger("facemask.app")

DETECTOR_PRESETS: dict[str, DetectorSettings] = {"webcam": WEBCAM, "photo": PHOTO}
_SETTINGS_KEY = "facemask_settings"


@dataclass(frozen=True)
class Settings:
    """What the sidebar chose; pages read it with `settings()`."""

    model_name: str | None  # None when no model is available at all
    min_score: float
    min_face: int


# -- shared resources -----------------------------------------------------------------------
@st.cache_resource(show_spinner=False)
def _store(runs_root: str, models_root: str) -> RunStore:
    return RunStore(runs_root, models_root)


def get_store() -> RunStore:
    """The run store (runs/ and models/, or FACEMASK_RUNS_DIR / FACEMASK_MODELS_DIR)."""
    runs_root = os.environ.get("FACEMASK_RUNS_DIR", str(RUNS_DIR))
    models_root = os.environ.get("FACEMASK_MODELS_DIR", str(MODELS_DIR))
    return _store(runs_root, models_root)


@st.cache_resource(show_spinner="Loading the model...", max_entries=4)
def _classifier(model_dir: str, mtime: float) -> MaskClassifier:
    """One classifier per model folder (mtime of card.json: a replaced model reloads)."""
    return MaskClassifier(model_dir)


@st.cache_resource(show_spinner="Loading the face detector...", max_entries=6)
def _detector(settings: DetectorSettings) -> FaceDetector:
    return FaceDetector(settings)


def get_pipeline(
    model_name: str,
    detector: str,
    min_score: float | None = None,
    min_face: int | None = None,
) -> Pipeline:
    """A Pipeline for a model name (shipped model or finished run) and detector "webcam"/"photo".

    The classifier and detector are cached resources: one instance per model / detector
    settings serves every session and thread. `min_score` / `min_face` override the preset's
    thresholds (pass the sidebar's `settings()` values). Raises ModelError for unknown names.
    """
    if detector not in DETECTOR_PRESETS:
        raise ValueError(f"detector must be one of {sorted(DETECTOR_PRESETS)}, not {detector!r}.")
    preset = DETECTOR_PRESETS[detector]
    changes: dict[str, float | int] = {}
    if min_score is not None:
        changes["min_score"] = float(min_score)
    if min_face is not None:
        changes["min_face"] = int(min_face)
    model_dir = get_store().resolve_model(model_name)
    mtime = (model_dir / "card.json").stat().st_mtime
    return _pipeline(str(model_dir), mtime, dataclasses.replace(preset, **changes))


@st.cache_resource(show_spinner=False, max_entries=16)
def _pipeline(model_dir: str, mtime: float, detector: DetectorSettings) -> Pipeline:
    return Pipeline(_detector(detector), _classifier(model_dir, mtime))


# -- errors ---------------------------------------------------------------------------------
def show_error(exc: BaseException) -> None:
    """One sentence for the user, never a traceback.

    A FacemaskError's message is written for users and shown as is; anything else is logged
    with its traceback and shown as one generic sentence.
    """
    if isinstance(exc, FacemaskError):
        st.error(str(exc))
        return
    log.error("unexpected error in the app", exc_info=exc)
    st.error(
        "Something went wrong on our side; the details are in the server log. "
        "Please try again, or with another file or model."
    )


# -- the sidebar ----------------------------------------------------------------------------
def _no_models_help(store: RunStore) -> None:
    st.sidebar.error("No model is available yet.")
    st.sidebar.markdown(
        f"The app serves models from `{store.models_dir}` (shipped) and finished runs in "
        f"`{store.root}`, and found none. Either get the shipped model folder "
        f"(`models/{DEFAULT_MODEL}/` with `card.json` and `model.tflite`) from the repository, "
        "or train one on the **Training** page (or `facemask train --data DIR`)."
    )


def _model_card(entry: ModelEntry) -> None:
    """The chosen model at a glance (a compact table: metrics are too wide for the sidebar)."""
    card = entry.card
    accuracy = card.get("metrics", {}).get("test", {}).get("accuracy")
    size_mb = served_file_mb(entry.path, card)
    latency = latency_per_face_ms(card)
    rows = {
        "Architecture": str(card.get("architecture", "—")),
        "Test accuracy": f"{accuracy:.1%}" if isinstance(accuracy, float) else "—",
        "Served file": f"{size_mb:.1f} MB" if size_mb is not None else "—",
        "CPU latency / face": f"{latency:.1f} ms" if latency is not None else "not measured",
        "Input": f"{card.get('input_size')} px, {entry.source} model",
        "Decision": decision_text(card, short=True),
    }
    table = "\n".join(f"| {key} | {value} |" for key, value in rows.items())
    st.sidebar.markdown(f"| Model card | {entry.name} |\n|---|---|\n{table}")
    st.sidebar.caption("Labels: " + ", ".join(card.get("labels", [])))


def sidebar() -> Settings:
    """Draw the shared sidebar (model, thresholds, model card) and store the Settings."""
    store = get_store()
    try:
        entries = store.models()
    except OSError as exc:
        log.error("could not list models", exc_info=exc)
        entries = []
    st.sidebar.header("Model")
    chosen: ModelEntry | None = None
    if not entries:
        _no_models_help(store)
    else:
        names = [e.name for e in entries]
        default = names.index(DEFAULT_MODEL) if DEFAULT_MODEL in names else 0
        by_name = {e.name: e for e in entries}
        name = st.sidebar.selectbox(
            "Classifier",
            names,
            index=default,
            format_func=lambda n: by_name[n].title,
            key="sidebar_model",
            help="Shipped models and finished training runs.",
        )
        chosen = by_name.get(name, entries[default])
        _model_card(chosen)
    st.sidebar.header("Detection")
    min_score = st.sidebar.slider(
        "Minimum detector score",
        0.1,
        0.95,
        value=float(PHOTO.min_score),
        step=0.05,
        key="sidebar_min_score",
        help="Faces the detector is less sure of than this are ignored.",
    )
    min_face = st.sidebar.slider(
        "Minimum face size (px)",
        0,
        120,
        value=int(PHOTO.min_face),
        step=2,
        key="sidebar_min_face",
        help="Faces whose shorter side is smaller than this are ignored.",
    )
    chosen_settings = Settings(chosen.name if chosen else None, float(min_score), int(min_face))
    st.session_state[_SETTINGS_KEY] = chosen_settings
    return chosen_settings


def settings() -> Settings:
    """The sidebar's current Settings (defaults if the sidebar has not run in this session)."""
    current = st.session_state.get(_SETTINGS_KEY)
    if isinstance(current, Settings):
        return current
    return Settings(None, float(PHOTO.min_score), int(PHOTO.min_face))


def require_model() -> str:
    """The chosen model's name, or stop the page with a clear message when there is none."""
    name = settings().model_name
    if name is None:
        st.info(
            "No model is available yet: see the sidebar for how to get the shipped model "
            "or train one on the Training page."
        )
        st.stop()
    return name


def repo_root() -> Path:
    """The repository folder (where app.py lives)."""
    return Path(__file__).resolve().parent
