"""FLOPs: multiply-adds and parameters per unit and per op for two configurations, against Table 1 and the clock."""

import csv
import io

import streamlit as st

import ui
from shufflenet_viz.figures.flops import paper_comparison_rows, unit_table_rows, unit_totals
from shufflenet_viz.model import GROUPS, WIDTHS

ui.ensure_shell()

SETTINGS = {
    "224x224, 1000 classes (the paper's ImageNet setting, Table 1)": (224, 1000),
    "64x64, 10 classes (this app's CIFAR-10 models)": (64, 10),
}
DEFAULT_GROUPS = (1, 3)


def csv_bytes(rows: list[dict]) -> bytes:
    """Rows of dicts as CSV with a header line."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode()


def config_name(groups: int, width: float) -> str:
    return f"g={groups}, {width:g}x"


st.title("FLOPs: where the multiply-adds go")
st.markdown("A ShuffleNet unit spends its multiply-adds in two 1x1 group convolutions and one 3x3 depthwise "
            "convolution. More groups make the 1x1 convolutions cheaper, and the network spends the savings on "
            "wider stages, which is why every g lands near 140 MFLOPs (the paper counts multiply-adds).")
setting = st.radio("Input and classes", list(SETTINGS), horizontal=True, key="flops_setting")
size, num_classes = SETTINGS[setting]
include_other_ops = st.toggle("Also count the operations the paper leaves out (batch norm, ReLU, add, pooling)",
                              key="flops_other_ops")

configs = []
for side, column in enumerate(st.columns(2, gap="large")):
    with column:
        groups = st.selectbox("Groups g", GROUPS, index=GROUPS.index(DEFAULT_GROUPS[side]),
                              key=f"flops_groups_{side}")
        width = st.selectbox("Width multiplier", WIDTHS, index=WIDTHS.index(1.0), key=f"flops_width_{side}",
                             format_func=lambda w: f"{w:g}x")
        configs.append((groups, width))
reports = [ui.flop_report_cached(g, w, size, num_classes) for g, w in configs]
names = [config_name(g, w) for g, w in configs]

y_max = 1.08 * max(max(unit_totals(report, include_other_ops)) for report in reports)
for side, (column, report, name) in enumerate(zip(st.columns(2, gap="large"), reports, names)):
    with column:
        st.subheader(name)
        paper = report.paper_mflops
        delta = f"{report.total_macs / 1e6 / paper - 1:+.1%} vs Table 1 ({paper} M)" if paper else None
        metric_columns = st.columns(2)
        metric_columns[0].metric("Multiply-adds", f"{report.total_macs / 1e6:.1f} M", delta=delta,
                                 delta_color="off")
        metric_columns[1].metric("Parameters", f"{report.total_params / 1e6:.2f} M")
        if include_other_ops:
            st.caption(f"Other operations: {report.total_other_ops / 1e6:.1f} M more.")
        figure = ui.unit_cost_figure_cached(report.groups, report.width, size, num_classes, include_other_ops,
                                            y_max, f"Cost per unit, {name}")
        st.plotly_chart(figure, theme=None, key=f"flops_units_{side}")
if not include_other_ops:
    st.caption("Shortcut, channel shuffle and the elementwise ops (batch norm, ReLU, add) have no multiply-adds, "
               "so they add nothing to these bars; switch on the toggle above to count them too.")

st.header("Against the paper's Table 1")
table1 = paper_comparison_rows({g: ui.flop_report_cached(g, 1.0, 224, 1000) for g in GROUPS})
st.dataframe(table1, hide_index=True, column_config={
    "groups": "g", "computed_mflops": "computed (MFLOPs)", "paper_mflops": "Table 1 (MFLOPs)",
    "difference_percent": st.column_config.NumberColumn("difference", format="%+.2f%%"),
    "params_millions": "parameters (M)"})
st.caption("ShuffleNet 1x at 224x224 with 1000 classes, multiply-adds of convolutions and the classifier.")

st.header("Parameters per unit")
st.plotly_chart(ui.params_figure_cached(tuple(configs), size, num_classes, tuple(names)), theme=None,
                key="flops_params")

st.header("Multiply-adds against the clock")
st.markdown("The same units timed on this server's CPU (median of 5 runs, one image). Where the green and red "
            "bars differ, FLOPs mispredict time: depthwise convolutions, channel shuffle and memory traffic "
            "cost time without many multiply-adds.")
timings = [ui.unit_seconds_cached(g, w, size, num_classes) for g, w in configs]
for side, (column, report, name, seconds) in enumerate(zip(st.columns(2, gap="large"), reports, names, timings)):
    with column:
        figure = ui.share_figure_cached(report.groups, report.width, size, num_classes, tuple(seconds.items()),
                                        f"{name}: share of MACs and of time")
        st.plotly_chart(figure, theme=None, key=f"flops_share_{side}")
        st.caption(f"Measured: {sum(seconds.values()) * 1000:.1f} ms for the whole network, once per server start; "
                   f"other work on this CPU at that moment shows up as noise.")
        rows = unit_table_rows(report, seconds)
        st.dataframe(rows, hide_index=True, key=f"flops_table_{side}")
        stem = f"shufflenet_g{report.groups}_w{report.width:g}_{report.size}px"
        st.download_button("Units as CSV (with times)", csv_bytes(rows), f"{stem}_units.csv", "text/csv",
                           key=f"flops_units_csv_{side}")
        st.download_button("Every op as CSV", csv_bytes(report.rows()), f"{stem}_ops.csv", "text/csv",
                           key=f"flops_ops_csv_{side}")
