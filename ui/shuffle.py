"""Cached figures of the Channel shuffle page, which the Lesson reuses: the shuffle animated, the paper's
Figure 1 (stacked group convolutions without and with a shuffle) and the shuffle a trained unit applies.

Figures are cached as objects (cache_resource, read-only, no copy per run) and unstyled: `ui.display.show`
styles them for the display mode.
"""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st
import torch

from shufflenet_viz import flow
from shufflenet_viz.figures.shuffle import (NARROW_PLOT_WIDTH_PX, PLOT_WIDTH_PX, layered_flow_figure,
                                            permutation_wiring_figure, shuffle_animation_figure)

from .models import loaded_models
from .screen import narrow_screen

ANIMATION_MARKER_PX = 36  # the Channel shuffle page's channels; a slide's are smaller
WIRING_WIDTH_PX = 520  # two models side by side: half of a projector-wide page
WITHOUT_AND_WITH = (False, True)  # Figure 1's two panels: the same stack without, then with, a shuffle


# Bounded: 32 animations (~0.3 MB each).
@st.cache_resource(max_entries=32, show_spinner=False)
def animation_figure(channels: int, groups: int, vertical: bool = False,
                     largest_marker_px: float = ANIMATION_MARKER_PX) -> go.Figure:
    """The shuffle animation of `channels` channels in `groups` groups (`vertical`: laid out for a phone)."""
    return shuffle_animation_figure(flow.shuffle_animation(channels, groups), largest_marker_px, vertical,
                                    NARROW_PLOT_WIDTH_PX if vertical else PLOT_WIDTH_PX)


def animation_for_screen(channels: int, groups: int, largest_marker_px: float = ANIMATION_MARKER_PX) -> go.Figure:
    """The shuffle animation laid out for the screen: in a column of channels on a narrow one."""
    return animation_figure(channels, groups, narrow_screen(), largest_marker_px)


# Bounded: 32 settings: the page's 27 (three choices of groups, channels per group and layers) and the lesson's 3.
@st.cache_resource(max_entries=32, show_spinner=False)
def _figure1(channels: int, groups: int, layers: int, shuffle: tuple[bool, ...], vertical: bool
             ) -> tuple[go.Figure, list[flow.LayeredFlow]]:
    stacks = [flow.stacked_group_convs(channels, groups, layers, on) for on in shuffle]
    return layered_flow_figure(stacks, ["with shuffle" if on else "without shuffle" for on in shuffle],
                               vertical), stacks


def figure1(channels: int, groups: int, layers: int, shuffle: tuple[bool, ...] = WITHOUT_AND_WITH
            ) -> tuple[go.Figure, list[flow.LayeredFlow]]:
    """Stacked group convolutions, one panel per entry of `shuffle` (without and/or with a shuffle between
    them), and their flows; on a narrow screen the layers run across and the panels one under the other."""
    return _figure1(channels, groups, layers, tuple(shuffle), narrow_screen())


# Bounded: 32 wirings (2 models x 16 units).
@st.cache_resource(max_entries=32, show_spinner=False)
def unit_wiring(model_name: str, unit_name: str) -> tuple[go.Figure, torch.Tensor, int]:
    """The wiring figure of the shuffle a loaded model applies in one unit, its permutation and groups."""
    unit = dict(loaded_models()[model_name].model.named_modules())[unit_name]
    channels = unit.mid_channels
    permutation = flow.applied_permutation(unit.shuffle, channels)
    before, after = flow.shuffle_neighbour_labels(unit)
    figure = permutation_wiring_figure(permutation, unit.shuffle.groups,
                                       f"{unit_name}: {channels} channels, g={unit.shuffle.groups}, after the {before}",
                                       plot_width_px=WIRING_WIDTH_PX)
    return figure, permutation, unit.shuffle.groups
