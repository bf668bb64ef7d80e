"""The dashboard's server: `streamlit run serve.py` (what `make run` starts).

The app itself is app.py (`streamlit run app.py` also works); this adds what a server for many
visitors needs: files whose URL changes with their content (Streamlit's bundles, the in-browser
page's build and models) compressed once and cached by browsers for good (browser_live.serving),
so a repeat visit downloads almost nothing; and an old bookmark (/browser) finds its page.
"""

import streamlit as st
from starlette.middleware import Middleware

from browser_live.serving import AssetMiddleware, MovedPages

app = st.App("app.py", middleware=[Middleware(MovedPages), Middleware(AssetMiddleware)])
