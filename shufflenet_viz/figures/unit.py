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

# Pale fills keep black text legible; each box's outline carries the strong colour of its kind.
KIND_COLOURS: dict[str, tuple[str, str]] = {  # kind -> (outline colour, box fill)
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
_SHORTCUT_X = -1.04  # the stride-2 shortcut column, left of the branch (centred on 0)
_IDENTITY_X = -0.75  # the stride-1 identity shortcut, a line left of the branch
_X_RANGE = (-1.52, 2.0)  # the notes beside the boxes take the right-hand side
_NARROW_X_RANGE = (-1.62, 0.9)  # notes inside the boxes: the boxes take the width
_HALF_HEIGHT = 0.38  # a box's half height, in rows
_NARROW_HALF_HEIGHT = 0.42  # a box with its notes under its title
ROW_PX = 60  # vertical pixels per node row
COMPACT_ROW_PX = 40
NARROW_ROW_PX = 92  # a title and two lines of notes in every box
_BOLD_GLYPH_EM = 0.7  # the width of a bold character, in font sizes, with room for wide fallback fonts
_GLYPH_EM = 0.56
_BOX_PADDING_PX = 14  # between a box's longest line and its sides
_MIN_BOX_PX = 150  # every branch box at least this wide: the column reads as one
_NOTES_GAP_PX = 12  # between a box and the notes beside it


def _centre(node: DiagramNode) -> tuple[float, float]:
    return (0.0 if node.column == BRANCH else _SHORTCUT_X), -float(node.row)


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


def _text_px(text: str, size: float, em: float) -> float:
    """About how wide `text` (plotly's <br> and <b> markup) is drawn at `size` px: its longest line."""
    lines = text.replace("<b>", "").replace("</b>", "").split("<br>")
    return max(len(line) for line in lines) * em * size


def _box_px(nodes: list[DiagramNode], title_size: float, notes_size: float | None, compact: bool) -> float:
    """The width of a column's boxes: its longest title (and, when the notes are inside, its longest note) with
    padding on both sides."""
    widest = max(_text_px(node_title(node), title_size, _BOLD_GLYPH_EM) for node in nodes)
    if notes_size is not None:
        widest = max(widest, *(_text_px(node_details(node, compact), notes_size, _GLYPH_EM) for node in nodes))
    return widest + 2 * _BOX_PADDING_PX


def _path(points: list[tuple[float, float]]) -> str:
    return "M " + " L ".join(f"{x},{y}" for x, y in points)


def unit_diagram_figure(diagram: UnitDiagram, title: str | None = None, selected: str | None = None,
                        compact: bool = False, narrow: bool = False) -> go.Figure:
    """The unit as boxes and arrows; `selected` (a node key) gets a thick outline. `compact` writes one line
    beside each box (shape and multiply-adds) in shorter rows, for a slide; `narrow` writes the notes inside each
    box under its title, for a phone. A box is as wide as its words in pixels (shapes sized in pixels, which a
    display's styling scales with the type), so a title stays inside its box at every type size."""
    title_size, notes_size = FONT_SIZE - 3, FONT_SIZE - 4
    half_height = _NARROW_HALF_HEIGHT if narrow else _HALF_HEIGHT
    figure = go.Figure()
    nodes = {node.key: node for node in diagram.nodes}
    in_branch = [n for n in diagram.nodes if n.column == BRANCH]
    beside = [n for n in diagram.nodes if n.column != BRANCH]
    branch_px = max(_MIN_BOX_PX, _box_px(in_branch, title_size, notes_size if narrow else None, compact))
    beside_px = _box_px(beside, notes_size, None, False) if beside else 0.0

    def width_px(node: DiagramNode) -> float:
        return branch_px if node.column == BRANCH else beside_px

    # Links first, then the boxes over them (shapes draw in order): a link may start at a box's centre, and the
    # box hides the part inside it whatever the box's width on screen.
    for tail_key, head_key in diagram.edges:
        tail, head = nodes[tail_key], nodes[head_key]
        (tx, ty), (hx, hy) = _centre(tail), _centre(head)
        if tail.column == head.column == BRANCH and head.row == tail.row + 1:
            _arrow(figure, (tx, ty - half_height), (hx, hy + half_height))
        elif head.column != BRANCH:  # input -> shortcut box
            _line(figure, [(tx, ty), (hx, ty), (hx, hy + half_height + 0.15)])
            _arrow(figure, (hx, hy + half_height + 0.15), (hx, hy + half_height))
        elif tail.column != BRANCH:  # shortcut box -> merge
            _line(figure, [(tx, ty), (tx, hy)])
            _arrow(figure, (tx, hy), (hx, hy), standoff_px=width_px(head) / 2)
        else:  # the identity shortcut of a stride-1 unit, a line left of the branch
            _line(figure, [(tx, ty), (_IDENTITY_X, ty), (_IDENTITY_X, hy)])
            figure.add_annotation(x=_IDENTITY_X, y=(ty + hy) / 2, text="identity", textangle=-90, showarrow=False,
                                  xanchor="right", font=dict(size=FONT_SIZE - 2, color="#444444"))
            _arrow(figure, (_IDENTITY_X, hy), (hx, hy), standoff_px=width_px(head) / 2)
    for node in diagram.nodes:
        x, y = _centre(node)
        half = width_px(node) / 2
        marker_colour, fill = KIND_COLOURS[node.kind]
        figure.add_shape(type="rect", xsizemode="pixel", xanchor=x, x0=-half, x1=half, y0=y - half_height,
                         y1=y + half_height,
                         line=dict(color="#000000" if node.key == selected else marker_colour,
                                   width=4 if node.key == selected else 2, dash="solid" if node.active else "dash"),
                         fillcolor=fill, layer="below")
    title_lift = 0.2 if narrow else 0.0  # in a phone's box the title sits above the notes
    figure.add_trace(go.Scatter(
        x=[_centre(n)[0] for n in in_branch], y=[_centre(n)[1] + title_lift for n in in_branch],
        mode="text", text=[node_title(n) for n in in_branch], textposition="middle center",
        textfont=dict(size=title_size, color="#000000"), hoverinfo="skip", showlegend=False))
    if narrow:
        figure.add_trace(go.Scatter(
            x=[_centre(n)[0] for n in in_branch], y=[_centre(n)[1] - 0.17 for n in in_branch], mode="text",
            text=[node_details(n, compact) for n in in_branch], textposition="middle center",
            textfont=dict(size=notes_size, color="#222222"), hoverinfo="skip", showlegend=False))
    else:  # beside each box, a gap right of its edge, in pixels that the display's styling scales with the type
        for node in in_branch:
            figure.add_annotation(x=_centre(node)[0], y=_centre(node)[1], text=node_details(node, compact),
                                  showarrow=False, xanchor="left", align="left", xshift=branch_px / 2 + _NOTES_GAP_PX,
                                  font=dict(size=notes_size, color="#222222"))
    if beside:
        figure.add_trace(go.Scatter(
            x=[_centre(n)[0] for n in beside], y=[_centre(n)[1] for n in beside], mode="text",
            text=[f"{node_title(n)}<br>{n.shape_text}" for n in beside],
            textfont=dict(size=notes_size, color="#000000"), hoverinfo="skip", showlegend=False))
    # One invisible marker per box answers the hover and the click (the nearest box, wherever the pointer is).
    figure.add_trace(go.Scatter(
        x=[_centre(n)[0] for n in diagram.nodes], y=[_centre(n)[1] for n in diagram.nodes],
        mode="markers", name="nodes", marker=dict(size=24, symbol="square", color="rgba(0,0,0,0)"),
        customdata=[[n.key, n.operation, n.shape_text, f"{n.macs:,}", f"{n.params:,}"] for n in diagram.nodes],
        hovertemplate="<b>%{customdata[1]}</b><br>output %{customdata[2]}<br>%{customdata[3]} multiply-adds"
                      "<br>%{customdata[4]} parameters<extra></extra>", showlegend=False))
    rows = max(node.row for node in diagram.nodes) + 1
    figure.update_xaxes(visible=False, range=list(_NARROW_X_RANGE if narrow else _X_RANGE), fixedrange=True)
    figure.update_yaxes(visible=False, range=[-(rows - 1) - 0.5, 0.5], fixedrange=True)
    figure.update_layout(hovermode="closest", hoverdistance=-1, dragmode=False, showlegend=False)
    row_px = NARROW_ROW_PX if narrow else COMPACT_ROW_PX if compact else ROW_PX
    style(figure, title if title is not None else PANEL_NAMES[diagram.panel], height=rows * row_px + 80)
    figure.update_layout(margin=dict(l=10, r=10, t=60, b=10))
    return figure


def _arrow(figure: go.Figure, tail: tuple[float, float], head: tuple[float, float], standoff_px: float = 0) -> None:
    """An arrow from `tail` to `head`, stopping `standoff_px` short of the head (a box's half width)."""
    figure.add_annotation(x=head[0], y=head[1], ax=tail[0], ay=tail[1], xref="x", yref="y", axref="x", ayref="y",
                          showarrow=True, arrowhead=2, arrowsize=1.2, arrowwidth=2, arrowcolor="#444444", text="",
                          standoff=standoff_px)


def _line(figure: go.Figure, points: list[tuple[float, float]]) -> None:
    figure.add_shape(type="path", path=_path(points), line=dict(color="#444444", width=2), layer="below")


def node_at(figure_selection: dict | None) -> str | None:
    """The node key of the first point in a Streamlit plotly selection (None when nothing is selected)."""
    points = (figure_selection or {}).get("selection", {}).get("points", [])
    for point in points:
        data = point.get("customdata")
        if isinstance(data, (list, tuple)) and data:
            return str(data[0])
    return None
