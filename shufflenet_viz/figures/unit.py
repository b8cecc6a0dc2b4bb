"""The unit diagram (the paper's Figure 2) as a plotly figure: one box per node, arrows along the data flow.

Each box holds the node's words from the paper, its groups, the shape of its output tensor, its multiply-adds
and its parameters. One marker per box carries the node's key as customdata, so a click (Streamlit's selection
event) names the node; hovering anywhere picks the nearest box, so the whole box answers a click.
"""

from __future__ import annotations

import plotly.graph_objects as go

from ..cost import format_count
from ..unit_diagram import BRANCH, DiagramNode, UnitDiagram
from .common import FONT_SIZE, GROUP_COLOURS, POSITIVE_COLOUR, style

# Pale fills keep black text legible; the marker beside each title carries the strong colour of its kind.
KIND_COLOURS: dict[str, tuple[str, str]] = {  # kind -> (marker colour, box fill)
    "tensor": ("#000000", "#FFFFFF"),
    "conv": (GROUP_COLOURS[0], "#DCEBF5"),
    "depthwise": (GROUP_COLOURS[2], "#D9F0E8"),
    "norm": ("#777777", "#F0F0F0"),
    "shuffle": (POSITIVE_COLOUR, "#FBE3D4"),
    "pool": (GROUP_COLOURS[1], "#FCEFD6"),
    "merge": (GROUP_COLOURS[3], "#F6E4EE"),
}
PANEL_NAMES = {"a": "(a) bottleneck unit with DWConv, no groups", "b": "(b) ShuffleNet unit",
               "c": "(c) ShuffleNet unit, stride 2"}
_BRANCH_HALF_WIDTH = 0.5  # x units; the branch column is centred on 0
_SHORTCUT_X, _SHORTCUT_HALF_WIDTH = -1.04, 0.44  # the stride-2 shortcut column, left of the branch
_IDENTITY_X = -0.75  # the stride-1 identity shortcut, a line left of the branch
_DETAILS_X = 0.56  # shape, groups, MACs and parameters, written right of the branch
_X_RANGE = (-1.52, 2.0)
_HALF_HEIGHT = 0.38
ROW_PX = 60  # vertical pixels per node row
COMPACT_ROW_PX = 40


def _centre(node: DiagramNode) -> tuple[float, float]:
    return (0.0 if node.column == BRANCH else _SHORTCUT_X), -float(node.row)


def _half_width(node: DiagramNode) -> float:
    return _BRANCH_HALF_WIDTH if node.column == BRANCH else _SHORTCUT_HALF_WIDTH


def _groups_text(node: DiagramNode) -> str:
    if node.groups is None:
        return ""
    if node.kind == "depthwise":
        return f"g={node.groups} (depthwise), "
    return f"g={node.groups}, "


def node_title(node: DiagramNode) -> str:
    """The words in a node's box (the paper's); a shuffle that moves nothing says so."""
    return f"<b>{node.title}</b>" if node.active else f"<b>{node.title}</b>: identity"


def node_details(node: DiagramNode, compact: bool = False) -> str:
    """What is written beside a node: groups and output shape, then multiply-adds and parameters (compact:
    shape and multiply-adds on one line)."""
    if node.kind == "tensor":
        return node.shape_text
    if compact:
        return f"{node.shape_text}, {format_count(node.macs)} multiply-adds"
    return (f"{_groups_text(node)}{node.shape_text}<br>{format_count(node.macs)} MACs, "
            f"{format_count(node.params)} params")


def _arrow(figure: go.Figure, tail: tuple[float, float], head: tuple[float, float]) -> None:
    figure.add_annotation(x=head[0], y=head[1], ax=tail[0], ay=tail[1], xref="x", yref="y", axref="x", ayref="y",
                          showarrow=True, arrowhead=2, arrowsize=1.2, arrowwidth=2, arrowcolor="#444444", text="")


def _line(figure: go.Figure, xs: list[float], ys: list[float]) -> None:
    figure.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line=dict(color="#444444", width=2), hoverinfo="skip",
                                showlegend=False))


