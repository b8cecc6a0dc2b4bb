"""FLOPs: multiply-adds and parameters per unit and per op for two configurations, against Table 1 and the clock.
The configurations live in the URL (?count=custom&input=64&left_g=1&left_width=0.5...)."""

import csv
import io

import streamlit as st

import ui
from ui import flops as ui_flops
from ui import url as ui_url
from shufflenet_viz.figures.flops import paper_comparison_rows, unit_table_rows, unit_totals
from shufflenet_viz.flops import describe_timing
from shufflenet_viz.model import GROUPS, WIDTHS

ui.ensure_shell()

CUSTOM, MODELS = "custom", "models"
SOURCES = {CUSTOM: "two configurations I choose", MODELS: "the two models compared (sidebar)"}
SETTINGS = {  # input size -> (label, classes)
    224: ("224x224, 1000 classes (the paper's ImageNet setting, Table 1)", 1000),
    64: ("64x64, 10 classes (this app's CIFAR-10 models)", 10),
}
DEFAULT_GROUPS = (1, 3)


def csv_bytes(rows: list[dict]) -> bytes:
    """Rows of dicts as CSV with a header line."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode()


def config_name(groups: int, width: float, size: int, layout: str) -> str:
    return f"g={groups}, {width:g}x" + ("" if layout == "paper" else f", {layout} layout") + \
        ("" if size == 224 else f", {size}px")


st.title("FLOPs: where the multiply-adds go")
st.markdown("A ShuffleNet unit spends its multiply-adds in two 1x1 group convolutions and one 3x3 depthwise "
            "convolution. More groups make the 1x1 convolutions cheaper, and the network spends the savings on "
            "wider stages, which is why every g lands near 140 MFLOPs (the paper counts multiply-adds).")
ui_url.choice("flops_source", "count", list(SOURCES), CUSTOM, format=SOURCES.get)
source = st.radio("Count", list(SOURCES), format_func=SOURCES.get, horizontal=True, key="flops_source")
settings = {"count": ("flops_source", source)}
if source == MODELS:
    pair = ui.model_pair()
    architectures = [(m.groups, m.model.config.width, m.preprocessing.input_size, len(m.classes),
                      m.model.config.layout) for m in pair]
    st.caption("Each model's own architecture, input size and classes: " +
               "; ".join(f"{m.label}: {a[2]}x{a[2]}, {a[3]:,} classes, {a[4]} layout"
                         for m, a in zip(pair, architectures)) + ".")
else:
    ui_url.choice("flops_setting", "input", list(SETTINGS), 224)
    size = st.radio("Input and classes", list(SETTINGS), format_func=lambda s: SETTINGS[s][0], horizontal=True,
                    key="flops_setting")
    num_classes = SETTINGS[size][1]
    settings["input"] = ("flops_setting", size)
    architectures = []
    for side, column in enumerate(st.columns(2, gap="large")):
        with column:
            prefix = ui.SIDES[side]
            ui_url.choice(f"flops_groups_{side}", f"{prefix}_g", GROUPS, DEFAULT_GROUPS[side])
            groups = st.selectbox("Groups g", GROUPS, key=f"flops_groups_{side}")
            ui_url.choice(f"flops_width_{side}", f"{prefix}_width", WIDTHS, 1.0)
            width = st.selectbox("Width multiplier", WIDTHS, key=f"flops_width_{side}",
                                 format_func=lambda w: f"{w:g}x")
            architectures.append((groups, width, size, num_classes, "paper"))
            settings.update({f"{prefix}_g": (f"flops_groups_{side}", groups),
                             f"{prefix}_width": (f"flops_width_{side}", width)})
ui_url.flag("flops_other_ops", "other_ops", False)
include_other_ops = st.toggle("Also count the operations the paper leaves out (batch norm, ReLU, add, pooling)",
                              key="flops_other_ops")
ui_url.to_url({**settings, "other_ops": ("flops_other_ops", include_other_ops)})
reports = [ui_flops.report(*a) for a in architectures]
names = [config_name(a[0], a[1], a[2], a[4]) for a in architectures]

y_max = 1.08 * max(max(unit_totals(report, include_other_ops)) for report in reports)
for side, (column, report, name, architecture) in enumerate(zip(st.columns(2, gap="large"), reports, names,
                                                                 architectures)):
    with column:
        st.subheader(name)
        paper = report.paper_mflops
        delta = f"{report.total_macs / 1e6 / paper - 1:+.1%} vs Table 1 ({paper} M)" if paper else None
        metric_columns = st.columns(2)
        metric_columns[0].metric("Multiply-adds", f"{report.total_macs / 1e6:.1f} M", delta=delta,
                                 delta_color="off")
        metric_columns[1].metric("Parameters", f"{report.total_params / 1e6:.2f} M")
        st.caption(f"{report.total_macs:,} multiply-adds, {report.total_params:,} parameters at "
                   f"{report.size}x{report.size} with {report.num_classes:,} classes.")
        if include_other_ops:
            st.caption(f"Other operations: {report.total_other_ops / 1e6:.1f} M more.")
        figure = ui_flops.unit_cost(architecture, include_other_ops, y_max, f"Cost per unit, {name}")
        st.plotly_chart(ui.for_screen(figure), theme=None, key=f"flops_units_{side}")
if not include_other_ops:
    st.caption("Shortcut, channel shuffle and the elementwise ops (batch norm, ReLU, add) have no multiply-adds, "
               "so they add nothing to these bars; switch on the toggle above to count them too.")

st.header("Against the paper's Table 1")
table1 = paper_comparison_rows({g: ui_flops.report(g, 1.0, 224, 1000) for g in GROUPS})
st.dataframe(table1, hide_index=True, column_config={
    "groups": "g", "computed_mflops": "computed (MFLOPs)", "paper_mflops": "Table 1 (MFLOPs)",
    "difference_percent": st.column_config.NumberColumn("difference", format="%+.2f%%"),
    "params_millions": "parameters (M)"})
st.caption("ShuffleNet 1x at 224x224 with 1000 classes, multiply-adds of convolutions and the classifier.")

st.header("Parameters per unit")
st.plotly_chart(ui.for_screen(ui_flops.params(tuple(architectures), tuple(names))), theme=None,
                key="flops_params")

st.header("Multiply-adds against the clock")
st.markdown(f"Measured on this server's CPU with one thread, when this page first showed the architecture (kept "
            f"until the server restarts; other work on the CPU at that moment shows up as noise): a whole forward "
            f"pass, and every unit timed alone on its own input (median of {ui_flops.TIMING_REPEATS} runs each, "
            f"a random picture: time does not depend on the weights). Where the green and red bars of a unit "
            f"differ, its share of the multiply-adds mispredicts its share of the time.")


def clock_section(jobs: list) -> None:
    """The measured shares, times and tables; while a timing is still running, a note (the fragment polls)."""
    if not all(job.done() for job in jobs):
        st.info("Timing the network and every unit on this server's CPU in the background; the figures appear "
                "here when it is done (a few seconds).")
        return
    if fragment_polls:
        st.rerun()  # all done: run the page once more, without polling
    for side, (column, report, name, job, architecture) in enumerate(
            zip(st.columns(2, gap="large"), reports, names, jobs, architectures)):
        with column:
            if job.exception() is not None:
                st.error(f"Timing {name} failed: {job.exception()}")
                continue
            timing = job.result()
            figure = ui_flops.shares(architecture, tuple(timing.units.items()), f"{name}: share of MACs and of time")
            st.plotly_chart(ui.for_screen(figure), theme=None, key=f"flops_share_{side}")
            st.metric("Whole forward pass", f"{timing.forward * 1000:.1f} ms")
            st.caption(describe_timing(report, timing))
            rows = unit_table_rows(report, timing.units)
            st.dataframe(rows, hide_index=True, key=f"flops_table_{side}")
            stem = f"shufflenet_g{report.groups}_w{report.width:g}_{architecture[4]}_{report.size}px"
            st.download_button("Units as CSV (with times)", csv_bytes(rows), f"{stem}_units.csv", "text/csv",
                               key=f"flops_units_csv_{side}")
            st.download_button("Every op as CSV", csv_bytes(report.rows()), f"{stem}_ops.csv", "text/csv",
                               key=f"flops_ops_csv_{side}")


jobs = [ui_flops.timing(*a) for a in architectures]
fragment_polls = not all(job.done() for job in jobs)
st.fragment(clock_section, run_every=1.0 if fragment_polls else None)(jobs)
