"""The Lesson's own figure and the exports of its shuffle animation; its other screens reuse the caches of the
Channel shuffle, The unit, Cost arithmetic and Classify pages. Kept out of the page script, which Streamlit
re-executes on every run."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from shufflenet_viz import export
from shufflenet_viz.figures.common import projector_style
from shufflenet_viz.figures.cost import op_share_figure

from .flops import report
from .shuffle import animation_figure
from .state import projector_mode
from .url import from_url

STEP_KEY = "lesson_step"
LESSON_CHANNELS = {False: 24, True: 12}  # projector mode -> channels of the lesson's shuffle animation
PROJECTOR_CHART_PX = 420  # below the step's title and buttons on a 720-pixel screen


def open_step(steps: int) -> int:
    """The step to show: a link's (?step=3) when it is new to this session and one of 1 to `steps` (else one
    warning line), otherwise the step open before (1 at first)."""
    from_url(STEP_KEY, "step", lambda raw: int(raw) if 1 <= int(raw) <= steps else None,
             lambda raw: f"The link asks for step {raw!r}; the lesson has steps 1 to {steps}. Starting at step 1.")
    return st.session_state.setdefault(STEP_KEY, 1)


def go_to(step: int) -> None:
    """Open step `step` (the URL follows at the end of the run)."""
    st.session_state[STEP_KEY] = step


def fit() -> dict:
    """Chart options that keep a step on one projector screen (1280x720) in projector mode."""
    return {"height": PROJECTOR_CHART_PX} if projector_mode() else {}


# Bounded: one figure.
@st.cache_resource(max_entries=1, show_spinner=False)
def pointwise_figure() -> go.Figure:
    """The g=1 network's multiply-adds (224x224) by kind of op."""
    return op_share_figure(report(1, 1.0, 224, 1000), "Million multiply-adds of ShuffleNet g=1 (dense 1x1), 224x224")


def pointwise_share() -> float:
    """The share of the g=1 network's multiply-adds (224x224) spent in 1x1 convolutions."""
    counted = report(1, 1.0, 224, 1000)
    ops = [op for unit in counted.units for op in unit.ops]
    return sum(op.macs for op in ops if op.op in ("compress_conv", "expand_conv")) / counted.total_macs


# Bounded: 8 files of ~5 MB (plotly.js is embedded).
@st.cache_data(max_entries=8, show_spinner=False)
def animation_html(channels: int, groups: int, projector: bool) -> str:
    """The animation as one self-contained HTML file (plays with no network)."""
    figure = animation_figure(channels, groups)
    return export.animation_html(projector_style(figure) if projector else figure,
                                 f"Channel shuffle, C={channels}, g={groups}")


# Bounded: 8 GIFs of ~0.3 MB. Rendering takes seconds (one Chromium, one frame after the other), so once.
@st.cache_data(max_entries=8, show_spinner="Rendering the frames in a headless Chromium...")
def animation_gif(channels: int, groups: int, projector: bool) -> bytes:
    """The animation as a looping GIF."""
    figure = animation_figure(channels, groups)
    return export.animation_gif(projector_style(figure) if projector else figure)


def animation_exports(channels: int, groups: int, key: str) -> None:
    """Download buttons: the animation as offline HTML, and (where Chromium renders) as an animated GIF."""
    projector = projector_mode()
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
