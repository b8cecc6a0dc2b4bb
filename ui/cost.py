"""The Cost arithmetic page's figures and counts (the Lesson reuses the widths a fixed budget affords). Kept out
of the page script, which Streamlit re-executes on every run; figures are returned unstyled for `ui.display.show`."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from shufflenet_viz.cost import UnitSetting, WidthRow, affordable_widths, stride1_settings, table1_setting
from shufflenet_viz.figures.cost import affordable_width_figure, formula_figure
from shufflenet_viz.model import GROUPS

from .flops import report

PRESETS = {f"g={g} network, stage2.unit2 (224x224)": table1_setting(g) for g in GROUPS}  # label -> c, m, g, h, w


# Bounded: 64 figures of three bars each.
@st.cache_resource(max_entries=64, show_spinner=False)
def unit_cost_figure(c: int, m: int, g: int, h: int, w: int, macs: tuple[tuple[str, float], ...]) -> go.Figure:
    """`formula_figure` of one setting: what one unit costs as ResNet, ResNeXt and ShuffleNet."""
    return formula_figure(dict(macs), f"One unit: c={c}, m={m}, g={g}, {h}x{w}")


# Bounded: one result, the paper's Stage 2.
@st.cache_resource(max_entries=1, show_spinner=False)
def widths() -> tuple[float, list[WidthRow]]:
    """(budget, rows) of `cost.affordable_widths` at the paper's Stage 2."""
    return affordable_widths()


# Bounded: one figure.
@st.cache_resource(max_entries=1, show_spinner=False)
def widths_figure() -> go.Figure:
    """The affordable-width figure at the paper's Stage 2 (28x28, budget of the g=1 unit)."""
    budget, rows = widths()
    return affordable_width_figure(budget, rows, 28, "What one Stage 2 unit costs, and the width each g affords")


def flops_unit(g: int) -> UnitSetting:
    """flops.py's count for stage2.unit2 of the g network (224x224, 1000 classes)."""
    return next(s for s in stride1_settings(report(g, 1.0, 224, 1000)) if s.unit == "stage2.unit2")
