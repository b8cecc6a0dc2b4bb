"""Heavy computations take turns (shufflenet_viz.heavy_work): while one waits, its page shows its place in line,
kept current, and a button to stop waiting."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st

from shufflenet_viz.heavy_work import lowered_priority, process_queue, waiting_sentence

from .state import PAGE_KEY

# How often a waiting page redraws its place. Each redraw is also where a click stops the waiting run: Streamlit
# ends a script run for a newer request only at its next element call.
REDRAW_S = 0.5
# After "Stop waiting": the page whose heavy work is held, and each held computation by its place on the page.
# A held place computes again when its job changes (new settings) or after "Queue it again".
STOPPED_KEY = "lens_heavy_stopped"


def _stop_waiting(place: str, job: tuple) -> None:
    st.session_state[STOPPED_KEY] = {"page": st.session_state.get(PAGE_KEY), "jobs": {place: job}}


def _queue_again() -> None:
    st.session_state.pop(STOPPED_KEY, None)


def _held(place: str, job: tuple) -> bool:
    # Once the visitor stops waiting, the page's other heavy computations are held too, rather than queued behind.
    stopped = st.session_state.get(STOPPED_KEY)
    if not stopped or stopped["page"] != st.session_state.get(PAGE_KEY):
        return False
    return stopped["jobs"].setdefault(place, job) == job


@contextmanager
def heavy_turn(what: str, place: str, job: tuple) -> Iterator[bool]:
    """Wait for a slot for one heavy computation, showing the place in line; yields True once it may run (at a
    lowered CPU priority; the slot is freed when the block ends, however it ends), or False when the visitor stopped waiting on this page (a
    message and a button to queue again are shown). `place` names the spot on the page (one per computation
    shown at once), `job` what is computed there (a new job at a held place queues afresh)."""
    if _held(place, job):
        st.info(f"You stopped waiting for {what}.")
        st.button("Queue it again", key=f"heavy_again_{place}", on_click=_queue_again)
        yield False
        return
    line = process_queue()
    ticket = line.enter(what)
    try:
        if not ticket.running:
            waiting = st.empty()
            with waiting.container():
                notice = st.empty()
                notice.info(waiting_sentence(what, ticket.place, line.running, line.slots))
                st.button("Stop waiting", key=f"heavy_stop_{place}", on_click=_stop_waiting, args=(place, job))
            while not ticket.wait(REDRAW_S):
                place_now = ticket.place  # 0: promoted since the wait returned; the next wait says so at once
                if place_now:
                    notice.info(waiting_sentence(what, place_now, line.running, line.slots))
            waiting.empty()
        with lowered_priority():
            yield True
    finally:
        ticket.release()
