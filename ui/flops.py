"""Cached reports, timings and figures of the FLOPs page (kept out of the page script, which Streamlit
re-executes on every run). An architecture is (groups, width, input size, classes, layout)."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

import streamlit as st

from shufflenet_viz.figures.classify import PAIR_COLOURS
from shufflenet_viz.figures.flops import params_figure, share_figure, unit_cost_figure
from shufflenet_viz.flops import FlopReport, NetworkTiming, flop_report, time_network
from shufflenet_viz.model import build_model

TIMING_REPEATS = 3
# One timing at a time, off the script thread: the page shows its counts at once and the clock when it is ready.
# One worker, so that two timings never share the CPU with each other (which would skew both).
_timer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="flops-timing")


# Bounded: 64 reports (5 groups x 5 widths x 2 settings = 50, plus the loaded models'); a few hundred records each.
@st.cache_data(max_entries=64, show_spinner=False)
def report(groups: int, width: float, size: int, num_classes: int, layout: str = "paper") -> FlopReport:
    """`flop_report`, once per architecture."""
    return flop_report(groups, width, size, num_classes, layout)


def _time(groups: int, width: float, size: int, num_classes: int, layout: str) -> NetworkTiming:
    # Timing does not depend on the weights, so a freshly built model of the architecture is timed.
    model = build_model(groups, width, num_classes, layout=layout).eval()
    return time_network(model, size, TIMING_REPEATS)


# Bounded: 20 timings of 3 x 18 numbers each. Once per architecture and server process: the numbers describe this
# server at that moment (other sessions share its CPU).
@st.cache_resource(max_entries=20, show_spinner=False)
def timing(groups: int, width: float, size: int, num_classes: int, layout: str = "paper") -> Future:
    """`time_network` of this architecture on this server's CPU, started in the background: a Future whose
    result is the `NetworkTiming`."""
    return _timer.submit(_time, groups, width, size, num_classes, layout)


# Figures keyed by everything they show, built once and only read afterwards.
# Bounded: 64 + 32 + 64 figures of 18 bars each, a few tens of KB apiece.
@st.cache_resource(max_entries=64, show_spinner=False)
def unit_cost(architecture: tuple, include_other_ops: bool, y_max: float, title: str):
    """`unit_cost_figure` of one architecture."""
    return unit_cost_figure(report(*architecture), include_other_ops, title, y_max)


@st.cache_resource(max_entries=32, show_spinner=False)
def params(architectures: tuple[tuple, ...], names: tuple[str, ...]):
    """`params_figure` of the architectures, coloured by side."""
    return params_figure([report(*a) for a in architectures], names, PAIR_COLOURS)


@st.cache_resource(max_entries=64, show_spinner=False)
def shares(architecture: tuple, seconds: tuple[tuple[str, float], ...], title: str):
    """`share_figure` of one architecture with these measured seconds per unit."""
    return share_figure(report(*architecture), dict(seconds), title)
