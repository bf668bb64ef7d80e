"""facemask dashboard: `streamlit run app.py` (or `make run`).

Pages: Live (webcam, processed on the server), Live in your browser (webcam, processed in the
page), Upload (images and video), Training (train, watch, compare, export).
The sidebar (model, detection thresholds, model card) is shared by every page: see ui.py.
"""

import logging

import streamlit as st

import ui

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

st.set_page_config(page_title="facemask", page_icon="😷", layout="wide")

page = st.navigation(
    [
        st.Page("app_pages/live.py", title="Live", icon=":material/videocam:", default=True),
        st.Page(
            "app_pages/browser.py",
            title="Live in your browser",
            icon=":material/devices:",
            url_path="browser",
        ),
        st.Page("app_pages/upload.py", title="Upload", icon=":material/upload:"),
        st.Page("app_pages/training.py", title="Training", icon=":material/model_training:"),
    ]
)
ui.sidebar()
page.run()
