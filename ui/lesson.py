"""Cached results and shared widgets of the Unit, Cost and Lesson pages (kept out of the page scripts, which
Streamlit re-executes on every run): the unit diagram of a model on the current picture, the feature maps of
a node, the cost figures, the slide exports and figure downloads."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import plotly.graph_objects as go
import streamlit as st
from PIL import Image

import ui
from ui import feature_maps as ui_features
from ui import flops as ui_flops
from shufflenet_viz import export, flow
from shufflenet_viz.cost import affordable_widths
from shufflenet_viz.features import channel_groups
from shufflenet_viz.figures.common import projector_style
from shufflenet_viz.figures.cost import affordable_width_figure, formula_figure, op_share_figure
from shufflenet_viz.figures.features import feature_grid_figure
from shufflenet_viz.figures.shuffle import layered_flow_figure, shuffle_animation_figure
from shufflenet_viz.figures.unit import unit_diagram_figure
from shufflenet_viz.preprocess import preprocess_image
from shufflenet_viz.unit_diagram import UnitDiagram, dense_counterpart, live_unit_diagram

NODE_TILES = {False: (48, 12), True: (24, 8)}  # projector mode -> (feature maps shown for a node, columns)
LESSON_CHANNELS = {False: 24, True: 12}  # projector mode -> channels of the lesson's shuffle animation


# --- the unit diagram -------------------------------------------------------------------------------------

# Bounded: 64 diagrams (16 units x 4 model/picture pairs), each a dozen small records.
@st.cache_resource(max_entries=64, show_spinner=False)
def diagram(model_name: str, image_sha256: str, unit_name: str, _image: Image.Image) -> UnitDiagram:
    """The live diagram of a unit of a loaded model on the picture with this sha256 (one forward pass)."""
    loaded = ui.loaded_models()[model_name]
    return live_unit_diagram(loaded.model, unit_name, preprocess_image(_image, loaded.preprocessing))


# Bounded: 64 counterparts; they depend on the architecture and input size only.
@st.cache_resource(max_entries=64, show_spinner=False)
def dense_diagram(model_name: str, unit_name: str) -> UnitDiagram:
    """Panel (a) for a unit of a loaded model: dense 1x1 convolutions, no shuffle, same place in the network."""
    loaded = ui.loaded_models()[model_name]
    return dense_counterpart(loaded.model, unit_name, loaded.preprocessing.input_size)


# Bounded: 64 figures of about twenty traces and shapes each.
@st.cache_resource(max_entries=64, show_spinner=False)
def diagram_figure(model_name: str, image_sha256: str, unit_name: str, panel: str, selected: str | None,
                   title: str, _image: Image.Image, compact: bool = False) -> go.Figure:
    """The figure of the live unit (panel "live") or of its dense counterpart (panel "a")."""
    shown = dense_diagram(model_name, unit_name) if panel == "a" else \
        diagram(model_name, image_sha256, unit_name, _image)
    return unit_diagram_figure(shown, title, selected, compact)


# Bounded: 8 grids of at most 48 tiles (1.7 MB each at 224x224; rebuilt in tens of ms from the cached capture).
@st.cache_resource(max_entries=8, show_spinner=False)
def node_feature_figure(model_name: str, image_sha256: str, point: str, channels: tuple[int, int] | None,
                        tiles: int, columns: int, title: str, _image: Image.Image) -> tuple[go.Figure, int]:
    """The first `tiles` feature maps of a node's channels at its capture point, framed by the group each
    came from; and how many channels the node has."""
    loaded = ui.loaded_models()[model_name]
    feature = ui_features.features_of(model_name, image_sha256, _image)[point][0]
    groups = channel_groups(loaded.model, point)
    start, stop = channels if channels is not None else (0, feature.shape[0])
    shown = np.arange(start, min(stop, start + tiles))
    figure = feature_grid_figure(feature[shown].numpy(), shown, groups.origin[shown], title,
                                 bar_groups=groups.reader[shown] if groups.moved else None, columns=columns)
    return figure, stop - start


# --- cost ------------------------------------------------------------------------------------------------

@st.cache_resource(max_entries=64, show_spinner=False)
def formula_figure_cached(c: int, m: int, g: int, h: int, w: int, macs: tuple[tuple[str, float], ...]):
    """`formula_figure` of one setting."""
    return formula_figure(dict(macs), f"One unit: c={c}, m={m}, g={g}, {h}x{w}")


@st.cache_resource(max_entries=1, show_spinner=False)
def widths():
    """(budget, rows) of `cost.affordable_widths` at the paper's Stage 2."""
    return affordable_widths()


@st.cache_resource(max_entries=1, show_spinner=False)
def widths_figure():
    """The affordable-width figure at the paper's Stage 2 (28x28, budget of the g=1 unit)."""
    budget, rows = widths()
    return affordable_width_figure(budget, rows, 28, "What one Stage 2 unit costs, and the width each g affords")


