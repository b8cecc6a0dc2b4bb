"""Fair turns for heavy computations: at most K at once in a server process, the others wait in line, first come
first served, each knowing its place and free to leave the line.

Heavy: a computation of many model evaluations on one picture (Integrated Gradients, SmoothGrad, Occlusion,
per-group Layer IG, the Experiments page's influence measurement). Saliency and Grad-CAM are one forward and one
backward pass, the cost of a prediction, and take no turn, nor do predictions, feature maps and the teaching
pages: they never wait behind heavy work. Measured on the 2-core dev machine, CIFAR-10 g=3 at 64x64, one torch
thread: a prediction 5 ms, Saliency 9 ms, Grad-CAM 4 ms; Integrated Gradients (50 steps) 106 ms, SmoothGrad 47 ms,
Occlusion 192 ms, and these grow with their steps, samples and windows (IG at 1,000 steps: about 2 s).

K (`heavy_slots`): half the cores the process has, at least one, so that heavy work leaves the other half to the
light pages; $SHUFFLENET_LENS_HEAVY_SLOTS sets it outright. The cores are those the deployment gives a replica
($SHUFFLENET_LENS_TORCH_THREADS, see `runtime`), else those the process may run on.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

SLOTS_ENV = "SHUFFLENET_LENS_HEAVY_SLOTS"
# While it computes, a heavy computation's thread runs this much nicer than the light pages' threads: where the
# cores are all busy (other replicas' heavy work, other programs), the kernel gives a prediction's thread about
# nine tenths of a shared core rather than half.
HEAVY_NICENESS = 10
# The attribution kinds that take a turn (the Attributions page's method names, "groups" for per-group Layer IG).
HEAVY_ATTRIBUTIONS = frozenset({"integrated_gradients", "smoothgrad", "occlusion", "groups"})
CORES_ENV = "SHUFFLENET_LENS_TORCH_THREADS"  # the replica's share of the cores, set by the deployment


def _whole_number(raw: str | None) -> int | None:
    raw = (raw or "").strip()
    return int(raw) if raw.isdigit() and int(raw) >= 1 else None


def replica_cores(environ: dict | None = None) -> int:
    """The cores this server process has: the deployment's share ($SHUFFLENET_LENS_TORCH_THREADS), else the CPUs
    the process may run on."""
    environ = os.environ if environ is None else environ
    given = _whole_number(environ.get(CORES_ENV))
    if given:
        return given
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def heavy_slots(environ: dict | None = None) -> int:
    """K: how many heavy computations run at once ($SHUFFLENET_LENS_HEAVY_SLOTS, else half the cores, >= 1)."""
    environ = os.environ if environ is None else environ
    return _whole_number(environ.get(SLOTS_ENV)) or max(1, replica_cores(environ) // 2)


class Ticket:
    """One computation's turn: waiting (`place` >= 1 in line), running (`running`), or done (`released`).
    Release it when the computation ends or is abandoned (a context manager does)."""

    def __init__(self, line: HeavyWorkQueue, number: int, what: str):
        self._line = line
        self.number = number
        self.what = what
        self.running = False
        self.released = False

    @property
    def place(self) -> int:
        """1 for the first in line, 2 for the next...; 0 once running or released."""
        return self._line.place_of(self)

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until this ticket runs, or the line moves, or `timeout_s` passes; True once it runs."""
        return self._line.wait_for_turn(self, timeout_s)

    def release(self) -> None:
        """Leave the line, or free the slot: idempotent."""
        self._line.release(self)

    def __enter__(self) -> Ticket:
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()


class HeavyWorkQueue:
    """K slots, and a first-in-first-out line for the computations that find them all taken (thread-safe)."""

    def __init__(self, slots: int):
        if slots < 1:
            raise ValueError(f"a queue needs at least one slot, not {slots}")
        self.slots = slots
        self._changed = threading.Condition()
        self._line: deque[Ticket] = deque()
        self._running: set[Ticket] = set()
        self._numbers = itertools.count(1)
        self._moves = 0  # counts every change of the line, so that a waiter wakes to redraw its place

    @property
    def running(self) -> int:
        """How many computations hold a slot now."""
        with self._changed:
            return len(self._running)

    @property
    def waiting(self) -> int:
        """How many computations wait in line now."""
        with self._changed:
            return len(self._line)

    def enter(self, what: str = "") -> Ticket:
        """A ticket for one computation: running at once if a slot is free and nobody waits, else last in line."""
        with self._changed:
            ticket = Ticket(self, next(self._numbers), what)
            self._line.append(ticket)
            self._promote()
            return ticket

    def place_of(self, ticket: Ticket) -> int:
        """The ticket's place in line (1 = next), 0 when it is not waiting."""
        with self._changed:
            try:
                return self._line.index(ticket) + 1
            except ValueError:
                return 0

    def wait_for_turn(self, ticket: Ticket, timeout_s: float | None) -> bool:
        """See Ticket.wait."""
        with self._changed:
            if ticket.running or ticket.released:
                return ticket.running
            moves = self._moves
            self._changed.wait_for(lambda: ticket.running or ticket.released or self._moves != moves, timeout_s)
            return ticket.running

    def release(self, ticket: Ticket) -> None:
        """See Ticket.release."""
        with self._changed:
            if ticket.released:
                return
            ticket.released = True
            if ticket.running:
                ticket.running = False
                self._running.discard(ticket)
            else:
                self._line.remove(ticket)
            self._promote()

    def _promote(self) -> None:
        # Called with the lock held: hand free slots to the head of the line, then wake every waiter (the places
        # of all of them moved).
        while self._line and len(self._running) < self.slots:
            ticket = self._line.popleft()
            ticket.running = True
            self._running.add(ticket)
        self._moves += 1
        self._changed.notify_all()


def ordinal(number: int) -> str:
    """1st, 2nd, 3rd, 4th, ..., 11th, 12th, 13th, 21st."""
    suffix = "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


def waiting_sentence(what: str, place: int, running: int, slots: int) -> str:
    """What a waiting computation's page says: how busy the server is and the visitor's place in line."""
    busy = (f"{running} heavy computation{'s are' if running != 1 else ' is'} running on this server "
            f"({slots} at a time)")
    return f"{what} waits for a free slot: {busy}; you are {ordinal(place)} in line."


@contextmanager
def lowered_priority(niceness: int = HEAVY_NICENESS) -> Iterator[None]:
    """Run the block with the calling thread's CPU priority lowered by `niceness` (Linux: each thread has its
    own), then raise it back where the process may (an unprivileged one may not: the thread then stays nicer
    until it ends, and Streamlit ends a script run's thread when the run is over). Where the platform has no
    per-thread priority, the block runs as it is."""
    thread = threading.get_native_id()
    try:
        before = os.getpriority(os.PRIO_PROCESS, thread)
        os.setpriority(os.PRIO_PROCESS, thread, min(19, before + niceness))
    except (AttributeError, OSError):
        yield
        return
    try:
        yield
    finally:
        try:
            os.setpriority(os.PRIO_PROCESS, thread, before)
        except OSError:
            pass


_process_queue: HeavyWorkQueue | None = None
_process_queue_lock = threading.Lock()


def process_queue() -> HeavyWorkQueue:
    """The one queue of this server process, with `heavy_slots()` slots (made on first use)."""
    global _process_queue
    with _process_queue_lock:
        if _process_queue is None:
            _process_queue = HeavyWorkQueue(heavy_slots())
        return _process_queue
