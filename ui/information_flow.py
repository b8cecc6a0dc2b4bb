"""Cached results and figures of the Channel shuffle and Information flow pages.

They live in a module imported once rather than in the page scripts: Streamlit re-executes a page on every run,
and re-decorating a cached function there costs a source lookup each time. Figures and results are cached as
objects (cache_resource, read-only, no copy per run): building the figures costs more than the rest of a page.
"""

from __future__ import annotations

from dataclasses import dataclass

import plotly.graph_objects as go
import streamlit as st
import torch
from PIL import Image

import ui
from shufflenet_viz import flow
from shufflenet_viz.figures.flow import influence_figure, prediction_change_figure, reachability_figure
from shufflenet_viz.figures.shuffle import layered_flow_figure, permutation_wiring_figure, shuffle_animation_figure
from shufflenet_viz.inference import Classification, classify
from shufflenet_viz.preprocess import preprocess_image
from shufflenet_viz.weights import LoadedModel

WIRING_WIDTH_PX = 520  # two models side by side: half of a projector-wide page


@dataclass(frozen=True)
class View:
    """One panel of the Information flow page: a model, with its shuffle on or off, judged in `groups` groups."""

    title: str
    name: str
    shuffle: bool
    groups: int


def flow_views(pair: tuple[LoadedModel, LoadedModel]) -> tuple[View, ...] | None:
    """The panels for a model pair: each distinct model with its shuffle on, then the grouped model with the most
    groups (the right one on a tie) with its shuffle off; None when the pair has no grouped model with shuffle.
    A g=1 model is cut into as many equal parts as that grouped model has groups, for comparison."""
    grouped = [m for m in pair if m.groups > 1 and m.model.config.shuffle]
    if not grouped:
        return None
    off = max(reversed(grouped), key=lambda m: m.groups)
    distinct = list({m.name: m for m in pair}.values())
    short = [f"g={m.groups}" for m in distinct]
    titles = short if len(set(short)) == len(short) else [m.label for m in distinct]
    views = [View(title, m.name, True, m.groups if m.groups > 1 else off.groups) for title, m in zip(titles, distinct)]
    views.append(View(f"{titles[distinct.index(off)]}, shuffle off", off.name, False, off.groups))
    return tuple(views)


# --- Channel shuffle page ---------------------------------------------------------------------------------
# Bounded: 32 animations (~0.3 MB each), 27 Figure 1 settings, 32 wirings (2 models x 16 units).

@st.cache_resource(max_entries=32, show_spinner=False)
def animation_figure(channels: int, groups: int) -> go.Figure:
    """The shuffle animation of `channels` channels in `groups` groups."""
    return shuffle_animation_figure(flow.shuffle_animation(channels, groups))


@st.cache_resource(max_entries=27, show_spinner=False)
def figure1(channels: int, groups: int, layers: int) -> tuple[go.Figure, list[flow.LayeredFlow]]:
    """Stacked group convolutions without and with shuffle, and their figure."""
    stacks = [flow.stacked_group_convs(channels, groups, layers, shuffle) for shuffle in (False, True)]
    return layered_flow_figure(stacks, ["without shuffle", "with shuffle"]), stacks


@st.cache_resource(max_entries=32, show_spinner=False)
def unit_wiring(model_name: str, unit_name: str) -> tuple[go.Figure, torch.Tensor, int]:
    """The wiring figure of the shuffle a loaded model applies in one unit, its permutation and groups."""
    unit = dict(ui.loaded_models()[model_name].model.named_modules())[unit_name]
    channels = unit.mid_channels
    permutation = flow.applied_permutation(unit.shuffle, channels)
    before, after = flow.shuffle_neighbours(unit)
    figure = permutation_wiring_figure(permutation, unit.shuffle.groups,
                                       f"{unit_name}: {channels} channels, g={unit.shuffle.groups}, after the {before}",
                                       plot_width_px=WIRING_WIDTH_PX)
    return figure, permutation, unit.shuffle.groups


# --- Information flow page --------------------------------------------------------------------------------

# Bounded: one copy (~4 MB of weights) per grouped model; a copy, so the shared model is never switched.
@st.cache_resource(max_entries=4, show_spinner=False)
def shuffle_off_copy(name: str) -> LoadedModel:
    """The loaded model `name` with every channel shuffle off."""
    return flow.without_shuffle(ui.loaded_models()[name])


def resolve(name: str, shuffle: bool) -> LoadedModel:
    """A loaded model, or its shuffle-off copy."""
    return ui.loaded_models()[name] if shuffle else shuffle_off_copy(name)


