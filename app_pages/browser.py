"""Live in your browser (the landing page): the webcam never leaves the device; the models run
in the page.

The server only serves static files (the component's build, the detector model, the chosen
model's TF.js export), which browsers keep; see browser_live/ and facemask/browser.py.
"""

import streamlit as st

import browser_live
import ui
from facemask import browser
from facemask.classify import read_card

st.title("Live in your browser")
st.caption(
    "Press **Start** and allow the camera. Face detection (BlazeFace) and the mask classifier "
    "run inside this page (TF.js, WebAssembly): **the video never leaves your device**, and no "
    "WebRTC connection or TURN server is needed. Green box: mask; red: none; amber: worn wrong "
    "(the legend on the video lists the chosen model's labels)."
)
st.page_link(
    "app_pages/live.py",
    label="Use the server-side Live page instead when this page says your browser cannot run "
    "WebAssembly or offers no camera: it works in any browser, but each viewer costs the server "
    "CPU and needs WebRTC (a TURN server behind NAT).",
    icon=":material/videocam:",
)

model_name = ui.require_model()
chosen = ui.settings()
if not browser_live.is_built():
    st.error(
        "The in-browser page has not been built: run `make run` (or `make browser`) in the "
        "repository, which bundles it with npm, then reload this page."
    )
    st.stop()
try:
    model_dir = ui.get_store().resolve_model(model_name)
    card = read_card(model_dir)
    tfjs_dir = browser.browser_export(model_dir)
    model_url = browser_live.serve_model(tfjs_dir)
    settings = browser.component_args(card, chosen.min_score, chosen.min_face)
except Exception as exc:
    ui.show_error(exc)
    st.stop()

browser_live.live_in_browser(model_url, settings, key="browser_live")
st.caption(
    f"Model: **{model_name}** ({browser.export_bytes(tfjs_dir) / 1e6:.1f} MB TF.js download, "
    f"`{tfjs_dir.name}/`) · detector score ≥ {chosen.min_score:.2f} · faces ≥ "
    f"{chosen.min_face} px. What it costs: your device's CPU (or GPU), and a one-time download "
    "of the models (cached by the browser); the server's CPU stays idle."
)
