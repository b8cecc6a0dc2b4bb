"""Benches print only their figures. Imported by them, not run: `quiet_logs()` before anything imports Streamlit's
caches or AppTest, whose log lines (no runtime for a cache outside a server, a missing ScriptRunContext in a
thread that is not a script run) are expected outside `streamlit run` and say nothing about speed."""

from __future__ import annotations

import logging
import warnings


def quiet_logs() -> None:
    """Drop log records below ERROR from every logger, and Python's warnings.

    Process-wide (`logging.disable`) rather than per logger: Streamlit sets its own loggers' levels again from
    its config whenever the config is parsed (AppTest parses it), which would undo a level set here.
    """
    logging.disable(logging.WARNING)
    warnings.simplefilter("ignore")
