"""FLOPs: multiply-adds and parameters per unit and per op for two configurations, against Table 1 and the clock.
The configurations live in the URL (?count=...&input=...&left_g=1&left_width=0.5x...)."""

import streamlit as st

import ui
from ui import flops as ui_flops
from ui.display import show
from ui.url import bound_choice, bound_flag
from shufflenet_viz.figures.flops import paper_comparison_rows, unit_totals
from shufflenet_viz.model import GROUPS, WIDTHS

ui.ensure_shell()

CUSTOM, MODELS = "custom", "models"
SOURCES = {CUSTOM: "two configurations I choose", MODELS: "the two models compared (sidebar)"}
SETTINGS = {  # input size -> (label, classes)
    224: ("224x224, 1000 classes (the paper's ImageNet setting, Table 1)", 1000),
    64: ("64x64, 10 classes (this app's CIFAR-10 models)", 10),
}
DEFAULT_GROUPS = (1, 3)

st.title("FLOPs: where the multiply-adds go")
st.markdown("A ShuffleNet unit spends its multiply-adds in two 1x1 group convolutions and one 3x3 depthwise "
            "convolution. More groups make the 1x1 convolutions cheaper, and the network spends the savings on "
            "wider stages, which is why every g lands near 140 MFLOPs (the paper counts multiply-adds).")
source = bound_choice(st.radio, "Count", SOURCES, key="count", format_func=SOURCES.get, horizontal=True)
if source == MODELS:
    pair = ui.model_pair()
    architectures = [(m.groups, m.model.config.width, m.preprocessing.input_size, len(m.classes),
                      m.model.config.layout) for m in pair]
    st.caption("Each model's own architecture, input size and classes: " +
               "; ".join(f"{m.label}: {a[2]}x{a[2]}, {a[3]:,} classes, {a[4]} layout"
                         for m, a in zip(pair, architectures)) + ".")
else:
    size = bound_choice(st.radio, "Input and classes", SETTINGS, key="input", format_func=lambda s: SETTINGS[s][0],
                        horizontal=True)
    architectures = []
    for side, default_groups, column in zip(ui.SIDES, DEFAULT_GROUPS, st.columns(2, gap="large")):
        with column:
            groups = bound_choice(st.selectbox, "Groups g", GROUPS, key=f"{side}_g", default=default_groups)
            width = bound_choice(st.selectbox, "Width multiplier", WIDTHS, key=f"{side}_width", default=1.0,
                                 format_func=lambda w: f"{w:g}x")
        architectures.append((groups, width, size, SETTINGS[size][1], "paper"))
include_other_ops = bound_flag(st.toggle, "Also count the operations the paper leaves out (batch norm, ReLU, add, "
                                          "pooling)", key="other_ops")

y_max = 1.08 * max(max(unit_totals(ui_flops.report(*a), include_other_ops)) for a in architectures)
for side, architecture in ui.side_by_side(architectures):
    ui_flops.counts(architecture, include_other_ops, y_max, side)
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
show(ui_flops.params(tuple(architectures), tuple(ui_flops.config_name(a) for a in architectures)), "flops_params")

st.header("Multiply-adds against the clock")
st.markdown(f"Measured on this server's CPU with one thread, when this page first showed the architecture (kept "
            f"until the server restarts; other work on the CPU at that moment shows up as noise): a whole forward "
            f"pass, and every unit timed alone on its own input (median of {ui_flops.TIMING_REPEATS} runs each, "
            f"a random picture: time does not depend on the weights). Where the green and red bars of a unit "
            f"differ, its share of the multiply-adds mispredicts its share of the time.")
# While a timing runs, the section polls as a fragment of its own; once all are done it is drawn once, still.
polling = not all(ui_flops.timing(*a).done() for a in architectures)
st.fragment(ui_flops.clock, run_every=1.0 if polling else None)(architectures, polling)
