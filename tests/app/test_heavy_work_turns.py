"""Heavy work on the Attributions page takes its turn: while every slot is taken the page waits and then computes,
and once the student stops waiting, the page's heavy computations are held until "Queue it again". (Places in
line shown while waiting, and several students at once: tests/system/test_heavy_work_queue.py.)"""

from __future__ import annotations

import threading
import time

from shufflenet_viz.heavy_work import process_queue
from ui.heavy_work import STOPPED_KEY
from ui.state import PAGE_KEY

CONVERGENCE = "of score(picture) - score(baseline)"
PICTURE = "horse.jpg"
HELD_S = 1.0  # how long the test keeps every slot taken


def convergence_lines(at) -> list[str]:
    return [caption.value for caption in at.caption if CONVERGENCE in caption.value]


def test_a_page_waits_for_a_taken_slot_then_computes(app_on_page, sample_image_paths):
    at = app_on_page("pages/attributions.py", sample_image_paths["dog.jpg"])
    line = process_queue()
    held = [line.enter("another student's computation") for _ in range(line.slots)]  # every slot taken
    release = threading.Timer(HELD_S, lambda: [ticket.release() for ticket in held])
    try:
        release.start()
        started = time.monotonic()
        at.slider(key="steps").set_value(60).run()  # a result nobody has: it must take a turn
        waited = time.monotonic() - started
    finally:
        release.join()
        for ticket in held:
            ticket.release()
    assert not at.exception
    assert waited >= HELD_S  # it computed only once the slots were free
    assert len([line for line in convergence_lines(at) if "(60 steps)" in line]) == 2
    assert (line.running, line.waiting) == (0, 0)


def test_after_stop_waiting_the_page_holds_its_heavy_work_until_queued_again(app_on_page, sample_image_paths):
    at = app_on_page("pages/attributions.py", sample_image_paths[PICTURE])
    # What the "Stop waiting" button's callback leaves: this page's heavy work held.
    at.session_state[STOPPED_KEY] = {"page": at.session_state[PAGE_KEY], "jobs": {}}
    at.slider(key="steps").set_value(70).run()
    assert not at.exception
    stopped = [info.value for info in at.main.info if info.value.startswith("You stopped waiting for")]
    assert len(stopped) == 2 and all("Integrated Gradients for" in text for text in stopped), stopped
    assert not [line for line in convergence_lines(at) if "(70 steps)" in line]

    at.button(key="heavy_again_integrated_gradients_0").click().run()
    assert not at.exception
    assert not [info for info in at.main.info if info.value.startswith("You stopped waiting for")]
    assert len([line for line in convergence_lines(at) if "(70 steps)" in line]) == 2

    # New settings at a held place are a new computation: they queue without asking.
    at.session_state[STOPPED_KEY] = {"page": at.session_state[PAGE_KEY],
                                     "jobs": {"integrated_gradients_0": ("an earlier job",)}}
    at.slider(key="steps").set_value(80).run()
    stopped = [info.value for info in at.main.info if info.value.startswith("You stopped waiting for")]
    assert len(stopped) == 1  # the right model's place was not held yet: held now, with the rest of the page
    assert len([line for line in convergence_lines(at) if "(80 steps)" in line]) == 1
