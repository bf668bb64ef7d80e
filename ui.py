"""Streamlit glue shared by every page: the run store, shared pipelines, the sidebar, errors.

Pages call `settings()` for the sidebar's choices and `get_pipeline(...)` for a model that is
loaded once per process and shared by every session and thread (the classifier and detector
each serialise their own calls). The sidebar's detector thresholds start at the defaults of the
preset the current page uses (`WEBCAM` on live pages, `PHOTO` elsewhere), each preset keeping
its own values. `live_slots()` is the process-wide admission control of server-side live.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass

import pandas  # noqa: F401 -- see the NOTE below
import streamlit as st

from facemask import access, jobs
from facemask.card import decision_text
from facemask.classify import MaskClassifier
from facemask.compare import latency_per_face_ms, served_file_mb
from facemask.detect import PHOTO, DetectorSettings, FaceDetector
from facemask.errors import FacemaskError
from facemask.files import CARD_FILE
from facemask.live import SessionSlots, max_sessions_from_env
from facemask.pipeline import DETECTOR_PRESETS, Pipeline, preset_caption
from facemask.runs import DEFAULT_MODEL, MODELS_DIR, RUNS_DIR, ModelEntry, RunStore

log = logging.getLogger("facemask.app")
# NOTE: pandas is imported whole here, while app.py imports this module (under the import lock),
# before any session draws a chart: plotly takes pandas from sys.modules as it finds it, and two
# sessions drawing their first charts at once got a half-initialised pandas ("partially
# initialized module 'pandas' has no attribute 'Series'": seen in tests/test_browser_operator.py).

_SETTINGS_KEY = "facemask_settings"
_THRESHOLDS_KEY = "facemask_thresholds"  # preset -> (min_score, min_face) chosen
_OPERATOR_KEY = "facemask_operator"  # True once this session signed in with the password
_ATTEMPTS_KEY = "facemask_sign_in_attempts"


@dataclass(frozen=True)
class Settings:
    """What the sidebar chose; pages read it with `settings()`."""

    model_name: str | None  # None when no model is available at all
    min_score: float
    min_face: int
    detector: str = "photo"  # the preset (DETECTOR_PRESETS key) the thresholds belong to


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
    mtime = (model_dir / CARD_FILE).stat().st_mtime
    return _pipeline(str(model_dir), mtime, dataclasses.replace(preset, **changes))


@st.cache_resource(show_spinner=False, max_entries=16)
def _pipeline(model_dir: str, mtime: float, detector: DetectorSettings) -> Pipeline:
    return Pipeline(_detector(detector), _classifier(model_dir, mtime))


@st.cache_resource(show_spinner=False)
def _live_slots(capacity: int) -> SessionSlots:
    return SessionSlots(capacity)


def live_slots() -> SessionSlots:
    """The process-wide live session slots (FACEMASK_LIVE_MAX_SESSIONS; raises FacemaskError)."""
    return _live_slots(max_sessions_from_env())


# -- the operator (facemask.access) -------------------------------------------------------
def _oidc() -> tuple[list[str], str | None]:
    """The providers st.login can sign in with (secrets.toml's [auth] section), and, when an
    [auth] section is there but cannot be used, the sentence that says why (no providers then)."""
    from streamlit.auth_util import (
        get_secrets_auth_section,
        is_authlib_installed,
        validate_auth_credentials,
    )
    from streamlit.errors import StreamlitAuthError

    try:
        auth = get_secrets_auth_section()
    except Exception:  # a broken secrets.toml is Streamlit's to report; no sign-in then
        log.warning("could not read the [auth] section of secrets.toml", exc_info=True)
        return [], "The [auth] section of .streamlit/secrets.toml could not be read."
    if not auth:
        return [], None
    if not is_authlib_installed():
        return [], access.NO_AUTHLIB_TEXT
    providers = access.oidc_providers(auth.to_dict())
    problem = access.redirect_uri_problem(auth.get("redirect_uri"))
    try:
        for provider in providers or ["default"]:
            validate_auth_credentials(provider)
    except StreamlitAuthError as exc:
        problem = problem or " ".join(str(exc).split())
    if problem:
        _log_once(f"sign-in with a provider is off: {problem}")
        return [], problem
    return providers, None


@functools.cache
def _log_once(message: str) -> None:
    log.warning(message)


def access_mode() -> access.Mode:
    """How this server recognises its operator (where it listens, what is configured)."""
    return access.access_mode(st.get_option("server.address"), bool(_oidc()[0]))


@st.cache_resource(show_spinner=False)
def _password_gate(password: str) -> access.PasswordGate:
    return access.PasswordGate(password)  # one per server: its back-off spans every session


def is_operator() -> bool:
    """Whether this session may change the server's state (trainings, files written)."""
    mode = access_mode()
    if mode is access.Mode.LOCAL:
        return True
    if mode is access.Mode.OIDC:
        return st.user.is_logged_in is True and access.oidc_user(st.user.to_dict()).ok
    if mode is access.Mode.PASSWORD:
        return st.session_state.get(_OPERATOR_KEY) is True
    return False


def require_operator_text() -> None:
    """The sentence a visitor sees where the operator's controls would be."""
    mode = access_mode()
    if mode is access.Mode.CLOSED:
        st.info(access.MODE_TEXT[access.Mode.CLOSED])
    elif mode is access.Mode.OIDC and st.user.is_logged_in is True:
        st.info(_plain(access.oidc_user(st.user.to_dict()).message))  # signed in, not operator
    else:
        st.info(access.READ_ONLY_TEXT)


def operator_sidebar() -> None:
    """The sidebar's Operator box: who you are here, and sign-in / sign-out."""
    mode = access_mode()
    st.sidebar.header("Operator")
    problem = _oidc()[1]
    if problem and mode is not access.Mode.LOCAL:
        st.sidebar.warning(f"Sign-in with a provider is off: {problem}")
    if mode in (access.Mode.LOCAL, access.Mode.CLOSED):
        st.sidebar.caption(access.MODE_TEXT[mode])
    elif mode is access.Mode.OIDC:
        _oidc_box()
    else:
        _password_box()


def _oidc_box() -> None:
    if st.user.is_logged_in is not True:
        st.sidebar.caption(access.MODE_TEXT[access.Mode.OIDC])
        for provider in _oidc()[0]:
            label = "Sign in" if provider == "default" else f"Sign in with {provider}"
            st.sidebar.button(
                label, key=f"operator_login_{provider}", on_click=st.login, args=(provider,)
            )
        return
    user = access.oidc_user(st.user.to_dict())
    (st.sidebar.success if user.ok else st.sidebar.warning)(_plain(user.message))
    st.sidebar.button("Sign out", key="operator_logout", on_click=st.logout)


_MARKDOWN_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")


def _plain(text: str) -> str:
    """`text` shown as written, not as Markdown: a provider's claims are anyone's text."""
    return _MARKDOWN_PUNCTUATION.sub(r"\\\1", text)


def _password_box() -> None:
    if st.session_state.get(_OPERATOR_KEY) is True:
        st.sidebar.success("Signed in as the operator.")
        if st.sidebar.button("Sign out", key="operator_logout"):
            st.session_state[_OPERATOR_KEY] = False
            st.rerun()
        return
    st.sidebar.caption(access.MODE_TEXT[access.Mode.PASSWORD])
    with st.sidebar.form("operator_sign_in", clear_on_submit=True):
        given = st.text_input("Operator password", type="password", key="operator_password")
        submitted = st.form_submit_button("Sign in")
    if not submitted:
        return
    gate = _password_gate(os.environ.get(access.PASSWORD_ENV, ""))
    attempts = st.session_state.setdefault(_ATTEMPTS_KEY, access.SessionAttempts())
    outcome = gate.try_password(given or "", attempts)
    if outcome.ok:
        st.session_state[_OPERATOR_KEY] = True
        st.rerun()
    st.sidebar.error(outcome.message)


# -- server-wide limits (facemask.jobs) ---------------------------------------------------
@st.cache_resource(show_spinner=False)
def _server_work() -> tuple[jobs.VideoJobs, jobs.Slots, jobs.SessionJanitor]:
    """Created once per server process: video jobs, analysis slots, the session janitor.
    Job folders a previous server left behind (a crash) are removed first."""
    jobs.tune_allocator()
    removed = jobs.clean_stale_folders()
    if removed:
        log.info("removed %d video job folder(s) left by a previous server", removed)
    limits = jobs.ServerLimits.from_env()
    busy = "The server is analysing other photos right now; try again in a moment."
    janitor = jobs.SessionJanitor()
    janitor.every_sweep(end_expired_sessions)
    return (
        jobs.VideoJobs(limits.video_jobs, limits.video_idle_s),
        jobs.Slots(limits.analyses, limits.analysis_wait_s, busy),
        janitor,
    )


def start_janitor() -> None:
    """Make sure this server's session janitor runs (every page calls it; once per process)."""
    _server_work()


def video_jobs() -> jobs.VideoJobs:
    return _server_work()[0]


def analysis_slots() -> jobs.Slots:
    return _server_work()[1]


def session_alive() -> Callable[[], bool]:
    """Whether this browser session is still connected (for work that must end with it)."""
    from streamlit.runtime import Runtime
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    if ctx is None or not Runtime.exists():  # AppTest: no server, no sessions to end
        return lambda: True
    runtime, session_id = Runtime.instance(), ctx.session_id
    return lambda: runtime.is_active_session(session_id)


def free_when_session_ends(held: dict) -> None:
    """Once this session ends: drop its uploads, media, results (`held`) and state, so the
    server's memory falls within seconds instead of when Streamlit evicts the session (a
    browser that comes back later starts afresh)."""
    from streamlit.runtime import Runtime
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    if ctx is None or not Runtime.exists():
        return
    runtime, session_id, state = Runtime.instance(), ctx.session_id, ctx.session_state

    def cleanup() -> None:
        held.clear()
        # NOTE: the uploader's files live on in its widget state. SafeSessionState (Streamlit
        # 1.67) has no public clear(); the SessionState it wraps does, under its lock.
        with state._lock:
            state._state.clear()
        runtime.uploaded_file_mgr.remove_session_files(session_id)
        runtime.media_file_mgr.clear_session_refs(session_id)
        runtime.media_file_mgr.remove_orphaned_files()

    _server_work()[2].watch(session_id, session_alive(), cleanup)


# -- Streamlit workarounds ------------------------------------------------------------------
def skip_keras_clear_session() -> bool:
    """Stop Streamlit from calling `keras.backend.clear_session()` after every script run.

    Why: Streamlit 1.x's ScriptRunner calls `_clean_problem_modules()` after each run, and
    that calls `keras.backend.clear_session()` whenever `keras` is in sys.modules: once anything
    in the process imported TensorFlow (a model served through Keras, the Training page's
    comparisons). clear_session ends in a full `gc.collect()` holding the GIL, after every
    chart refresh of every live session, stalling every video worker thread (bench/live_load.py
    --profile measures it). The app builds no Keras
    model in a script run (models are cached resources; training runs in a subprocess), so
    there is no per-run Keras state to clear. The matplotlib half of the cleanup is kept.

    Idempotent; returns whether the patch is in place.
    """
    from streamlit.runtime.scriptrunner import script_runner

    if getattr(script_runner._clean_problem_modules, "_facemask_patch", False):
        return True
    original = script_runner._clean_problem_modules

    def clean_problem_modules_but_keras() -> None:
        """Streamlit's cleanup without the Keras part: close matplotlib figures."""
        pyplot = sys.modules.get("matplotlib.pyplot")
        if pyplot is not None:
            try:
                pyplot.close("all")
            except Exception:  # as Streamlit does: cleanup must never break a run
                log.debug("matplotlib cleanup failed", exc_info=True)

    clean_problem_modules_but_keras._facemask_patch = True  # type: ignore[attr-defined]
    clean_problem_modules_but_keras._facemask_original = original  # type: ignore[attr-defined]
    script_runner._clean_problem_modules = clean_problem_modules_but_keras
    return True


def end_expired_sessions() -> int:
    """Shut down the sessions Streamlit kept for a reconnect once their time is up; returns how
    many.

    Why: Streamlit 1.x keeps a disconnected session for `server.disconnectedSessionTTL` in a
    TTL cache that drops expired entries only at its next write (the next visitor), and drops
    them without `AppSession.shutdown()`, so their uploads and media stay registered: after a
    crowd of visitors left, the server's memory stayed where the crowd had taken it
    (bench/browser_crowd.py). The session janitor calls this every few seconds.
    """
    from streamlit.runtime import Runtime

    if not Runtime.exists():
        return 0
    manager = Runtime.instance()._session_mgr
    cache = getattr(getattr(manager, "_session_storage", None), "_cache", None)
    lock = getattr(manager, "_storage_lock", None)
    if lock is None or not callable(getattr(cache, "expire", None)):
        return 0  # another session manager or storage: it keeps its own counsel
    with lock:
        expired = cache.expire()
    for _, info in expired:
        info.session.shutdown()
    if expired:
        log.info("ended %d session(s) disconnected for longer than the TTL", len(expired))
    return len(expired)


def share_uploads_on_copy() -> bool:
    """Stop every script run from copying every uploaded file's bytes.

    Why: Streamlit 1.x returns a widget's value as `deepcopy(value)` (SessionState.
    register_widget), and an UploadedFile is a BytesIO, whose deepcopy copies its bytes: each
    run of the Upload page held its photos twice, the copies kept by the download buttons'
    callables for the whole session (twenty 17 MB photos: 340 MB more; bench/upload_memory.py,
    traced). A copy that shares the bytes is just as safe: a BytesIO copies its buffer before
    any write, so neither side can change the other. Idempotent; returns whether it is in place.
    """
    from streamlit.runtime.uploaded_file_manager import UploadedFile, UploadedFileRec

    if getattr(UploadedFile, "_facemask_patch", False):
        return True

    def shared_copy(self: UploadedFile, memo: dict) -> UploadedFile:
        record = UploadedFileRec(self.file_id, self.name, self.type, self.getvalue())
        copy = UploadedFile(record, self._file_urls)
        copy.seek(self.tell())
        return copy

    UploadedFile.__deepcopy__ = shared_copy  # type: ignore[method-assign]
    UploadedFile._facemask_patch = True  # type: ignore[attr-defined]
    return True


def undo_skip_keras_clear_session() -> None:
    """Put Streamlit's own cleanup back (tests)."""
    from streamlit.runtime.scriptrunner import script_runner

    original = getattr(script_runner._clean_problem_modules, "_facemask_original", None)
    if original is not None:
        script_runner._clean_problem_modules = original


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


def sidebar(detector: str = "photo") -> Settings:
    """Draw the shared sidebar (model, thresholds, model card) and store the Settings.

    `detector` is the preset the current page runs ("webcam" on live pages, "photo" on the
    others): the threshold sliders start at its defaults and keep a value per preset.
    """
    if detector not in DETECTOR_PRESETS:
        raise ValueError(f"detector must be one of {sorted(DETECTOR_PRESETS)}, not {detector!r}.")
    _server_work()  # once per process: the server's limits, and start-up clean-up
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
    preset = DETECTOR_PRESETS[detector]
    # Streamlit forgets a widget's value on a page that does not draw it: each preset's
    # choice is kept here too, so it survives a visit to a page of the other preset.
    kept = st.session_state.setdefault(_THRESHOLDS_KEY, {})
    score_value, face_value = kept.get(detector, (preset.min_score, preset.min_face))
    st.sidebar.caption(preset_caption(detector))
    min_score = st.sidebar.slider(
        "Minimum detector score",
        0.1,
        0.95,
        value=float(score_value),
        step=0.05,
        key=f"sidebar_min_score_{detector}",
        help="Faces the detector is less sure of than this are ignored.",
    )
    min_face = st.sidebar.slider(
        "Minimum face size (px)",
        0,
        120,
        value=int(face_value),
        step=2,
        key=f"sidebar_min_face_{detector}",
        help="Faces whose shorter side is smaller than this are ignored.",
    )
    kept[detector] = (float(min_score), int(min_face))
    chosen_settings = Settings(
        chosen.name if chosen else None, float(min_score), int(min_face), detector
    )
    st.session_state[_SETTINGS_KEY] = chosen_settings
    return chosen_settings


def settings() -> Settings:
    """The sidebar's current Settings (PHOTO defaults if the sidebar has not run yet)."""
    current = st.session_state.get(_SETTINGS_KEY)
    if isinstance(current, Settings):
        return current
    return Settings(None, float(PHOTO.min_score), int(PHOTO.min_face), "photo")


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
