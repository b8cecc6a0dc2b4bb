"""The frame every page runs in: app.py's page list and shared sidebar."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager

FRAME_SCRIPT = os.path.realpath(Path(__file__).resolve().parent.parent / "app.py")


def ensure_shell() -> None:
    """Make sure this page runs inside app.py (its sidebar and page list); pages call it first.

    A folder named `pages/` beside app.py starts Streamlit in its old folder mode, which lasts until the first
    `st.navigation` call of the process. So on a fresh server, a first request straight to a page's URL (a
    bookmark of /flops, say) would run that page file alone. Leaving that mode, as `st.navigation` itself does,
    and rerunning makes app.py serve the same page (same URL, same page hash) with its sidebar.

    Whether this run is app.py's is read from the call stack, not from the mode: when a class opens the link at
    once on a fresh server, one session's run may leave the mode after another's began in it, and that one would
    otherwise run its page alone.
    """
    if not _inside_frame():
        PagesManager.uses_pages_directory = False
        st.rerun()


def _inside_frame() -> bool:
    frame = sys._getframe(1)
    while frame is not None:
        if os.path.realpath(frame.f_code.co_filename) == FRAME_SCRIPT:
            return True
        frame = frame.f_back
    return False
