"""Cached reports, timings and figures of the FLOPs page, and the sections it draws from them (kept out of the page
script, which Streamlit re-executes on every run). An architecture is (groups, width, input size, classes, layout)."""

from __future__ import annotations

import csv
import io
from concurrent.futures import Future, ThreadPoolExecutor

import streamlit as st

from shufflenet_viz.figures.classify import PAIR_COLOURS
from shufflenet_viz.figures.flops import params_figure, share_figure, unit_cost_figure, unit_table_rows
from shufflenet_viz.flops import FlopReport, NetworkTiming, describe_timing, flop_report, time_network
from shufflenet_viz.model import build_model

from .display import show, side_by_side

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


def config_name(architecture: tuple) -> str:
    """An architecture as a heading: "g=3, 1x", with the layout and input size where they differ from the paper's."""
    groups, width, size, _, layout = architecture
    return f"g={groups}, {width:g}x" + ("" if layout == "paper" else f", {layout} layout") + \
        ("" if size == 224 else f", {size}px")


def csv_bytes(rows: list[dict]) -> bytes:
    """Rows of dicts as CSV with a header line."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode()


def counts(architecture: tuple, include_other_ops: bool, y_max: float, side: int) -> None:
    """One configuration's totals against Table 1 and its cost per unit (bars up to `y_max`, shared by both)."""
    name = config_name(architecture)
    counted = report(*architecture)
    st.subheader(name)
    paper = counted.paper_mflops
    delta = f"{counted.total_macs / 1e6 / paper - 1:+.1%} vs Table 1 ({paper} M)" if paper else None
    metric_columns = st.columns(2)
    metric_columns[0].metric("Multiply-adds", f"{counted.total_macs / 1e6:.1f} M", delta=delta, delta_color="off")
    metric_columns[1].metric("Parameters", f"{counted.total_params / 1e6:.2f} M")
    st.caption(f"{counted.total_macs:,} multiply-adds, {counted.total_params:,} parameters at "
               f"{counted.size}x{counted.size} with {counted.num_classes:,} classes.")
    if include_other_ops:
        st.caption(f"Other operations: {counted.total_other_ops / 1e6:.1f} M more.")
    show(unit_cost(architecture, include_other_ops, y_max, f"Cost per unit, {name}"), f"flops_units_{side}")


def clock(architectures: list[tuple], polling: bool) -> None:
    """The measured shares, times and tables of each architecture; while a timing is still running, a note.
    `polling` says whether this runs as a fragment that reruns itself until the timings are done."""
    jobs = [timing(*a) for a in architectures]
    if not all(job.done() for job in jobs):
        st.info("Timing the network and every unit on this server's CPU in the background; the figures appear "
                "here when it is done (a few seconds).")
        return
    if polling:
        st.rerun()  # all done: run the page once more, without polling
    for side, (job, architecture) in side_by_side(list(zip(jobs, architectures))):
        _timed(architecture, job, side)


def _timed(architecture: tuple, job: Future, side: int) -> None:
    name = config_name(architecture)
    if job.exception() is not None:
        st.error(f"Timing {name} failed: {job.exception()}")
        return
    counted, measured = report(*architecture), job.result()
    show(shares(architecture, tuple(measured.units.items()), f"{name}: share of MACs and of time"),
         f"flops_share_{side}")
    st.metric("Whole forward pass", f"{measured.forward * 1000:.1f} ms")
    st.caption(describe_timing(counted, measured))
    rows = unit_table_rows(counted, measured.units)
    st.dataframe(rows, hide_index=True, key=f"flops_table_{side}")
    stem = f"shufflenet_g{counted.groups}_w{counted.width:g}_{architecture[4]}_{counted.size}px"
    st.download_button("Units as CSV (with times)", csv_bytes(rows), f"{stem}_units.csv", "text/csv",
                       key=f"flops_units_csv_{side}")
    st.download_button("Every op as CSV", csv_bytes(counted.rows()), f"{stem}_ops.csv", "text/csv",
                       key=f"flops_ops_csv_{side}")
