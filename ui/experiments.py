"""Cached helpers of the Experiments page: the results file, its summary and figures, and the measurements on the
current picture that show a model trained without shuffle keeps its groups apart."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import plotly.graph_objects as go
import streamlit as st
from PIL import Image

import ui
from shufflenet_viz import experiment_results, flow, weights
from shufflenet_viz.figures.experiments import curves_figure, error_figure, gain_figure
from shufflenet_viz.figures.flow import influence_figure

from .activations import model_input
from .display import show
from .heavy_work import heavy_turn
from .url import bound_choice

# The stride-2 first unit of a stage concatenates its branch with the pooled input, which straddles the groups;
# from its output on, the stage's units are the stride-1 ones whose structure can keep groups apart.
FLOW_STAGE = "stage3"
FLOW_AFTER = 1


def results_file() -> Path:
    """The results file of the weights folder the app uses (read at call time, like the models)."""
    return experiment_results.results_path(weights.WEIGHTS_DIR)


# Bounded: a results file is ~50 kB; the key holds its modification time, so a finished run shows after a reload.
@st.cache_data(max_entries=4, show_spinner=False)
def _read(path: str, modified: float) -> dict:
    return experiment_results.read_results(Path(path))


def results() -> dict | None:
    """The results file's content, or None when there is none; a broken file stops the page with a message."""
    path = results_file()
    if not path.exists():
        return None
    try:
        return _read(str(path), path.stat().st_mtime)
    except experiment_results.ExperimentError as error:
        st.error(str(error))
        st.stop()


# Figures are cached as objects (read-only): building them costs more than the rest of the page.
# Bounded: 3 figures per results version, a few kB each.
@st.cache_resource(max_entries=12, show_spinner=False)
def figures(path: str, modified: float) -> tuple[experiment_results.Summary, go.Figure, go.Figure, go.Figure]:
    """The summary, the error figure, the gain figure and the curves of one version of the results file."""
    data = _read(path, modified)
    summary = experiment_results.summarize(data)
    paper = data.get("paper", {})
    return summary, error_figure(summary, paper), gain_figure(summary), curves_figure(data)


@dataclass(frozen=True)
class Separation:
    """What a model trained without shuffle does with the current picture's channel groups."""

    name: str
    label: str
    groups: int
    block_diagonal: bool
    units: int
    cross_group_share: float
    influence: flow.Influence


# Bounded: one slot per no-shuffle model and picture, holding one record whose matrix is at most 480 x 480 float64
# (1.8 MB). A slot is filled only when its measurement finishes; one the visitor stopped waiting for stays empty.
@st.cache_resource(max_entries=8, show_spinner=False)
def _separation_slot(name: str, weights_dir: str, image_sha256: str) -> dict:
    return {}


def separation(name: str, weights_dir: str, image_sha256: str, image: Image.Image) -> Separation | None:
    """Structure (block-diagonal reachability) and measurement (cross-group influence) for one model of the
    weights folder the app uses (`weights_dir` keeps models of the same name in other folders apart). The
    measurement is heavy work: it waits for its turn (None when the visitor stopped waiting)."""
    slot = _separation_slot(name, weights_dir, image_sha256)
    if "result" in slot:
        return slot["result"]
    loaded = ui.loaded_models()[name]
    with heavy_turn(f"The influence measurement of {loaded.label}", f"separation_{name}",
                    (name, weights_dir, image_sha256)) as may_run:
        if not may_run:
            return None
        with st.spinner("Measuring channel-to-channel influence on your picture..."):
            model = loaded.model
            steps = flow.stage_reachability(model, FLOW_STAGE, FLOW_AFTER)
            block_diagonal = all(flow.is_block_diagonal(step.connectivity, model.config.groups) for step in steps)
            measured = flow.measure_influence(model, model_input(name, image_sha256, image), FLOW_STAGE, FLOW_AFTER)
        slot["result"] = Separation(name, loaded.label, model.config.groups, block_diagonal, len(steps),
                                    measured.cross_group_share, measured)
    return slot["result"]


# Bounded: one figure per set of models and picture, three panels of at most 240 x 240 pooled cells.
@st.cache_resource(max_entries=4, show_spinner=False)
def separation_figure(panels: tuple[tuple[str, str], ...], weights_dir: str, image_sha256: str,
                      _measured: tuple[Separation, ...]) -> go.Figure:
    """The measured influence of each (title, model name) side by side (`_measured`: their Separations, in the
    same order); one axis title for all panels."""
    figure = influence_figure([(title, item.influence) for (title, _), item in zip(panels, _measured)])
    title = figure.layout.xaxis.title.text  # the panels repeat it; under the first one is enough
    figure.update_xaxes(title_text=None)
    figure.update_layout(xaxis_title_text=title)
    return figure


def run_label(data: dict, name: str) -> str:
    """A run of the experiment by its groups and seed: "g=3, seed 0"."""
    return f"g={data['runs'][name]['groups']}, seed {data['runs'][name]['seed']}"


def measured_input(data: dict, available: list[str]) -> list[str]:
    """The models trained without shuffle that the visitor measures on the picture, kept in the URL as
    `measured` (at first the first seed of each g: each one measured costs a model load and a Jacobian on the
    first visit)."""
    first_of_each_g = list({data["runs"][name]["groups"]: name for name in reversed(available)}.values())[::-1]
    chosen = bound_choice(st.pills, "Measure", available, key="measured", default=first_of_each_g,
                          selection_mode="multi", format_func=lambda name: run_label(data, name))
    return [name for name in available if name in chosen]


def show_separation(data: dict, chosen: list[str], image) -> None:
    """For each chosen model: the measured share of influence that crosses groups, whether its structure is
    block-diagonal, and the influence matrices side by side."""
    if not chosen:
        st.info("Pick one or more of the models above to measure them on your picture.")
        return
    measured = [separation(name, str(weights.WEIGHTS_DIR), image.sha256, image.image) for name in chosen]
    measured = [item for item in measured if item is not None]  # None: the visitor stopped waiting for it
    if not measured:
        return
    for column, item in zip(st.columns(len(measured)), measured):
        column.metric(f"g={item.groups} trained without shuffle, seed {data['runs'][item.name]['seed']}",
                      flow.format_share(item.cross_group_share),
                      help=f"{item.name}: share of the measured channel-to-channel influence that crosses "
                           f"groups over {item.units} units")
        column.caption(f"structure block-diagonal: {'yes' if item.block_diagonal else 'no'}")
    panels = tuple((run_label(data, item.name), item.name) for item in measured)
    show(separation_figure(panels, str(weights.WEIGHTS_DIR), image.sha256, tuple(measured)), "experiments_influence")
    st.caption("Influence of each start channel (columns) on each output channel (rows), summed over "
               "positions; white is exactly zero. Every block off the diagonal is white: no group hears another.")
