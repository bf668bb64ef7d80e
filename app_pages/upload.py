"""Upload page: photos -> annotated image, face table, downloads; video -> annotated video."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import streamlit as st

import ui
from facemask import jobs, uploads
from facemask.errors import FacemaskError
from facemask.gate import MAX_IMAGE_BYTES, MAX_VIDEO_BYTES, MAX_VIDEO_SECONDS
from facemask.predict import results_csv
from facemask.video import VideoCancelled, check_video_size

_CACHE_KEY = "upload_results"
_CACHE_SIZE = 64
_VIDEO_KEY = "upload_video_result"
_JOB_KEY = "upload_video_job"
_VIDEO_ERROR_KEY = "upload_video_error"
VIDEO_REFRESH_S = 0.5
FACE_COLUMNS = {
    "box": st.column_config.TextColumn(help="x1, y1, x2, y2 in pixels of the original image"),
    "confidence": st.column_config.NumberColumn(help="The classifier's probability of the label"),
    "detection score": st.column_config.NumberColumn(help="The face detector's confidence"),
}


def _results_cache() -> dict:
    """This session's analysed photos (freed by the server once the session ends)."""
    if _CACHE_KEY not in st.session_state:
        st.session_state[_CACHE_KEY] = {}
        ui.free_when_session_ends(st.session_state[_CACHE_KEY])
    return st.session_state[_CACHE_KEY]


def _analyse(file, model: str, s: ui.Settings, whole_image: bool) -> uploads.ImageOutcome:
    """One upload through the gate and the pipeline (cached per session: reruns are free).

    At most a few analyses run at once on the server; beyond, this one waits a little and
    then says the server is busy (that answer is not cached: a rerun tries again)."""
    key = (file.file_id, model, s.min_score, s.min_face, whole_image)
    cache = _results_cache()
    if key not in cache:
        pipeline = ui.get_pipeline(model, "photo", s.min_score, s.min_face)
        try:
            with ui.analysis_slots().hold():
                outcome = uploads.analyse_image(file.getvalue(), file.name, pipeline, whole_image)
                jobs.trim_memory()
        except jobs.Busy as exc:
            return uploads.ImageOutcome(file.name, error=exc)
        cache[key] = outcome
        while len(cache) > _CACHE_SIZE:
            cache.pop(next(iter(cache)))
    return cache[key]


# The downloads are made when clicked, from the upload itself.
def _annotated_png(file, outcome: uploads.ImageOutcome) -> bytes:
    return uploads.annotated_png(file.getvalue(), outcome)


def _annotated_zip(good: list[tuple]) -> bytes:
    return uploads.annotated_zip((file.getvalue(), outcome) for file, outcome in good)


def _show_image(index: int, file, model: str, s: ui.Settings) -> uploads.ImageOutcome:
    """One uploaded image: annotated picture, face table, PNG download; or its one error."""
    st.subheader(file.name)
    whole_key = f"whole_{index}_{file.file_id}"
    outcome = _analyse(file, model, s, st.session_state.get(whole_key, False))
    if outcome.error is not None:
        ui.show_error(outcome.error)
        return outcome
    result = outcome.result
    left, right = st.columns([4, 3])
    left.image(outcome.preview, caption=f"{result['width']} x {result['height']} px")
    with right:
        if outcome.rows:
            st.dataframe(outcome.rows, hide_index=True, column_config=FACE_COLUMNS)
        else:
            st.info(uploads.NO_FACE_HINT)
        if not outcome.rows or st.session_state.get(whole_key):
            st.toggle("Classify the whole image as one face", key=whole_key)
        if "image_label" in result:
            st.success(uploads.whole_image_sentence(result))
        st.download_button(
            "Annotated image (PNG)",
            partial(_annotated_png, file, outcome),  # made when clicked
            file_name=uploads.annotated_name(file.name),
            mime="image/png",
            key=f"png_{index}_{file.file_id}",
            on_click="ignore",
        )
    return outcome


def images_section(model: str, s: ui.Settings) -> None:
    files = st.file_uploader(
        "Photos (JPEG, PNG, WebP, GIF or BMP)",
        type=list(uploads.IMAGE_TYPES),
        accept_multiple_files=True,
        key="upload_images",
        max_upload_size=MAX_IMAGE_BYTES // 2**20,
        help=f"Each face is found, classified and boxed. Phone photos are turned upright (EXIF). "
        f"Up to {uploads.SESSION_MAX_FILES} photos ({uploads.SESSION_MAX_BYTES // 2**20} MB) "
        "at a time.",
    )
    if not files:
        return
    count, note = uploads.admitted([f.size for f in files])
    if note:
        st.warning(note)
    files = files[:count]
    outcomes = [_show_image(index, file, model, s) for index, file in enumerate(files)]
    good = [(f, o) for f, o in zip(files, outcomes, strict=True) if o.error is None]
    if not good:
        return
    results = [o.result for _, o in good]
    st.divider()
    faces = sum(len(r["faces"]) for r in results)
    st.markdown(f"**{faces} face(s) in {len(results)} image(s).** Download every result:")
    downloads = [
        ("Results (CSV)", results_csv(results), f"{uploads.RESULTS_NAME}.csv", "text/csv"),
        ("Results (JSON Lines)", uploads.results_jsonl(results),
         f"{uploads.RESULTS_NAME}.jsonl", "application/jsonl"),
        ("Annotated images (ZIP)", partial(_annotated_zip, good),
         uploads.annotated_name("facemask", ".zip"), "application/zip"),
    ]  # fmt: skip
    for column, (label, data, file_name, mime) in zip(st.columns(3), downloads, strict=True):
        column.download_button(label, data, file_name=file_name, mime=mime, on_click="ignore",
                               key=f"results_{Path(file_name).suffix[1:]}")  # fmt: skip


