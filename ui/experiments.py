"""Cached helpers of the Experiments page: the results file, its summary and figures, and the measurements on the
current picture that show a model trained without shuffle keeps its groups apart."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import plotly.graph_objects as go
import streamlit as st
from PIL import Image

import ui
from ui import url as ui_url
from shufflenet_viz import experiment, flow, weights
from shufflenet_viz.figures.experiments import curves_figure, error_figure, gain_figure
from shufflenet_viz.figures.flow import influence_figure
from shufflenet_viz.preprocess import preprocess_image

# The stride-2 first unit of a stage concatenates its branch with the pooled input, which straddles the groups;
# from its output on, the stage's units are the stride-1 ones whose structure can keep groups apart.
FLOW_STAGE = "stage3"
FLOW_AFTER = 1


def results_file() -> Path:
    """The results file of the weights folder the app uses (read at call time, like the models)."""
    return experiment.results_path(weights.WEIGHTS_DIR)


# Bounded: a results file is ~50 kB; the key holds its modification time, so a finished run shows after a reload.
@st.cache_data(max_entries=4, show_spinner=False)
def _read(path: str, modified: float) -> dict:
    return experiment.read_results(Path(path))


def results() -> dict | None:
    """The results file's content, or None when there is none; a broken file stops the page with a message."""
    path = results_file()
    if not path.exists():
        return None
    try:
        return _read(str(path), path.stat().st_mtime)
    except experiment.ExperimentError as error:
        st.error(str(error))
        st.stop()


# Figures are cached as objects (read-only): building them costs more than the rest of the page.
# Bounded: 3 figures per results version, a few kB each.
@st.cache_resource(max_entries=12, show_spinner=False)
def figures(path: str, modified: float) -> tuple[experiment.Summary, go.Figure, go.Figure, go.Figure]:
    """The summary, the error figure, the gain figure and the curves of one version of the results file."""
    data = _read(path, modified)
    summary = experiment.summarize(data)
    paper = data.get("paper", {})
    return summary, error_figure(summary, paper), gain_figure(summary, paper), curves_figure(data)


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


# Bounded: one record per no-shuffle model and picture; the matrix is at most 480 x 480 float64 (1.8 MB).
@st.cache_resource(max_entries=8, show_spinner="Measuring channel-to-channel influence on your picture...")
def separation(name: str, weights_dir: str, image_sha256: str, _image: Image.Image) -> Separation:
    """Structure (block-diagonal reachability) and measurement (cross-group influence) for one model of the
    weights folder the app uses (`weights_dir` keeps models of the same name in other folders apart)."""
    loaded = ui.loaded_models()[name]
    model = loaded.model
    steps = flow.stage_reachability(model, FLOW_STAGE, FLOW_AFTER)
    block_diagonal = all(flow.is_block_diagonal(step.connectivity, model.config.groups) for step in steps)
    x = preprocess_image(_image, loaded.preprocessing)
    measured = flow.measure_influence(model, x, FLOW_STAGE, FLOW_AFTER)
    return Separation(name, loaded.label, model.config.groups, block_diagonal, len(steps),
                      measured.cross_group_share, measured)


# Bounded: one figure per set of models and picture, three panels of at most 240 x 240 pooled cells.
@st.cache_resource(max_entries=4, show_spinner=False)
def separation_figure(panels: tuple[tuple[str, str], ...], weights_dir: str, image_sha256: str,
                      _image: Image.Image) -> go.Figure:
    """The measured influence of each (title, model name) side by side; one axis title for all panels."""
    figure = influence_figure([(title, separation(name, weights_dir, image_sha256, _image).influence)
                               for title, name in panels])
    title = figure.layout.xaxis.title.text  # the panels repeat it; under the first one is enough
    figure.update_xaxes(title_text=None)
    figure.update_layout(xaxis_title_text=title)
    return figure


MEASURED_KEY = "experiments_measured"


def run_label(data: dict, name: str) -> str:
    """A run of the experiment by its groups and seed: "g=3, seed 0"."""
    return f"g={data['runs'][name]['groups']}, seed {data['runs'][name]['seed']}"


def measured_input(data: dict, available: list[str]) -> list[str]:
    """The models trained without shuffle that the visitor measures on the picture (a link's `measured`, else
    the first seed of each g: each one measured costs a model load and a Jacobian on the first visit)."""
    first_of_each_g = list({data["runs"][name]["groups"]: name for name in reversed(available)}.values())[::-1]
    ui_url.from_url(MEASURED_KEY, "measured",
                    lambda raw: [name for name in available if name in raw.split(",")] or None,
                    lambda raw: f"The link asks to measure {raw!r}; the models trained without shuffle here are "
                                f"{', '.join(available)}. Measuring {', '.join(first_of_each_g)}.")
    ui_url.keep(MEASURED_KEY, lambda names: set(names) <= set(available), first_of_each_g)
    chosen = st.pills("Measure", available, selection_mode="multi", format_func=lambda name: run_label(data, name),
                      key=MEASURED_KEY)
    return [name for name in available if name in chosen]
