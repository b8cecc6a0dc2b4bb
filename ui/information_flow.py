"""Cached results and figures of the Information flow page.

They live in a module imported once rather than in the page scripts: Streamlit re-executes a page on every run,
and re-decorating a cached function there costs a source lookup each time. Figures and results are cached as
objects (cache_resource, read-only, no copy per run): building the figures costs more than the rest of a page.
"""

from __future__ import annotations

from dataclasses import dataclass

import plotly.graph_objects as go
import streamlit as st
from PIL import Image

import ui
from shufflenet_viz import flow
from shufflenet_viz.features import layer_names, point_name
from shufflenet_viz.figures.flow import influence_figure, prediction_change_figure, reachability_figure
from shufflenet_viz.inference import Classification, classify
from shufflenet_viz.weights import LoadedModel

from .activations import features_of, model_input


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


# --- Information flow page --------------------------------------------------------------------------------

UNIT_KEY = "unit"  # the unit slider, and its URL parameter
FOLLOWED_FROM_KEY = "flow_unit_start"  # the start point the unit slider was last drawn for


def follow_from(start: str, unit_names: list[str]) -> None:
    """Before the unit slider is drawn: a start point other than the one it was last drawn for follows the flow
    from its first unit again (on a page's first run, a link's unit stands)."""
    if st.session_state.get(FOLLOWED_FROM_KEY, start) != start:
        st.session_state[UNIT_KEY] = unit_names[0]
    st.session_state[FOLLOWED_FROM_KEY] = start


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
    # The shuffle-off copy receives the picture as the model it copies does.
    return flow.measure_influence(resolve(name, shuffle).model, model_input(name, image_sha256, _image), stage, after,
                                  units, groups)


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
    model = ui.loaded_models()[name].model
    units = flow.stage_units(model, stage)
    unit_name, unit = units[after]
    # The activation `after` units into the stage is the output of the layer before that unit.
    before = layer_names(model)[model.unit_names().index(units[0][0]) + after]
    return flow.placement_check(unit_name, unit, features_of(name, image_sha256, _image)[point_name(before, "output")])


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


def placements(views: tuple[View, ...], image, stage: str, after: int) -> None:
    """One line per grouped model with its shuffle on: its unit after the start point, and what moving that
    unit's shuffle across the depthwise conv changes on the picture."""
    for view in views:
        loaded = ui.loaded_models()[view.name]
        if loaded.groups == 1:
            continue
        check = placement(view.name, image.sha256, stage, after, image.image)
        unit = flow.stage_units(loaded.model, stage)[after][1]
        every = bool((check.groups_read > 0).all())
        change = (f"changes {check.unit_name}'s output by at most {check.max_output_difference:.1e}"
                  if check.max_output_difference else f"leaves {check.unit_name}'s output bit for bit the same")
        st.markdown(
            f"- **{loaded.label}**, {check.layout} layout: {flow.describe_unit_parts(unit)}. Moving the shuffle "
            f"{check.moved_to} (filters permuted to match) {change} (largest output value "
            f"{check.output_scale:.1f}); the channel-to-channel connectivity is "
            f"{'identical' if check.same_connectivity else 'different'}. Its shuffle is {check.index_map}, and "
            + ("every group of the next 1x1 GConv reads from every group." if every else
               f"{int((check.groups_read > 0).all(axis=1).sum())} of {loaded.groups} groups of the next 1x1 "
               f"GConv read from every group."))


def stored_accuracy(grouped: LoadedModel) -> None:
    """The accuracy with and without the shuffle stored in the weights manifest, beside the paper's Table 3 row
    for the model's width and g (when the paper has one)."""
    paper = flow.paper_ablation(grouped.model.config.width, grouped.groups)
    accuracy = flow.manifest_ablation(grouped)
    if accuracy is None:
        st.info(f"No accuracy with and without the shuffle is stored for {grouped.label}. This page shows only the "
                f"numbers recorded with the model when it was trained, and this model came without them; it "
                f"measures none itself.")
        return
    scores = st.columns(3)
    scores[0].metric("Our accuracy, shuffle on", f"{accuracy.with_shuffle:.1%}")
    scores[1].metric("Our accuracy, shuffle off", f"{accuracy.without_shuffle:.1%}",
                     delta=f"{(accuracy.without_shuffle - accuracy.with_shuffle) * 100:+.1f} points")
    if paper is not None:
        scores[2].metric(f"Paper, {paper.model}: error without / with shuffle",
                         f"{paper.error_without_shuffle:.1f}% / {paper.error_with_shuffle:.1f}%")
    st.caption(f"Ours: {accuracy.images}, {accuracy.source}, so every machine shows the same numbers; guessing "
               f"would score {flow.format_share(1 / len(grouped.classes))}."
               + (f" Paper: {paper.source}." if paper is not None else ""))
