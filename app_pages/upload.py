"""Upload page: photos -> annotated image, face table, downloads; video -> annotated video."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import streamlit as st

import ui
from facemask.errors import FacemaskError, VideoError
from facemask.images import MAX_IMAGE_BYTES, encode_image, load_image
from facemask.pipeline import LABEL_TEXT, Detection, annotate
from facemask.predict import image_result, results_csv
from facemask.video import (
    MAX_VIDEO_BYTES,
    MAX_VIDEO_SECONDS,
    VideoCancelled,
    VideoJob,
    VideoSummary,
)

IMAGE_TYPES = ["jpg", "jpeg", "png", "webp"]
VIDEO_TYPES = ["mp4", "mov", "avi", "webm"]
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


def _face_rows(detections: list[Detection]) -> list[dict[str, Any]]:
    return [
        {
            "face": i,
            "box": ", ".join(str(v) for v in det.box),
            "label": LABEL_TEXT.get(det.label, det.label),
            "confidence": round(det.confidence, 4),
            "detection score": round(det.detection_score, 4),
        }
        for i, det in enumerate(detections, start=1)
    ]


def _analyse(file, model: str, s: ui.Settings, whole_image: bool) -> dict[str, Any]:
    """Result, annotated PNG and face rows of one upload (cached per session: reruns are free)."""
    key = (file.file_id, model, s.min_score, s.min_face, whole_image)
    cache: dict = st.session_state.setdefault(_CACHE_KEY, {})
    if key not in cache:
        rgb = load_image(file.getvalue(), name=file.name, max_bytes=MAX_IMAGE_BYTES)
        pipeline = ui.get_pipeline(model, "photo", s.min_score, s.min_face)
        result, detections = image_result(pipeline, rgb, file.name, whole_image=whole_image)
        shown = detections
        if whole_image and not detections:
            shown = [pipeline.classify_whole(rgb)]
        cache[key] = {
            "result": result,
            "png": encode_image(annotate(rgb, shown), "PNG"),
            "rows": _face_rows(detections),
        }
        while len(cache) > _CACHE_SIZE:
            cache.pop(next(iter(cache)))
    return cache[key]


def _show_image(index: int, file, model: str, s: ui.Settings) -> dict[str, Any] | None:
    """One uploaded image: annotated picture, face table, PNG download. None if unusable."""
    st.subheader(file.name)
    whole_key = f"whole_{index}_{file.file_id}"
    try:
        analysed = _analyse(file, model, s, st.session_state.get(whole_key, False))
    except FacemaskError as exc:
        ui.show_error(exc)
        return None
    result = analysed["result"]
    left, right = st.columns([4, 3])
    left.image(analysed["png"], caption=f"{result['width']} x {result['height']} px")
    with right:
        if analysed["rows"]:
            st.dataframe(analysed["rows"], hide_index=True, column_config=FACE_COLUMNS)
        else:
            st.info(
                "No face was found in this image. If it is a close-up of one face, "
                "classify the whole image as that face."
            )
        if not analysed["rows"] or st.session_state.get(whole_key):
            st.toggle("Classify the whole image as one face", key=whole_key)
        if "image_label" in result:
            label = LABEL_TEXT.get(result["image_label"], result["image_label"])
            st.success(f"Whole image: **{label}** ({result['image_confidence']:.0%} confident).")
        st.download_button(
            "Annotated image (PNG)",
            analysed["png"],
            file_name=f"{Path(file.name).stem}_annotated.png",
            mime="image/png",
            key=f"png_{index}_{file.file_id}",
            on_click="ignore",
        )
    return result


def images_section(model: str, s: ui.Settings) -> None:
    files = st.file_uploader(
        "Photos (JPEG, PNG or WebP)",
        type=IMAGE_TYPES,
        accept_multiple_files=True,
        key="upload_images",
        max_upload_size=MAX_IMAGE_BYTES // 2**20,
        help="Each face is found, classified and boxed. Phone photos are turned upright (EXIF).",
    )
    if not files:
        return
    results = []
    for index, file in enumerate(files):
        result = _show_image(index, file, model, s)
        if result is not None:
            results.append(result)
    if not results:
        return
    st.divider()
    faces = sum(len(r["faces"]) for r in results)
    st.markdown(f"**{faces} face(s) in {len(results)} image(s).** Download every result:")
    csv_col, json_col = st.columns(2)
    csv_col.download_button(
        "Results (CSV)",
        results_csv(results),
        file_name="facemask_results.csv",
        mime="text/csv",
        key="results_csv",
        on_click="ignore",
    )
    json_col.download_button(
        "Results (JSON Lines)",
        "".join(json.dumps(r) + "\n" for r in results),
        file_name="facemask_results.jsonl",
        mime="application/jsonl",
        key="results_json",
        on_click="ignore",
        help="One object per image, as `facemask predict --json` prints.",
    )


def video_section(model: str, s: ui.Settings) -> None:
    video = st.file_uploader(
        "A video (MP4, MOV, AVI or WebM)",
        type=VIDEO_TYPES,
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
        help="Uses the photo detector (full range, tiles) on every frame instead of the fast one.",
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
    """Annotate on a background thread; the page polls it (and can cancel it)."""
    _drop_job()
    if video.size > MAX_VIDEO_BYTES:
        ui.show_error(
            VideoError(
                f"{video.name} is {video.size / 2**20:.0f} MB; "
                f"the limit is {MAX_VIDEO_BYTES // 2**20} MB."
            )
        )
        return
    try:
        pipeline = ui.get_pipeline(model, detector, s.min_score, s.min_face)
    except FacemaskError as exc:
        ui.show_error(exc)
        return
    st.session_state[_JOB_KEY] = (key, VideoJob(video.getvalue(), video.name, pipeline))


def _drop_job() -> None:
    job = st.session_state.pop(_JOB_KEY, None)
    if job is not None:
        job[1].close()


@st.fragment(run_every=VIDEO_REFRESH_S)
def _video_progress() -> None:
    """Progress of the running job with a Cancel button; the result when it ends."""
    entry = st.session_state.get(_JOB_KEY)
    if entry is None:
        return
    key, job = entry
    if job.done:
        st.session_state.pop(_JOB_KEY)
        if job.summary is not None:
            st.session_state[_VIDEO_KEY] = _finished(job.summary, key)
        job.close()
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


def _finished(summary: VideoSummary, key: tuple) -> dict[str, Any]:
    return {
        "key": key,
        "mp4": summary.output.read_bytes(),
        "summary": {
            "frames": summary.frames,
            "seconds": summary.seconds,
            "fps": summary.fps,
            "width": summary.width,
            "height": summary.height,
            "faces": summary.faces_per_label,
            "notes": list(summary.notes),
        },
    }


def _show_video(done: dict[str, Any], name: str) -> None:
    summary = done["summary"]
    for note in summary["notes"]:
        st.warning(note)
    counts = ", ".join(
        f"{n} {LABEL_TEXT.get(label, label).lower()}" for label, n in summary["faces"].items()
    )
    st.success(
        f"{summary['frames']} frames ({summary['seconds']:.1f} s at {summary['fps']:.3g} fps), "
        f"{summary['width']} x {summary['height']} px; faces: {counts or 'none found'}."
    )
    st.video(done["mp4"], format="video/mp4")
    st.download_button(
        "Annotated video (MP4)",
        done["mp4"],
        file_name=f"{Path(name).stem}_annotated.mp4",
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
