"""The one way a figure reaches the screen: styled for the display mode, drawn with the house theme, with
PNG and SVG downloads where a page offers them."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import plotly.graph_objects as go
import streamlit as st

from shufflenet_viz import export
from shufflenet_viz.figures.common import projector_style

from .state import projector_mode

_PROJECTOR_COPIES: dict[int, tuple[weakref.ref, go.Figure]] = {}
_PROJECTOR_COPIES_MAX = 256  # styled copies of cached figures, a few hundred KB at most each
DOWNLOAD_WIDTH_PX = 1280  # static exports are drawn for a slide
T = TypeVar("T")


def for_screen(figure: go.Figure | None) -> go.Figure | None:
    """The figure as the current display mode draws it: itself, or in projector mode a styled copy (made once
    per cached figure and kept while that figure lives; the cached figure itself is never changed)."""
    if figure is None or not projector_mode():
        return figure
    remembered = _PROJECTOR_COPIES.get(id(figure))
    if remembered is not None and remembered[0]() is figure:
        return remembered[1]
    styled = projector_style(figure)
    if len(_PROJECTOR_COPIES) >= _PROJECTOR_COPIES_MAX:
        _PROJECTOR_COPIES.pop(next(iter(_PROJECTOR_COPIES)))
    _PROJECTOR_COPIES[id(figure)] = (weakref.ref(figure), styled)
    return styled


def show(figure: go.Figure, key: str, download: str | None = None, **chart_options: Any):
    """Put a figure on screen as the display mode draws it (projector styling, the house theme rather than
    Streamlit's), with PNG and SVG downloads under it when `download` names the files' stem. Returns what
    st.plotly_chart returns (the selection state when `on_select` is given)."""
    shown = for_screen(figure)
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
            yield side, item
