"""Shared look: a colour-blind-safe palette, large legible type for projectors, group colours."""

from __future__ import annotations

import functools
import textwrap

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


PROJECTOR_FIGURE_WIDTH_PX = 960  # a figure across the page on the narrowest projector screen (1024 px)
_GLYPH_EM = 0.56  # the mean width of a character of the sans-serif type, in font sizes
PROJECTOR_TICK_STANDOFF_PX = 10  # between a vertical axis and its tick labels
_LINE_EM = 1.3  # a title's line height, in font sizes
_LEGEND_ENTRY_EM = 2.0  # an upright legend's entry with its symbol and the gap to the next, in font sizes


def _wrap(text: str, font_px: float, width_px: float) -> tuple[str, int]:
    """`text` broken at spaces into lines that fit `width_px` at `font_px` (plotly never wraps a title), and
    how many lines that makes; text already broken by hand is kept as it is."""
    if "<br>" in text:
        return text, text.count("<br>") + 1
    lines = textwrap.wrap(text, max(12, int(width_px / (_GLYPH_EM * font_px))), break_long_words=False)
    return "<br>".join(lines), max(1, len(lines))


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


def _enlarge_axis_text(axis: dict, factor: float) -> None:
    # An axis's tick labels and title, where the figure gave them a size of their own.
    tickfont = axis.get("tickfont")
    if isinstance(tickfont, dict) and "size" in tickfont:
        tickfont["size"] = _scaled(tickfont["size"], factor)
    if isinstance(axis.get("title"), dict):
        _enlarge_font(axis["title"], factor)


def projector_style(figure: go.Figure, width_px: float = PROJECTOR_FIGURE_WIDTH_PX,
                    height_px: int | None = None) -> go.Figure:
    """A copy of `figure` legible from the back of a room at 1280x720: larger type, markers and text in the
    plot, thicker lines; its titles broken into lines that fit `width_px`, the width the figure gets on screen,
    and `height_px`, the height a page gives it (else its own, enlarged for the larger type). Colours stay as
    they are (the palette is colour-blind safe); the original figure is not changed, so a cached figure can be
    shown both ways."""
    data = figure.to_dict()
    layout = data.setdefault("layout", {})
    layout.setdefault("font", {})["size"] = PROJECTOR_FONT_SIZE
    factor = PROJECTOR_FONT_SIZE / FONT_SIZE
    if height_px is not None:
        layout["height"] = height_px
    elif isinstance(layout.get("height"), (int, float)):
        layout["height"] = int(layout["height"] * PROJECTOR_HEIGHT_SCALE)
    if layout.get("updatemenus") and layout.get("sliders"):
        for slider in layout["sliders"]:  # the larger play buttons need more room left of the slider
            slider["x"], slider["len"] = 0.34, 0.64
    for key in ("annotations", "updatemenus", "sliders"):
        for item in layout.get(key, []):
            _enlarge_font(item, factor)
    margin = layout.get("margin")
    extra_title_lines = max(_fit_title(layout, width_px), _fit_panel_titles(layout, width_px))
    if isinstance(margin, dict) and isinstance(margin.get("t"), (int, float)):
        # The title and a legend above the plot both grow; each line a title gains needs its own room.
        margin["t"] = int(margin["t"] * factor + extra_title_lines * _LINE_EM * PROJECTOR_FONT_SIZE)
    for shape in layout.get("shapes", []):
        if isinstance(shape.get("line"), dict) and "width" in shape["line"]:
            shape["line"]["width"] = _scaled(shape["line"]["width"], PROJECTOR_LINE_SCALE)
    _scale_pixel_sizes(layout, factor)
    if isinstance(layout.get("legend"), dict):
        _enlarge_font(layout["legend"], factor)
    layout.setdefault("yaxis", {})  # a figure that leaves its axis to the template still gets the standoff
    for key, axis in layout.items():
        if key.startswith(("xaxis", "yaxis")) and isinstance(axis, dict):
            _enlarge_axis_text(axis, factor)
            if isinstance(axis.get("title"), dict):
                if key.startswith("yaxis") and isinstance(layout.get("height"), (int, float)):
                    _fit_axis_title(axis["title"], layout["height"] - _vertical_margins(layout))
            if key.startswith("yaxis"):
                # The larger labels of both axes would meet at the corner where both count from zero.
                axis.setdefault("ticklabelstandoff", PROJECTOR_TICK_STANDOFF_PX)
    _fit_legend(data, layout)
    for trace in data.get("data", []):
        _enlarge_trace(trace)
    for frame in data.get("frames", []):
        for trace in frame.get("data", []):
            _enlarge_trace(trace)
    return go.Figure(data, skip_invalid=False)