# --- the lesson's figures -------------------------------------------------------------------------------

@st.cache_resource(max_entries=8, show_spinner=False)
def flow_figure(channels: int, groups: int, layers: int, shuffle: tuple[bool, ...]):
    """The paper's Figure 1 panels for these settings (with and/or without shuffle), and their flows."""
    stacks = [flow.stacked_group_convs(channels, groups, layers, on) for on in shuffle]
    return layered_flow_figure(stacks, ["with shuffle" if on else "without shuffle" for on in shuffle]), stacks


@st.cache_resource(max_entries=1, show_spinner=False)
def pointwise_figure():
    """The g=1 network's multiply-adds (224x224) by kind of op."""
    return op_share_figure(ui_flops.report(1, 1.0, 224, 1000),
                           "Million multiply-adds of ShuffleNet g=1 (dense 1x1), 224x224")


# --- the lesson's shuffle animation and its exports ------------------------------------------------------

@st.cache_resource(max_entries=8, show_spinner=False)
def animation(channels: int, groups: int) -> go.Figure:
    """The shuffle animation (the Channel shuffle page's figure)."""
    return shuffle_animation_figure(flow.shuffle_animation(channels, groups))


# Bounded: 8 files of ~5 MB (plotly.js is embedded).
@st.cache_data(max_entries=8, show_spinner=False)
def animation_html(channels: int, groups: int, projector: bool) -> str:
    """The animation as one self-contained HTML file (plays with no network)."""
    figure = animation(channels, groups)
    return export.animation_html(projector_style(figure) if projector else figure,
                                 f"Channel shuffle, C={channels}, g={groups}")


# Bounded: 8 GIFs of ~0.3 MB. Rendering takes seconds (one Chromium, one frame after the other), so once.
@st.cache_data(max_entries=8, show_spinner="Rendering the frames in a headless Chromium...")
def animation_gif(channels: int, groups: int, projector: bool) -> bytes:
    """The animation as a looping GIF."""
    figure = animation(channels, groups)
    return export.animation_gif(projector_style(figure) if projector else figure)


def animation_exports(channels: int, groups: int, key: str) -> None:
    """Download buttons: the animation as offline HTML, and (where Chromium renders) as an animated GIF."""
    projector = ui.projector_mode()
    html_column, gif_column = st.columns(2)
    html_column.download_button(
        "Animation as HTML (plays offline)", lambda: animation_html(channels, groups, projector),
        file_name=f"channel_shuffle_C{channels}_g{groups}.html", mime="text/html", key=f"{key}_html",
        icon=":material/download:", on_click="ignore",
        help="One file with plotly.js inside: open it in any browser, no network needed.")
    problem = export.static_export_problem()
    if problem:
        gif_column.info(problem)
        return
    gif_key = f"{key}_gif_{channels}_{groups}_{projector}"
    if not st.session_state.get(gif_key):
        if gif_column.button("Make the animated GIF", key=f"{key}_make_gif", icon=":material/movie:",
                             help="Renders every frame in a headless Chromium: a few seconds."):
            try:
                st.session_state[gif_key] = animation_gif(channels, groups, projector)
            except export.ExportError as error:
                gif_column.error(str(error))
                return
    if st.session_state.get(gif_key):
        gif_column.download_button("Animation as GIF (for slides)", st.session_state[gif_key],
                                   file_name=f"channel_shuffle_C{channels}_g{groups}.gif", mime="image/gif",
                                   key=f"{key}_gif", icon=":material/download:", on_click="ignore")


# --- figures with downloads ------------------------------------------------------------------------------

def show_figure(figure: go.Figure, key: str, file_stem: str, **chart_options: Any):
    """Draw a figure for the current display mode, with PNG and SVG downloads under it; returns what
    st.plotly_chart returns (the selection state when `on_select` is given)."""
    shown = ui.for_screen(figure)
    state = st.plotly_chart(shown, theme=None, key=key, **chart_options)
    problem = export.static_export_problem()
    with st.popover("Download this figure", icon=":material/download:"):
        if problem:
            st.info(problem)
        else:
            for image_format in export.STATIC_FORMATS:
                st.download_button(
                    f"{image_format.upper()}", _renderer(shown, image_format), file_name=f"{file_stem}.{image_format}",
                    mime=export.STATIC_FORMATS[image_format], key=f"{key}_{image_format}", on_click="ignore")
    return state


def _renderer(figure: go.Figure, image_format: str) -> Callable[[], bytes]:
    # Deferred: rendered in Chromium only when the button is pressed, never on a page run.
    return lambda: export.figure_image(figure, image_format, width=1280)