# Bounded: 48 = 3 views x 16 start points; the largest is 3 steps of 1536 x 768 booleans (3.5 MB).
@st.cache_resource(max_entries=48, show_spinner=False)
def structure(name: str, shuffle: bool, stage: str, after: int, groups: int) -> list[flow.ReachStep]:
    """`flow.stage_reachability` for one model, once per start point."""
    return flow.stage_reachability(resolve(name, shuffle).model, stage, after, groups)


# Bounded: 24 figures of three panels of at most 240 x 240 cells (~1.5 MB each).
@st.cache_resource(max_entries=24, show_spinner=False)
def structure_figure(views: tuple[View, ...], stage: str, after: int, step: int) -> go.Figure:
    """The reachability matrices of all views at one unit after the start point."""
    panels = []
    for view in views:
        reached = structure(view.name, view.shuffle, stage, after, view.groups)[step]
        panels.append((view.title, reached.connectivity, view.groups, reached.source_groups))
    return reachability_figure(panels)


# Bounded: 96 captions of a few hundred characters.
@st.cache_data(max_entries=96, show_spinner=False)
def structure_text(views: tuple[View, ...], stage: str, after: int, step: int) -> str:
    """The caption under the structure matrices (see `flow.structure_caption`)."""
    counts = []
    for view in views:
        reached = structure(view.name, view.shuffle, stage, after, view.groups)[step]
        unit_name, unit = flow.stage_units(resolve(view.name, view.shuffle).model, stage)[after]
        counts.append((view.title, flow.reach_counts(reached.connectivity, reached.source_groups, view.groups), unit))
    return flow.structure_caption(counts, views[-1].title, unit_name, step)


# Bounded: one list of at most 16 short records per grouped model.
@st.cache_resource(max_entries=4, show_spinner=False)
def mixing(name: str) -> list[flow.MixingPoint]:
    """Where a model's structure mixes groups with the shuffle off."""
    return flow.mixing_without_shuffle(ui.loaded_models()[name].model)


# Bounded: 12 results (3 views x 4 settings); the largest is a 1536 x 1536 float64 matrix (19 MB).
@st.cache_resource(max_entries=12, show_spinner=False)
def influence(name: str, shuffle: bool, image_sha256: str, stage: str, after: int, units: int | None,
              groups: int, _image: Image.Image) -> flow.Influence:
    """`flow.measure_influence` for one model, picture and span, computed once."""
    loaded = resolve(name, shuffle)
    x = preprocess_image(_image, loaded.preprocessing)
    return flow.measure_influence(loaded.model, x, stage, after, units, groups)


# Bounded: 8 figures of three panels of at most 240 x 240 cells (~1.5 MB each).
@st.cache_resource(max_entries=8, show_spinner=False)
def influence_heatmaps(views: tuple[View, ...], image_sha256: str, stage: str, after: int, units: int | None,
                       _image: Image.Image) -> tuple[go.Figure, list[tuple[View, flow.Influence]]]:
    """The measured influence of all views for one picture and span, and its figure."""
    measured = [(view, influence(view.name, view.shuffle, image_sha256, stage, after, units, view.groups, _image))
                for view in views]
    return influence_figure([(view.title, result) for view, result in measured]), measured


# Bounded: 16 checks of a few numbers each (2 models x 8 settings).
@st.cache_resource(max_entries=16, show_spinner=False)
def placement(name: str, image_sha256: str, stage: str, after: int, _image: Image.Image) -> flow.PlacementCheck:
    """The unit after the start point against itself with the shuffle moved across the depthwise conv."""
    loaded = ui.loaded_models()[name]
    x = preprocess_image(_image, loaded.preprocessing)
    unit_name, unit = flow.stage_units(loaded.model, stage)[after]
    return flow.placement_check(unit_name, unit, flow.activation_at(loaded.model, x, stage, after))


# Bounded: 32 classifications of at most 1000 probabilities each.
@st.cache_data(max_entries=32, show_spinner=False)
def classify_without_shuffle(name: str, image_sha256: str, _image: Image.Image) -> Classification:
    """The picture classified by the shuffle-off copy of model `name`."""
    return classify(shuffle_off_copy(name), _image)


# Bounded: 32 figures of at most ten bars each.
@st.cache_resource(max_entries=32, show_spinner=False)
def ablation_figure(name: str, image_sha256: str, _image: Image.Image) -> go.Figure:
    """The top classes of model `name` for the picture with and without the shuffle."""
    return prediction_change_figure(ui.classify_cached(name, image_sha256, _image),
                                    classify_without_shuffle(name, image_sha256, _image))
