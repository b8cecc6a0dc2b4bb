"""Figures of the cost argument (section 3.2): the three unit formulas side by side, and the widths a fixed
budget buys for each g (Table 1)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from ..cost import ARCHITECTURES, WidthRow, format_macs, shufflenet_macs
from ..flops import OP_LABELS, FlopReport
from ..model import BOTTLENECK_RATIO
from .common import GROUP_COLOURS, style
from .flops import OP_COLOURS

ARCHITECTURE_COLOURS = {"resnet": GROUP_COLOURS[7], "resnext": GROUP_COLOURS[1], "shufflenet": GROUP_COLOURS[0]}


# The y axis's unit by the largest bar: (at least, divisor, axis title), so that a small unit reads in whole
# multiply-adds rather than as zero millions.
_AXIS_UNITS = ((1e6, 1e6, "millions of multiply-adds"), (1e4, 1e3, "thousands of multiply-adds"),
               (0, 1, "multiply-adds"))


def _share_text(share: float) -> str:
    return f"{share:.0%}" if share >= 0.1 else f"{share:.1%}"  # a small share keeps a digit, never a bare 0%


def formula_figure(macs: Mapping[str, float], title: str | None = None) -> go.Figure:
    """One bar per architecture: multiply-adds of one unit (in millions, thousands or ones, whichever suits the
    largest), with its share of ResNet's."""
    keys = [key for key in ARCHITECTURES if key in macs]
    reference = macs.get("resnet") or max(macs.values())
    divisor, axis_title = next((divisor, text) for least, divisor, text in _AXIS_UNITS
                               if max(macs.values()) >= least)
    figure = go.Figure(go.Bar(
        x=[ARCHITECTURES[key] for key in keys], y=[macs[key] / divisor for key in keys],
        marker_color=[ARCHITECTURE_COLOURS[key] for key in keys],
        text=[f"{format_macs(macs[key])} ({_share_text(macs[key] / reference)})" for key in keys],
        textposition="outside",
        cliponaxis=False, customdata=[format_macs(macs[key]) for key in keys],
        hovertemplate="%{x}<br>%{customdata} multiply-adds<extra></extra>"))
    figure.update_yaxes(title_text=axis_title, rangemode="tozero")
    return style(figure, title, height=440)


def affordable_width_figure(budget: float, rows: Sequence[WidthRow], side: int, title: str | None = None) -> go.Figure:
    """Cost of one ShuffleNet unit against its width c (m = c/4) for each g, the budget as a line, and the
    width each g affords (Table 1's) marked where its curve meets the budget."""
    top = max(row.exact for row in rows) * 1.15
    widths = np.linspace(BOTTLENECK_RATIO, top, 120)
    figure = go.Figure()
    for index, row in enumerate(rows):
        colour = GROUP_COLOURS[index % len(GROUP_COLOURS)]
        cost = [shufflenet_macs(c, c / BOTTLENECK_RATIO, row.groups, side, side) / 1e6 for c in widths]
        figure.add_trace(go.Scatter(x=widths, y=cost, mode="lines", line=dict(color=colour, width=3),
                                    name=f"g={row.groups}", legendgroup=str(row.groups),
                                    hovertemplate=f"g={row.groups}, c=%{{x:.0f}}: %{{y:.2f}} M<extra></extra>"))
        chosen = shufflenet_macs(row.affordable, row.affordable / BOTTLENECK_RATIO, row.groups, side, side) / 1e6
        figure.add_trace(go.Scatter(
            x=[row.affordable], y=[chosen], mode="markers+text", text=[f"{row.affordable}"], textposition="top left",
            marker=dict(size=14, color=colour, line=dict(width=1.5, color="#000000")), legendgroup=str(row.groups),
            showlegend=False, hovertemplate=f"g={row.groups}: {row.affordable} channels, %{{y:.2f}} M"
                                            f"<extra>Table 1: {row.table1[0]}</extra>"))
    # The budget as a trace, not add_hline: plotly's shape helpers cost a third of a second per call.
    figure.add_trace(go.Scatter(x=[0, top], y=[budget / 1e6] * 2, mode="lines+text", text=["", "budget"],
                                textposition="bottom left", line=dict(color="#000000", width=2, dash="dash"),
                                name="budget", showlegend=False, hoverinfo="skip"))
    figure.update_xaxes(title_text="channels c of a unit (m = c/4)", range=[0, top])
    figure.update_yaxes(title_text="million multiply-adds per unit", range=[0, budget / 1e6 * 1.6])
    figure.update_layout(legend=dict(orientation="h", y=1.0, x=0, yanchor="bottom"))
    return style(figure, title, height=480)


def op_share_figure(report: FlopReport, title: str | None = None) -> go.Figure:
    """The network's multiply-adds summed by kind of op, largest first, each with its share of the total."""
    totals: dict[str, int] = {}
    for unit in report.units:
        for op in unit.ops:
            if op.macs:
                totals[op.op] = totals.get(op.op, 0) + op.macs
    ordered = sorted(totals.items(), key=lambda item: item[1])
    total = sum(totals.values())
    figure = go.Figure(go.Bar(
        y=[OP_LABELS[op] for op, _ in ordered], x=[macs / 1e6 for _, macs in ordered], orientation="h",
        marker_color=[OP_COLOURS.get(op, GROUP_COLOURS[7]) for op, _ in ordered],
        text=[f"{macs / total:.1%}" for _, macs in ordered], textposition="outside", cliponaxis=False,
        hovertemplate="%{y}: %{x:.1f} million multiply-adds<extra></extra>"))
    figure.update_xaxes(range=[0, max(totals.values()) / 1e6 * 1.25])  # millions: the title says so
    return style(figure, title, height=380)
