"""The heavy-work line: K at once, first come first served, places that move, leaving the line, K from the cores."""

from __future__ import annotations

import os
import threading
import time

import pytest

from shufflenet_viz.heavy_work import (CORES_ENV, SLOTS_ENV, HeavyWorkQueue, heavy_slots, lowered_priority, ordinal,
                                       replica_cores, waiting_sentence)


def test_the_first_k_run_at_once_and_the_rest_wait_in_order():
    line = HeavyWorkQueue(2)
    tickets = [line.enter(f"job {number}") for number in range(5)]
    assert [ticket.running for ticket in tickets] == [True, True, False, False, False]
    assert [ticket.place for ticket in tickets] == [0, 0, 1, 2, 3]
    assert (line.running, line.waiting) == (2, 3)
    tickets[1].release()
    assert [ticket.running for ticket in tickets] == [True, False, True, False, False]
    assert [ticket.place for ticket in tickets[3:]] == [1, 2]


def test_leaving_the_line_moves_those_behind_and_frees_nothing():
    line = HeavyWorkQueue(1)
    running, first, second, third = (line.enter() for _ in range(4))
    second.release()  # stops waiting
    assert (first.place, third.place, line.running) == (1, 2, 1)
    second.release()  # twice is harmless
    assert line.waiting == 2
    running.release()
    assert first.running and third.place == 1


def test_a_ticket_released_in_a_with_block_frees_its_slot_even_on_an_exception():
    line = HeavyWorkQueue(1)
    with pytest.raises(RuntimeError):
        with line.enter():
            raise RuntimeError("stopped by a newer rerun")
    assert line.running == 0 and line.enter().running


def test_a_waiter_wakes_when_the_line_moves_and_when_its_turn_comes():
    line = HeavyWorkQueue(1)
    holder, ahead, waiter = line.enter(), line.enter(), line.enter()
    assert not waiter.wait(0.01)  # nothing moved: the wait times out
    threading.Timer(0.05, ahead.release).start()
    started = time.perf_counter()
    assert not waiter.wait(5)  # woken by the move, still waiting
    assert time.perf_counter() - started < 2 and waiter.place == 1
    threading.Timer(0.05, holder.release).start()
    assert waiter.wait(5) and waiter.running


def test_threads_run_at_most_k_at_once_in_the_order_they_came():
    slots, jobs = 2, 7
    line = HeavyWorkQueue(slots)
    lock = threading.Lock()
    now_running, most_running, started_order = [0], [0], []
    holder = line.enter()  # keeps the line closed until every thread has queued
    queued = threading.Barrier(jobs + 1)

    def job(number: int, entered: threading.Event) -> None:
        ticket = line.enter()
        entered.set()
        queued.wait()
        with ticket:
            while not ticket.wait(1):
                pass
            with lock:
                now_running[0] += 1
                most_running[0] = max(most_running[0], now_running[0])
                started_order.append(number)
            time.sleep(0.02)
            with lock:
                now_running[0] -= 1

    threads = []
    for number in range(jobs):  # one at a time, so that the order of arrival is known
        entered = threading.Event()
        threads.append(threading.Thread(target=job, args=(number, entered)))
        threads[-1].start()
        entered.wait(5)
    queued.wait()
    holder.release()
    for thread in threads:
        thread.join(10)
    assert most_running[0] == slots
    # First come, first served: a job starts at most `slots - 1` places away from where it came (two jobs given
    # their slots at once race to say so).
    assert sorted(started_order) == list(range(jobs))
    assert all(abs(started_order.index(number) - number) < slots for number in range(jobs))
    assert (line.running, line.waiting) == (0, 0)


def test_k_is_half_the_replicas_cores_at_least_one_unless_set():
    assert heavy_slots({CORES_ENV: "8"}) == 4
    assert heavy_slots({CORES_ENV: "2"}) == 1
    assert heavy_slots({CORES_ENV: "1"}) == 1
    assert heavy_slots({CORES_ENV: "8", SLOTS_ENV: "3"}) == 3
    assert heavy_slots({CORES_ENV: "8", SLOTS_ENV: "0"}) == 4  # not a count of slots: ignored
    assert replica_cores({CORES_ENV: "six"}) == replica_cores({}) >= 1


def test_a_queue_without_slots_is_refused():
    with pytest.raises(ValueError, match="at least one slot"):
        HeavyWorkQueue(0)


@pytest.mark.parametrize("number, expected", [(1, "1st"), (2, "2nd"), (3, "3rd"), (4, "4th"), (11, "11th"),
                                              (12, "12th"), (13, "13th"), (21, "21st"), (102, "102nd")])
def test_ordinals(number, expected):
    assert ordinal(number) == expected


def test_the_waiting_sentence_states_the_counts_it_is_given():
    assert waiting_sentence("Occlusion for g=3", 3, 2, 2) == (
        "Occlusion for g=3 waits for a free slot: 2 heavy computations are running on this server (2 at a time); "
        "you are 3rd in line.")
    assert "1 heavy computation is running" in waiting_sentence("IG", 1, 1, 1)


@pytest.mark.skipif(not hasattr(os, "getpriority"), reason="no per-thread priority on this platform")
def test_heavy_work_runs_at_a_lower_priority_in_its_own_thread_only():
    seen = {}

    def heavy() -> None:
        thread = threading.get_native_id()
        seen["before"] = os.getpriority(os.PRIO_PROCESS, thread)
        with lowered_priority(5):
            seen["during"] = os.getpriority(os.PRIO_PROCESS, thread)
            seen["other thread"] = os.getpriority(os.PRIO_PROCESS, main)

    main = threading.get_native_id()
    worker = threading.Thread(target=heavy)
    worker.start()
    worker.join()
    assert seen["during"] == min(19, seen["before"] + 5)
    assert seen["other thread"] == os.getpriority(os.PRIO_PROCESS, main)  # the light pages' threads keep theirs