def _fit_title(layout: dict, width_px: float, font_size: float = PROJECTOR_FONT_SIZE) -> int:
    """Give the figure's title the display's type size `font_size` (plotly's default title is 1.4 times the
    text, too wide for a slide or a phone) and break it into lines that fit `width_px`; returns how many lines it
    gained."""
    title = layout.get("title")
    if not isinstance(title, dict) or not title.get("text"):
        return 0
    font = title.setdefault("font", {})
    font["size"] = font["size"] * font_size / FONT_SIZE if "size" in font else font_size
    title["text"], lines = _wrap(title["text"], font["size"], width_px * (1 - 2 * title.get("x", 0.05)))
    return lines - 1


def _vertical_margins(layout: dict) -> float:
    margin = layout.get("margin") if isinstance(layout.get("margin"), dict) else {}
    return float(margin.get("t", 100)) + float(margin.get("b", 80))


def _fit_axis_title(title: dict, length_px: float) -> None:
    """Break a vertical axis's title into lines that fit along the plot's height."""
    if title.get("text"):
        size = (title.get("font") or {}).get("size", PROJECTOR_FONT_SIZE)
        title["text"], _ = _wrap(title["text"], size, length_px)


def _fit_legend(data: dict, layout: dict) -> None:
    """Make a figure with an upright legend tall enough for every entry at the projector's type size."""
    legend = layout.get("legend") if isinstance(layout.get("legend"), dict) else {}
    if (legend.get("orientation") == "h" or layout.get("showlegend") is False
            or not isinstance(layout.get("height"), (int, float))):
        return
    entries = sum(1 for trace in data.get("data", []) if trace.get("showlegend", True) is not False
                  and trace.get("name"))
    size = (legend.get("font") or {}).get("size", PROJECTOR_FONT_SIZE)
    needed = entries * _LEGEND_ENTRY_EM * size + _vertical_margins(layout)
    if entries > 1 and needed > layout["height"]:
        layout["height"] = int(needed)


def _fit_panel_titles(layout: dict, width_px: float) -> int:
    """Break the titles over side-by-side panels (text annotations placed on the figure above the plot, as
    make_subplots writes them) into lines that fit one panel's width; returns how many lines the tallest gained."""
    panels = max(1, sum(1 for key in layout if key.startswith("xaxis")))
    gained = 0
    for annotation in layout.get("annotations", []):
        above = annotation.get("yref") == "paper" and annotation.get("y", 0) >= 1
        if annotation.get("xref") == "paper" and above and not annotation.get("showarrow", True) \
                and annotation.get("text"):
            size = (annotation.get("font") or {}).get("size", PROJECTOR_FONT_SIZE)
            annotation["text"], lines = _wrap(annotation["text"], size, width_px / panels * 0.9)
            gained = max(gained, lines - 1)
    return gained


NARROW_FONT_SIZE = 13  # a phone held at reading distance; 18 px type leaves too few characters on its width
NARROW_BOTTOM_LEGEND_EM = 1.6  # a legend row under the plot, in font sizes
NARROW_COLOUR_BAR_PX = 70  # a colour bar under the plot with its ticks and title


