"""Figures and tables of the FLOPs page: cost per unit and per op, parameters, and measured time against MACs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import plotly.graph_objects as go

from ..flops import OP_LABELS, FlopReport
from ..model import GROUPS
from ..paper import TABLE1_MFLOPS
from .common import GROUP_COLOURS, style

# Op roles in stacking order (bottom first) with a colour each; the pools share one colour (they never meet
# in one unit). The paper's three unit ops come first so that they line up across units.
OP_COLOURS: dict[str, str] = {
    "compress_conv": GROUP_COLOURS[0],
    "depthwise_conv": GROUP_COLOURS[1],
    "expand_conv": GROUP_COLOURS[2],
    "shortcut": GROUP_COLOURS[3],
    "elementwise": GROUP_COLOURS[4],
    "stem_conv": GROUP_COLOURS[5],
    "max_pool": GROUP_COLOURS[6],
    "global_pool": GROUP_COLOURS[6],
    "classifier": GROUP_COLOURS[7],
}
MACS_COLOUR, TIME_COLOUR = GROUP_COLOURS[2], GROUP_COLOURS[5]


def op_cost(op, include_other_ops: bool) -> int:
    """What one op contributes to a bar: its multiply-adds, plus its other operations when asked."""
    return op.macs + (op.other_ops if include_other_ops else 0)


def unit_cost_figure(report: FlopReport, include_other_ops: bool = False, title: str | None = None,
                     y_max: float | None = None) -> go.Figure:
    """Stacked bars, one per unit: millions of multiply-adds (and other ops if asked) split by op.

    Ops that cost nothing in every unit (channel shuffle; without other ops also shortcut and elementwise)
    get no trace, so the legend names only what the bars show.
    """
    names = [unit.name for unit in report.units]
    figure = go.Figure()
    for role, colour in OP_COLOURS.items():
        values = [sum(op_cost(op, include_other_ops) for op in unit.ops if op.op == role) for unit in report.units]
        if not any(values):
            continue
        figure.add_bar(x=names, y=[v / 1e6 for v in values], name=OP_LABELS[role], marker_color=colour,
                       hovertemplate="%{x}: %{y:.2f} M<extra>" + OP_LABELS[role] + "</extra>")
    unit_of_count = "operations" if include_other_ops else "multiply-adds"
    figure.update_layout(barmode="stack", legend=dict(orientation="h", y=-0.42, x=0, traceorder="normal"))
    figure.update_xaxes(tickangle=-60)
    figure.update_yaxes(title_text=f"millions of {unit_of_count}", range=[0, y_max] if y_max else None)
    return style(figure, title, height=560)


def unit_totals(report: FlopReport, include_other_ops: bool = False) -> list[float]:
    """Height of each unit's stacked bar in millions (what `unit_cost_figure` draws)."""
    return [sum(op_cost(op, include_other_ops) for op in unit.ops) / 1e6 for unit in report.units]


def params_figure(reports: Sequence[FlopReport], names: Sequence[str], colours: Sequence[str],
                  title: str | None = None) -> go.Figure:
    """Grouped bars: thousands of learnable parameters per unit, one colour per configuration."""
    figure = go.Figure()
    for report, name, colour in zip(reports, names, colours):
        figure.add_bar(x=[u.name for u in report.units], y=[u.params / 1e3 for u in report.units], name=name,
                       marker_color=colour, hovertemplate="%{x}: %{y:,.1f} k<extra>" + name + "</extra>")
    figure.update_layout(barmode="group", legend=dict(orientation="h", y=1.02, yanchor="bottom", x=0))
    figure.update_xaxes(tickangle=-60)
    figure.update_yaxes(title_text="thousands of parameters")
    return style(figure, title, height=480)


def share_figure(report: FlopReport, seconds: Mapping[str, float], title: str | None = None) -> go.Figure:
    """Per unit, its share of all multiply-adds beside its share of the measured time (percent)."""
    rows = unit_table_rows(report, seconds)
    names = [row["unit"] for row in rows]
    figure = go.Figure()
    figure.add_bar(x=names, y=[row["mac_share_percent"] for row in rows], name="share of multiply-adds",
                   marker_color=MACS_COLOUR, hovertemplate="%{x}: %{y:.1f}% of MACs<extra></extra>")
    figure.add_bar(x=names, y=[row["time_share_percent"] for row in rows], name="share of measured time",
                   marker_color=TIME_COLOUR, hovertemplate="%{x}: %{y:.1f}% of time<extra></extra>")
    # The legend goes under the unit names: above the plot it would cover the title.
    figure.update_layout(barmode="group", legend=dict(orientation="h", y=-0.42, x=0))
    figure.update_xaxes(tickangle=-60)
    figure.update_yaxes(title_text="percent of the whole network", ticksuffix="%")
    return style(figure, title, height=560)


def unit_table_rows(report: FlopReport, seconds: Mapping[str, float]) -> list[dict]:
    """One row per unit: multiply-adds, other ops, parameters, measured milliseconds and both shares.

    `seconds` holds `flops.time_units` for the same architecture; a unit it lacks gets no time.
    """
    total_macs = report.total_macs or 1
    total_seconds = sum(seconds.get(unit.name, 0.0) for unit in report.units) or 1.0
    rows = []
    for unit in report.units:
        unit_seconds = seconds.get(unit.name)
        rows.append({
            "unit": unit.name,
            "output": "x".join(map(str, unit.output_shape)),
            "macs": unit.macs,
            "other_ops": unit.other_ops,
            "params": unit.params,
            "time_ms": None if unit_seconds is None else round(unit_seconds * 1000, 3),
            "mac_share_percent": round(100 * unit.macs / total_macs, 2),
            "time_share_percent": None if unit_seconds is None else round(100 * unit_seconds / total_seconds, 2),
        })
    return rows


def paper_comparison_rows(reports: Mapping[int, FlopReport]) -> list[dict]:
    """Computed complexity against Table 1 for each g (reports at 1x, 224x224, 1000 classes)."""
    rows = []
    for groups in GROUPS:
        if groups not in reports:
            continue
        computed = reports[groups].total_macs / 1e6
        paper = TABLE1_MFLOPS[groups]
        rows.append({"groups": groups, "computed_mflops": round(computed, 1), "paper_mflops": paper,
                     "difference_percent": round(100 * (computed / paper - 1), 2),
                     "params_millions": round(reports[groups].total_params / 1e6, 3)})
    return rows
