"""Live (on the server): the webcam through the mask detector, with a chart of faces over time.

The fallback for a browser that cannot run "Live in your browser" (the landing page): one
without WebAssembly or without a camera API for the page.

Frames go browser -> server -> browser over WebRTC (streamlit-webrtc); each is processed by this
session's facemask.live.LiveProcessor, which holds the shared, cached Pipeline. Beyond the
server's capacity (ui.live_slots()) a session is told the server is busy and pointed to the
in-browser page instead of slowing every stream down.
"""

import streamlit as st
from streamlit_webrtc import WebRtcMode, webrtc_streamer

import ui
from facemask import charts, live, webrtc
from facemask.browser import CAMERA_MESSAGES
from facemask.pipeline import LABEL_TEXT

WEBRTC_KEY = "live_webcam"
PROCESSOR_KEY = "live_processor"
CHART_REFRESH_S = 3.0
"""Seconds between chart refreshes while playing: each is a script run per session, which costs
server time under several sessions (bench/live_load.py --profile)."""
BROWSER_PAGE = "./"
"""URL of "Live in your browser" (the app's default page, at its root), where the browser itself
runs the detector and model."""
CAMERA = {
    "width": {"ideal": 640},
    "height": {"ideal": 480},
    "frameRate": {"ideal": 15, "max": 15},
}
"""Enough to see a mask; half the frames of a default 30 fps camera to decode and encode."""
TRANSLATIONS = {
    "device_ask_permission": "Allow this site to use your camera when the browser asks.",
    "device_access_denied": CAMERA_MESSAGES["refused"],
    "device_not_available": CAMERA_MESSAGES["noCamera"],
    "media_api_not_available": CAMERA_MESSAGES["insecure"],
}
"""streamlit-webrtc's camera errors in the sentences the in-browser page uses too."""
BUSY = (
    "The server is busy: it already streams as many webcams as it can serve at once; use "
    f"[Live in your browser]({BROWSER_PAGE}), which runs the detector on your own device, "
    "or try again in a minute."
)
CAMERA_HELP = (
    "Does Start end in *NotAllowedError: Permission denied*? The browser blocked the camera: "
    "allow it for this site (the camera icon in the address bar) and press Start again. "
    "Browsers offer a camera only on https pages and on localhost."
)

webrtc.fix_stale_state_reset()
webrtc.apply_loopback_mode()

st.title("Live webcam")
st.caption(
    "Press **Start** and allow the camera. Every face gets a box: green for a mask, red for "
    "none, amber for a mask worn wrong (with a model that knows it, e.g. mobilenetv2-3class). "
    "Frames are processed on the server; when it is busy it skips frames rather than fall behind."
)
st.page_link(
    "app_pages/browser.py",
    label="Use Live in your browser unless your browser cannot run it (no WebAssembly, or no "
    "camera for that page): the video stays on your device and the server does no work per frame.",
    icon=":material/devices:",
)

model_name = ui.require_model()
chosen = ui.settings()
try:
    rtc_configuration = webrtc.rtc_configuration()
    slots = ui.live_slots()
except Exception as exc:
    ui.show_error(exc)
    st.stop()

processor = st.session_state.get(PROCESSOR_KEY)
owner = processor.session_id if isinstance(processor, live.LiveProcessor) else None
if slots.full(owner):  # before any model loads: a full server does no work for this session
    st.warning(BUSY)
    st.stop()

try:
    pipeline = ui.get_pipeline(model_name, "webcam", chosen.min_score, chosen.min_face)
    if not isinstance(processor, live.LiveProcessor):
        processor = live.LiveProcessor(
            pipeline, status_file=live.status_file_from_env(), slots=slots
        )
        st.session_state[PROCESSOR_KEY] = processor
    processor.set_pipeline(pipeline)
except Exception as exc:
    ui.show_error(exc)
    st.stop()

video_column, chart_column = st.columns([3, 2], gap="medium")
with video_column:
    streamer = webrtc_streamer(
        key=WEBRTC_KEY,
        mode=WebRtcMode.SENDRECV,
        rtc_configuration=rtc_configuration,
        media_stream_constraints={"video": CAMERA, "audio": False},
        video_frame_callback=processor.process,
        async_processing=True,
        video_html_attrs={"autoPlay": True, "muted": True, "style": {"width": "100%"}},
        translations=TRANSLATIONS,
    )
    st.caption(f"Model: **{model_name}** · detector score ≥ {chosen.min_score:.2f}")
    if not streamer.state.playing:
        processor.release_slot()
        st.caption(CAMERA_HELP)


def faces_chart() -> None:
    """The counts chart and the latest numbers; reruns on its own while the video plays."""
    stats = processor.stats()
    labels = processor.pipeline.labels
    records = processor.history()
    if processor.refused and not slots.holds(processor.session_id):
        st.warning(BUSY)
    if stats.last_error:
        st.error(stats.last_error)
    if not records:
        st.info("No frames yet: press Start. The chart fills in as faces are seen.")
        return
    latest = records[-1]
    cells = st.columns(len(labels) + 1)
    for cell, label in zip(cells, labels, strict=False):
        cell.metric(LABEL_TEXT.get(label, label), latest.count(label))
    cells[-1].metric("FPS", f"{stats.fps:.1f}")
    series = live.counts_per_second(records, labels)
    st.plotly_chart(
        charts.counts_figure(series, labels),
        key="live_faces_chart",
        config={"displayModeBar": False},
    )
    st.caption(f"{stats.processed} frames processed · median {stats.latency_ms:.0f} ms per frame")


with chart_column:
    playing = streamer.state.playing
    st.fragment(faces_chart, run_every=CHART_REFRESH_S if playing else None)()