def video_section(model: str, s: ui.Settings) -> None:
    video = st.file_uploader(
        "A video (MP4, MOV, AVI or WebM)",
        type=list(uploads.VIDEO_TYPES),
        key="upload_video",
        max_upload_size=MAX_VIDEO_BYTES // 2**20,
        help=f"Up to {MAX_VIDEO_BYTES // 2**20} MB; the first {MAX_VIDEO_SECONDS:.0f} s are used.",
    )
    if video is None:
        _drop_job()
        return
    ended = st.session_state.pop(_VIDEO_ERROR_KEY, None)
    if isinstance(ended, VideoCancelled):
        st.info(str(ended))
    elif ended is not None:
        ui.show_error(ended)
    small_faces = st.toggle(
        "Look for small faces too (slower)",
        key="video_small_faces",
        help="Runs the photo detector (YuNet, close-ups too) on every frame, not the fast one.",
    )
    detector = "photo" if small_faces else "webcam"
    key = (video.file_id, model, s.min_score, s.min_face, detector)
    done = st.session_state.get(_VIDEO_KEY)
    if done is not None and done["key"] == key:
        _show_video(done, video.name)
        return
    job = st.session_state.get(_JOB_KEY)
    if job is not None and job[0] == key:
        _video_progress()
        return
    if st.button("Annotate the video", type="primary", key="annotate_video"):
        _start_job(video, model, s, detector, key)
        _video_progress()


def _start_job(video, model: str, s: ui.Settings, detector: str, key: tuple) -> None:
    """Annotate on a background thread; the page polls it (and can cancel it). The server runs
    a few at once ("busy" beyond) and ends a job whose session ended or stopped watching."""
    _drop_job()
    try:
        check_video_size(video.name, video.size)
        pipeline = ui.get_pipeline(model, detector, s.min_score, s.min_face)
        job = ui.video_jobs().start(video.getvalue(), video.name, pipeline, ui.session_alive())
    except FacemaskError as exc:
        ui.show_error(exc)
        return
    st.session_state[_JOB_KEY] = (key, job)


def _drop_job() -> None:
    job = st.session_state.pop(_JOB_KEY, None)
    if job is not None:
        ui.video_jobs().close(job[1])


@st.fragment(run_every=VIDEO_REFRESH_S)
def _video_progress() -> None:
    """Progress of the running job with a Cancel button; the result when it ends."""
    entry = st.session_state.get(_JOB_KEY)
    if entry is None:
        return
    key, job = entry
    job.touch()
    if job.closed:  # ended by the server: this page stopped watching it for too long
        st.session_state.pop(_JOB_KEY)
        st.session_state[_VIDEO_ERROR_KEY] = VideoCancelled(
            "The video job was stopped because this page stopped following it; start it again."
        )
        st.rerun(scope="app")
    if job.done:
        st.session_state.pop(_JOB_KEY)
        if job.summary is not None:
            st.session_state[_VIDEO_KEY] = {"key": key, **uploads.video_result(job.summary)}
        ui.video_jobs().close(job)
        if job.error is not None:
            st.session_state[_VIDEO_ERROR_KEY] = job.error
        st.rerun(scope="app")
    frames, total = job.frames, max(job.total, job.frames, 1)
    text = f"Frame {frames} of about {total}" if frames else "Reading the video..."
    st.progress(min(frames / total, 1.0), text=text)
    if st.button("Cancel", key="cancel_video"):
        _drop_job()
        st.session_state[_VIDEO_ERROR_KEY] = VideoCancelled("Cancelled; nothing was saved.")
        st.rerun(scope="app")


def _show_video(done: dict, name: str) -> None:
    for note in done["notes"]:
        st.warning(note)
    st.success(uploads.video_sentence(done))
    st.video(done["mp4"], format="video/mp4")
    st.download_button(
        "Annotated video (MP4)",
        done["mp4"],
        file_name=uploads.annotated_name(name, ".mp4"),
        mime="video/mp4",
        key="video_download",
        on_click="ignore",
    )


def main() -> None:
    st.title("Upload photos or a video")
    model = ui.require_model()
    s = ui.settings()
    st.caption(
        f"Model **{model}** · faces scored at least {s.min_score:.2f} and at least "
        f"{s.min_face} px (change them in the sidebar)."
    )
    photos, videos = st.tabs(["Photos", "Video"])
    with photos:
        images_section(model, s)
    with videos:
        video_section(model, s)


try:
    main()
except Exception as exc:  # the page boundary: one sentence, the traceback goes to the log
    ui.show_error(exc)
