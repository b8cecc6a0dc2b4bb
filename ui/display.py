"""The one way a figure reaches the screen: styled for the display mode, drawn with the house theme, with
PNG and SVG downloads where a page offers them."""

from __future__ import annotations

import contextvars
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import plotly.graph_objects as go
import streamlit as st

from shufflenet_viz import export
from shufflenet_viz.figures.common import PROJECTOR_FIGURE_WIDTH_PX, narrow_style, projector_style

from .screen import NARROW_FIGURE_WIDTH_PX, narrow_screen
from .state import projector_mode

# (figure, (display mode, columns side by side, height given)) -> the styled copy
_STYLED_COPIES: dict[tuple[int, tuple[str, int, int | None]], tuple[weakref.ref, go.Figure]] = {}
_COLUMNS: contextvars.ContextVar[int] = contextvars.ContextVar("columns", default=1)  # side by side on the page
_STYLED_COPIES_MAX = 256  # styled copies of cached figures, a few hundred KB at most each
DOWNLOAD_WIDTH_PX = 1280  # static exports are drawn for a slide
T = TypeVar("T")


PROJECTOR_ROOT_FONT_PX = 20  # the page's text in projector mode (Streamlit's default is 16)
# A slide: Streamlit's generous paddings (6rem above, 10rem below, 5rem at the sides) would push a step's figure
# off a 720-pixel screen, and its 2.75rem title takes two lines. The title shares the header's line, between the
# control that brings back the sidebar (collapsed in projector mode, see app.py) and the app menu.
_PROJECTOR_PAGE_CSS = f"""<style>
html {{ font-size: {PROJECTOR_ROOT_FONT_PX}px; }}
[data-testid=stHeader] {{ background: transparent; }}
[data-testid=stMainBlockContainer] {{ padding: 0.9rem 1.5rem 0.5rem 1.5rem; }}
[data-testid=stMain] h1 {{ font-size: 1.6rem; line-height: 1.3; padding: 0.15rem 2.5rem 0.15rem 1.5rem;
  white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }}
[data-testid=stMain] h3 {{ font-size: 1.15rem; line-height: 1.4; margin: 0; padding: 0.1rem 0; }}
[data-testid=stMain] [data-testid=stHeading]:has(h3) [data-testid=stMarkdownContainer] {{ margin-bottom: 0; }}
[data-testid=stMetricValue] {{ font-size: 1.6rem; }}
[data-testid=stMain] [data-testid=stVerticalBlock] {{ gap: 0.5rem; }}
[data-testid=stMain] [data-testid=stMarkdownContainer] p {{ margin-bottom: 0.2rem; }}
</style>"""


# A phone: side paddings a little slimmer than Streamlit's, so that a figure gets NARROW_FIGURE_WIDTH_PX of a
# 390-pixel screen. The marker tells a browser test that the page has been drawn for the narrow screen.
_NARROW_PAGE_CSS = """<style>
[data-testid=stMainBlockContainer] { padding-left: 0.9rem; padding-right: 0.9rem; }
</style><span data-lens-screen="narrow"></span>"""


def dress_page_for_projector() -> None:
    """Lay the page out as a slide: larger type, slim paddings, a one-line title (projector mode only); on a
    narrow screen, slimmer side paddings that leave the figures their width."""
    if projector_mode():
        st.html(_PROJECTOR_PAGE_CSS)
    elif narrow_screen():
        st.html(_NARROW_PAGE_CSS)


def display_mode() -> str:
    """How figures are drawn now: "projector", "narrow" (a phone) or "desktop"."""
    if projector_mode():
        return "projector"
    return "narrow" if narrow_screen() else "desktop"


def for_screen(figure: go.Figure | None, height: int | None = None) -> go.Figure | None:
    """The figure as the current display mode draws it: itself on a desktop; in projector mode, or on a narrow
    screen, a styled copy for the width it gets and the `height` a page gives it (made once per cached figure and
    size and kept while that figure lives; the cached figure itself is never changed)."""
    mode = display_mode()
    if figure is None or mode == "desktop":
        return figure
    size = (mode, _COLUMNS.get(), height)
    remembered = _STYLED_COPIES.get((id(figure), size))
    if remembered is not None and remembered[0]() is figure:
        return remembered[1]
    if mode == "projector":
        styled = projector_style(figure, PROJECTOR_FIGURE_WIDTH_PX / size[1], height)
    else:  # a phone stacks columns: every figure gets the screen's width
        styled = narrow_style(figure, NARROW_FIGURE_WIDTH_PX, height)
    if len(_STYLED_COPIES) >= _STYLED_COPIES_MAX:
        _STYLED_COPIES.pop(next(iter(_STYLED_COPIES)))
    _STYLED_COPIES[(id(figure), size)] = (weakref.ref(figure), styled)
    return styled


def show(figure: go.Figure, key: str, download: str | None = None, **chart_options: Any):
    """Put a figure on screen as the display mode draws it (projector styling, a phone's layout, the house theme
    rather than Streamlit's), with PNG and SVG downloads under it when `download` names the files' stem. On a
    narrow screen plotly's toolbar stays hidden (it would cover the figure's title). Returns what st.plotly_chart
    returns (the selection state when `on_select` is given)."""
    shown = for_screen(figure, chart_options.get("height"))
    if narrow_screen():
        chart_options["config"] = {**chart_options.get("config", {}), "displayModeBar": False}
    state = st.plotly_chart(shown, theme=None, key=key, **chart_options)
    if download is not None:
        _downloads(shown, key, download)
    return state


def _downloads(figure: go.Figure, key: str, file_stem: str) -> None:
    problem = export.static_export_problem()
    with st.popover("Download this figure", icon=":material/download:"):
        if problem:
            st.info(problem)
            return
        for image_format, mime in export.STATIC_FORMATS.items():
            st.download_button(image_format.upper(), _renderer(figure, image_format),
                               file_name=f"{file_stem}.{image_format}", mime=mime, key=f"{key}_{image_format}",
                               on_click="ignore")


def _renderer(figure: go.Figure, image_format: str) -> Callable[[], bytes]:
    # Deferred: rendered in Chromium only when the button is pressed, never on a page run.
    return lambda: export.figure_image(figure, image_format, width=DOWNLOAD_WIDTH_PX)


def side_by_side(items: Sequence[T]) -> Iterator[tuple[int, T]]:
    """Each of the things compared (the two models, two configurations) in a column of its own, left first:
    yields (side, item) while that item's column is open, so that a page writes its per-side loop once."""
    for side, (column, item) in enumerate(zip(st.columns(len(items), gap="large"), items)):
        with column:
            shared = _COLUMNS.set(len(items))  # a figure in a column gets that share of the page's width
            try:
                yield side, item
            finally:
                _COLUMNS.reset(shared)
