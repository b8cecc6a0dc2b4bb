"""Process-wide torch settings for serving many sessions on a small machine."""

from __future__ import annotations

import os

import torch

_configured = False


def configure_torch_threads(threads: int | None = None) -> int:
    """Give torch a fixed, small intra-op pool so concurrent sessions share the cores without
    oversubscribing them (each request already runs on its own Streamlit thread). Returns the count."""
    global _configured
    threads = threads or max(1, min(2, os.cpu_count() or 1))
    torch.set_num_threads(threads)
    if not _configured:
        try:
            torch.set_num_interop_threads(1)  # may only be set once per process, before any parallel work
        except RuntimeError:
            pass
        _configured = True
    return threads
