"""Process-wide torch settings for serving many sessions on a small machine."""

from __future__ import annotations

import os

import torch

SERVING_THREADS = 1  # intra-op threads per computation; see configure_torch_threads for why one
# A deployment that gives each replica several CPUs sets this (serving/: the CPUs shared out among replicas).
THREADS_ENV = "SHUFFLENET_LENS_TORCH_THREADS"

_interop_configured = False


def configure_torch_threads(threads: int | None = None) -> int:
    """Set torch's intra-op threads (default: $SHUFFLENET_LENS_TORCH_THREADS where it is a whole number of at
    least 1, else SERVING_THREADS = 1) and, once per process, one inter-op thread. Returns the count.

    Why one: Streamlit runs every session's script on its own thread, and torch gives each calling
    thread its own OpenMP team of `num_threads` workers, so with 2 threads eight sessions would run 16
    busy workers on 2 cores. Our models are small (64x64 inputs, a few to ~40 MFLOPs per image): one
    session gains little from a second thread even on an idle machine, and on a busy one the spinning
    teams collide. Measured on the 2-core dev machine under load: a g=3 forward pass took 32 ms with 1
    thread and 535 ms with 2; eight sessions' work (predictions, feature maps, attributions on both
    models) took 14 s one after another and 12.5 s all at once with 1 thread, 256 s and 16 s with 2.
    Parallelism comes from the sessions instead, and a session's results do not depend on how many
    others are running.
    """
    global _interop_configured
    threads = threads or _threads_from_environment() or SERVING_THREADS
    torch.set_num_threads(threads)
    if not _interop_configured:
        try:
            torch.set_num_interop_threads(1)  # allowed only before the first inter-op parallel work
        except RuntimeError:
            pass  # already fixed by earlier work in this process; the intra-op setting above still applies
        _interop_configured = True
    return threads


def _threads_from_environment() -> int | None:
    raw = os.environ.get(THREADS_ENV, "").strip()
    return int(raw) if raw.isdigit() and int(raw) >= 1 else None