def unit_diagram_figure(diagram: UnitDiagram, title: str | None = None, selected: str | None = None,
                        compact: bool = False) -> go.Figure:
    """The unit as boxes and arrows; `selected` (a node key) gets a thick outline. `compact` writes one line
    beside each box (shape and multiply-adds) in shorter rows and smaller type, for a slide."""
    title_size, details_size = (FONT_SIZE - 5, FONT_SIZE - 6) if compact else (FONT_SIZE - 3, FONT_SIZE - 4)
    figure = go.Figure()
    nodes = {node.key: node for node in diagram.nodes}
    for node in diagram.nodes:
        x, y = _centre(node)
        half = _half_width(node)
        marker_colour, fill = KIND_COLOURS[node.kind]
        figure.add_shape(type="rect", x0=x - half, x1=x + half, y0=y - _HALF_HEIGHT, y1=y + _HALF_HEIGHT,
                         line=dict(color="#000000" if node.key == selected else marker_colour,
                                   width=4 if node.key == selected else 1.5, dash="solid" if node.active else "dash"),
                         fillcolor=fill, layer="below")
    for tail_key, head_key in diagram.edges:
        tail, head = nodes[tail_key], nodes[head_key]
        (tx, ty), (hx, hy) = _centre(tail), _centre(head)
        if tail.column == head.column == BRANCH and head.row == tail.row + 1:
            _arrow(figure, (tx, ty - _HALF_HEIGHT), (hx, hy + _HALF_HEIGHT))
        elif head.column != BRANCH:  # input -> shortcut box
            _line(figure, [tx - _half_width(tail), hx, hx], [ty, ty, hy + _HALF_HEIGHT + 0.15])
            _arrow(figure, (hx, hy + _HALF_HEIGHT + 0.15), (hx, hy + _HALF_HEIGHT))
        elif tail.column != BRANCH:  # shortcut box -> merge
            _line(figure, [tx, tx], [ty - _HALF_HEIGHT, hy])
            _arrow(figure, (tx, hy), (hx - _half_width(head), hy))
        else:  # the identity shortcut of a stride-1 unit, a line left of the branch
            _line(figure, [tx - _half_width(tail), _IDENTITY_X, _IDENTITY_X], [ty, ty, hy])
            figure.add_annotation(x=_IDENTITY_X, y=(ty + hy) / 2, text="identity", textangle=-90, showarrow=False,
                                  xanchor="right", font=dict(size=FONT_SIZE - 2, color="#444444"))
            _arrow(figure, (_IDENTITY_X, hy), (hx - _half_width(head), hy))
    in_branch = [n for n in diagram.nodes if n.column == BRANCH]
    figure.add_trace(go.Scatter(
        x=[_centre(n)[0] - _half_width(n) + 0.13 for n in in_branch], y=[_centre(n)[1] for n in in_branch],
        mode="text", text=[node_title(n) for n in in_branch], textposition="middle right",
        textfont=dict(size=title_size, color="#000000"), hoverinfo="skip", showlegend=False))
    figure.add_trace(go.Scatter(
        x=[_DETAILS_X] * len(in_branch), y=[_centre(n)[1] for n in in_branch], mode="text",
        text=[node_details(n, compact) for n in in_branch], textposition="middle right",
        textfont=dict(size=details_size, color="#222222"), hoverinfo="skip", showlegend=False))
    beside = [n for n in diagram.nodes if n.column != BRANCH]
    if beside:
        figure.add_trace(go.Scatter(
            x=[_centre(n)[0] + 0.07 for n in beside], y=[_centre(n)[1] for n in beside], mode="text",
            text=[f"{node_title(n)}<br>{n.shape_text}" for n in beside],
            textfont=dict(size=details_size, color="#000000"), hoverinfo="skip", showlegend=False))
    figure.add_trace(go.Scatter(
        x=[_centre(n)[0] - _half_width(n) + 0.07 for n in diagram.nodes], y=[_centre(n)[1] for n in diagram.nodes],
        mode="markers", name="nodes",
        marker=dict(size=14, symbol="square", color=[KIND_COLOURS[n.kind][0] for n in diagram.nodes],
                    line=dict(width=1, color="#000000")),
        customdata=[[n.key, n.operation, n.shape_text, f"{n.macs:,}", f"{n.params:,}"] for n in diagram.nodes],
        hovertemplate="<b>%{customdata[1]}</b><br>output %{customdata[2]}<br>%{customdata[3]} multiply-adds"
                      "<br>%{customdata[4]} parameters<extra></extra>",
        selected=dict(marker=dict(opacity=1)), unselected=dict(marker=dict(opacity=0.6)), showlegend=False))
    rows = max(node.row for node in diagram.nodes) + 1
    figure.update_xaxes(visible=False, range=list(_X_RANGE), fixedrange=True)
    figure.update_yaxes(visible=False, range=[-(rows - 1) - 0.5, 0.5], fixedrange=True)
    figure.update_layout(hovermode="closest", hoverdistance=-1, dragmode=False, showlegend=False)
    row_px = COMPACT_ROW_PX if compact else ROW_PX
    style(figure, title if title is not None else PANEL_NAMES[diagram.panel], height=rows * row_px + 80)
    figure.update_layout(margin=dict(l=10, r=10, t=60, b=10))
    return figure


def node_at(figure_selection: dict | None) -> str | None:
    """The node key of the first point in a Streamlit plotly selection (None when nothing is selected)."""
    points = (figure_selection or {}).get("selection", {}).get("points", [])
    for point in points:
        data = point.get("customdata")
        if isinstance(data, (list, tuple)) and data:
            return str(data[0])
    return None
