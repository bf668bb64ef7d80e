"""facemask dashboard: `make run` (`streamlit run serve.py`, which serves this script; `streamlit
run app.py` works too, without serve.py's compression and caching of the static files).

Pages: Live in your browser (the landing page: the webcam processed in the page), Live (the
webcam processed on the server: the fallback for a browser without WebAssembly or a camera API),
Upload (images and video), Training (train, watch, compare, export), Monitor (the cameras
`facemask watch` analyses and their records).
The sidebar (model, detection thresholds, model card) is shared by every page: see ui.py. Its
thresholds belong to the detector preset the page runs: `WEBCAM_PAGES` use "webcam".
"""

import logging

import streamlit as st

import ui

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

ui.skip_keras_clear_session()  # see its docstring: a full gc after every run otherwise
ui.share_uploads_on_copy()  # see its docstring: every run copied every upload otherwise
ui.start_janitor()  # ends the sessions Streamlit keeps past their time, and frees their memory
st.set_page_config(page_title="facemask", page_icon="😷", layout="wide")

browser_page = st.Page(
    "app_pages/browser.py",
    title="Live in your browser",
    icon=":material/devices:",
    url_path="browser",
    default=True,
)
live_page = st.Page(
    "app_pages/live.py", title="Live (on the server)", icon=":material/videocam:", url_path="live"
)
WEBCAM_PAGES = (browser_page, live_page)
page = st.navigation(
    [
        browser_page,
        live_page,
        st.Page("app_pages/upload.py", title="Upload", icon=":material/upload:"),
        st.Page("app_pages/training.py", title="Training", icon=":material/model_training:"),
        st.Page("app_pages/monitor.py", title="Monitor", icon=":material/monitoring:"),
    ]
)
webcam = any(page.url_path == p.url_path for p in WEBCAM_PAGES)
ui.sidebar("webcam" if webcam else "photo")
ui.operator_sidebar()
page.run()
