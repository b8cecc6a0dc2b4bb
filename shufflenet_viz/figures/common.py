"""Shared look: a colour-blind-safe palette, large legible type for projectors, group colours."""

from __future__ import annotations

import functools

import plotly.graph_objects as go

# Okabe & Ito (2008), safe for the common colour-vision deficiencies; ordered for contrast on white.
GROUP_COLOURS: tuple[str, ...] = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00",
                                  "#F0E442", "#000000")
POSITIVE_COLOUR = "#D55E00"  # vermillion
NEGATIVE_COLOUR = "#0072B2"  # blue
FONT_SIZE = 18  # legible from the back of a classroom


def group_colour(group: int) -> str:
    """Colour of channel group `group` (0-based); groups beyond eight reuse the palette."""
    return GROUP_COLOURS[group % len(GROUP_COLOURS)]


_GRID = "#EBF0F8"
_INK = "#2a3f5f"
# plotly's "plotly_white" look for 2-D figures, written out: the named template costs 0.3 s to load on a
# server's first figure and carries defaults for 24 trace types this app never draws. The colorway is the
# colour-blind-safe palette above instead of plotly's.
_HOUSE_LAYOUT = dict(
    colorway=list(GROUP_COLOURS), font=dict(color=_INK), hovermode="closest", hoverlabel=dict(align="left"),
    paper_bgcolor="white", plot_bgcolor="white", title=dict(x=0.05),
    coloraxis=dict(colorbar=dict(outlinewidth=0, ticks="")),
    colorscale=dict(sequential="Plasma", sequentialminus="Plasma", diverging="PiYG"),
    xaxis=dict(gridcolor=_GRID, linecolor=_GRID, ticks="", title=dict(standoff=15), zerolinecolor=_GRID,
               automargin=True, zerolinewidth=2),
    yaxis=dict(gridcolor=_GRID, linecolor=_GRID, ticks="", title=dict(standoff=15), zerolinecolor=_GRID,
               automargin=True, zerolinewidth=2),
    shapedefaults=dict(line=dict(color=_INK)), annotationdefaults=dict(arrowcolor=_INK, arrowhead=0, arrowwidth=1))


@functools.cache
def house_template() -> go.layout.Template:
    """The house template, built once per process (figures copy it on assignment)."""
    return go.layout.Template(layout=_HOUSE_LAYOUT)


def style(figure: go.Figure, title: str | None = None, height: int | None = None) -> go.Figure:
    """Apply the house look: white background, large type, a title, tight margins."""
    figure.update_layout(template=house_template(), font=dict(size=FONT_SIZE),
                         margin=dict(l=40, r=20, t=70 if title else 30, b=40))
    if title is not None:
        figure.update_layout(title=dict(text=title))
    if height is not None:
        figure.update_layout(height=height)
    return figure


PROJECTOR_FONT_SIZE = 26  # read from the back of a room on a 1280x720 projector
PROJECTOR_SCALE = 1.6  # markers and explicit text sizes
PROJECTOR_LINE_SCALE = 1.6  # lines
PROJECTOR_DENSE_MARKER = 12  # markers smaller than this sit side by side (a dot per group): they keep their size
PROJECTOR_HEIGHT_SCALE = 1.2  # room for the larger type


def _scaled(value, factor: float, at_least: float = 0):
    """A size (a number or a list/array of numbers) times `factor`, sizes below `at_least` unchanged; anything
    else unchanged."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value * factor if value >= at_least else value
    if isinstance(value, (list, tuple)) and all(isinstance(v, (int, float)) for v in value):
        return [v * factor if v >= at_least else v for v in value]
    if hasattr(value, "dtype") and hasattr(value, "__mul__"):
        return value * factor if float(value.min()) >= at_least else value
    return value


def _enlarge_font(container: dict, factor: float) -> None:
    font = container.get("font") or container.get("textfont")
    if isinstance(font, dict) and "size" in font:
        font["size"] = _scaled(font["size"], factor)


def _enlarge_trace(trace: dict) -> None:
    marker = trace.get("marker")
    if isinstance(marker, dict):
        if "size" in marker:
            marker["size"] = _scaled(marker["size"], PROJECTOR_SCALE, PROJECTOR_DENSE_MARKER)
    line = trace.get("line")
    if isinstance(line, dict):
        line["width"] = _scaled(line.get("width", 2), PROJECTOR_LINE_SCALE)
    _enlarge_font(trace, PROJECTOR_SCALE)


def projector_style(figure: go.Figure) -> go.Figure:
    """A copy of `figure` legible from the back of a room at 1280x720: larger type, markers and text in the
    plot, thicker lines. Colours stay as they are (the palette is colour-blind safe); the original figure is
    not changed, so a cached figure can be shown both ways."""
    data = figure.to_dict()
    layout = data.setdefault("layout", {})
    layout.setdefault("font", {})["size"] = PROJECTOR_FONT_SIZE
    factor = PROJECTOR_FONT_SIZE / FONT_SIZE
    if isinstance(layout.get("height"), (int, float)):
        layout["height"] = int(layout["height"] * PROJECTOR_HEIGHT_SCALE)
    margin = layout.get("margin")
    if isinstance(margin, dict) and isinstance(margin.get("t"), (int, float)):
        margin["t"] = int(margin["t"] * factor)  # the title and a legend above the plot both grow
    if layout.get("updatemenus") and layout.get("sliders"):
        for slider in layout["sliders"]:  # the larger play buttons need more room left of the slider
            slider["x"], slider["len"] = 0.34, 0.64
    title = layout.get("title")
    if isinstance(title, dict):
        _enlarge_font(title, factor)
    for key in ("annotations", "updatemenus", "sliders"):
        for item in layout.get(key, []):
            _enlarge_font(item, factor)
    for shape in layout.get("shapes", []):
        if isinstance(shape.get("line"), dict) and "width" in shape["line"]:
            shape["line"]["width"] = _scaled(shape["line"]["width"], PROJECTOR_LINE_SCALE)
    if isinstance(layout.get("legend"), dict):
        _enlarge_font(layout["legend"], factor)
    for key, axis in layout.items():
        if key.startswith(("xaxis", "yaxis")) and isinstance(axis, dict):
            tickfont = axis.get("tickfont")
            if isinstance(tickfont, dict) and "size" in tickfont:
                tickfont["size"] = _scaled(tickfont["size"], factor)
            if isinstance(axis.get("title"), dict):
                _enlarge_font(axis["title"], factor)
    for trace in data.get("data", []):
        _enlarge_trace(trace)
    for frame in data.get("frames", []):
        for trace in frame.get("data", []):
            _enlarge_trace(trace)
    return go.Figure(data, skip_invalid=False)