def narrow_style(figure: go.Figure, width_px: float, height_px: int | None = None) -> go.Figure:
    """A copy of `figure` for a phone's screen `width_px` wide: smaller type throughout (titles broken into
    lines that fit), a legend beside or above the plot moved under it (where its rows can wrap without taking
    the plot's width or covering the title), a colour bar under the plot, and `height_px` when a page gives a
    height. Markers, lines and the layout stay as the
    figure's builder made them: a figure that needs a different arrangement on a phone is built for it. The
    original figure is not changed."""
    data = figure.to_dict()
    layout = data.setdefault("layout", {})
    layout.setdefault("font", {})["size"] = NARROW_FONT_SIZE
    factor = NARROW_FONT_SIZE / FONT_SIZE
    if height_px is not None:
        layout["height"] = height_px
    for key in ("annotations", "updatemenus", "sliders"):
        for item in layout.get(key, []):
            _enlarge_font(item, factor)
    _scale_pixel_sizes(layout, factor)
    margin = layout.setdefault("margin", {})
    extra_title_lines = max(_fit_title(layout, width_px, NARROW_FONT_SIZE + 2),
                            _fit_panel_titles(layout, width_px))
    if isinstance(margin.get("t"), (int, float)):
        margin["t"] = int(margin["t"] * factor + extra_title_lines * _LINE_EM * (NARROW_FONT_SIZE + 2))
    legend = layout.setdefault("legend", {})
    _enlarge_font(legend, factor)
    beside_or_above = legend.get("orientation") != "h" or legend.get("y", 1.02) >= 1
    if beside_or_above and layout.get("showlegend") is not False and legend.get("yref") != "container":
        _legend_under_plot(data, layout, width_px)
    for key, axis in layout.items():
        if key.startswith(("xaxis", "yaxis")) and isinstance(axis, dict):
            _enlarge_axis_text(axis, factor)
            if isinstance(axis.get("title"), dict):
                if key.startswith("xaxis") and axis["title"].get("text"):  # under a panel of the plot's width
                    low, high = axis.get("domain", (0, 1))
                    size = (axis["title"].get("font") or {}).get("size", NARROW_FONT_SIZE)
                    axis["title"]["text"], _ = _wrap(axis["title"]["text"], size, (high - low) * width_px * 0.9)
    for trace in data.get("data", []):
        _narrow_trace(trace, factor)
        if _colour_bar_under_plot(trace):  # the plot keeps its height: the bar takes a strip of its own
            margin["b"] = int(margin.get("b", 40)) + NARROW_COLOUR_BAR_PX
            if isinstance(layout.get("height"), (int, float)) and height_px is None:
                layout["height"] = layout["height"] + NARROW_COLOUR_BAR_PX
    for frame in data.get("frames", []):
        for trace in frame.get("data", []):
            _narrow_trace(trace, factor)
    return go.Figure(data, skip_invalid=False)


def _narrow_trace(trace: dict, factor: float) -> None:
    """Smaller text in the plot, except a label inside its marker, which keeps the marker's size."""
    mode = trace.get("mode") or ""
    if "markers" in mode and "text" in mode and trace.get("textposition") == "middle center":
        return
    _enlarge_font(trace, factor)


def _colour_bar_under_plot(trace: dict) -> bool:
    """Turn a colour bar beside the plot into a bar under it, where it takes no width from the picture;
    returns whether the trace has one."""
    if trace.get("type") not in ("heatmap", "contour", "histogram2d") or trace.get("showscale") is False:
        return False
    colour_bar = trace.setdefault("colorbar", {})
    colour_bar.update(orientation="h", x=0.5, xanchor="center", y=-0.04, yanchor="top", len=1.0, lenmode="fraction",
                      thickness=12)
    if isinstance(colour_bar.get("title"), dict):
        colour_bar["title"]["side"] = "top"
    return True


def _scale_pixel_sizes(layout: dict, factor: float) -> None:
    """What a figure sizes in pixels around its text grows and shrinks with the type by `factor`: shapes sized in
    pixels (a box as wide as its words), annotations' pixel shifts (notes beside a box) and arrows' standoffs (an
    arrow that stops at a box's edge)."""
    for shape in layout.get("shapes", []):
        if shape.get("xsizemode") == "pixel":
            for end in ("x0", "x1"):
                if isinstance(shape.get(end), (int, float)):
                    shape[end] *= factor
    for annotation in layout.get("annotations", []):
        for offset in ("xshift", "yshift", "standoff"):
            if isinstance(annotation.get(offset), (int, float)):
                annotation[offset] *= factor


def _legend_under_plot(data: dict, layout: dict, width_px: float) -> None:
    """Move a legend from beside or above the plot to under the figure, in rows, with room for the rows it wraps
    into."""
    legend = layout["legend"]
    names = [trace.get("name") or "" for trace in data.get("data", [])
             if trace.get("showlegend", True) is not False and trace.get("name")]
    if not names:
        return
    size = (legend.get("font") or {}).get("size", NARROW_FONT_SIZE)
    entry_px = [(len(name) * _GLYPH_EM + 3) * size for name in names]  # the symbol and gap: three characters
    rows, used = 1, 0.0
    for entry in entry_px:
        if used and used + entry > width_px:
            rows, used = rows + 1, 0.0
        used += entry
    legend.update(orientation="h", x=0, xanchor="left", y=0, yanchor="bottom", yref="container")
    margin = layout.setdefault("margin", {})
    margin["b"] = int(margin.get("b", 40)) + int(rows * NARROW_BOTTOM_LEGEND_EM * size)
