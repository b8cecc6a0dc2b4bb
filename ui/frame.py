"""The frame every page runs in: app.py's page list and shared sidebar."""

from __future__ import annotations

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager


def ensure_shell() -> None:
    """Make sure this page runs inside app.py (its sidebar and page list); pages call it first.

    A folder named `pages/` beside app.py starts Streamlit in its old folder mode, which lasts until the first
    `st.navigation` call of the process. So on a fresh server, a first request straight to a page's URL (a
    bookmark of /flops, say) would run that page file alone. Leaving that mode, as `st.navigation` itself does,
    and rerunning makes app.py serve the same page (same URL, same page hash) with its sidebar.
    """
    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()
