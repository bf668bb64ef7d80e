"""facemask dashboard: `streamlit run app.py` (or `make run`).

Pages: Live (webcam, processed on the server), Live in your browser (webcam, processed in the
page), Upload (images and video), Training (train, watch, compare, export).
The sidebar (model, detection thresholds, model card) is shared by every page: see ui.py. Its
thresholds belong to the detector preset the page runs: `WEBCAM_PAGES` use "webcam".
"""

import logging

import streamlit as st

import ui

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

ui.skip_keras_clear_session()  # see its docstring: a full gc after every run otherwise
st.set_page_config(page_title="facemask", page_icon="😷", layout="wide")

live_page = st.Page("app_pages/live.py", title="Live", icon=":material/videocam:", default=True)
browser_page = st.Page(
    "app_pages/browser.py",
    title="Live in your browser",
    icon=":material/devices:",
    url_path="browser",
)
WEBCAM_PAGES = (live_page, browser_page)
page = st.navigation(
    [
        live_page,
        browser_page,
        st.Page("app_pages/upload.py", title="Upload", icon=":material/upload:"),
        st.Page("app_pages/training.py", title="Training", icon=":material/model_training:"),
    ]
)
webcam = any(page.url_path == p.url_path for p in WEBCAM_PAGES)
ui.sidebar("webcam" if webcam else "photo")
ui.operator_sidebar()
page.run()
