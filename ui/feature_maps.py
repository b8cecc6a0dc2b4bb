"""Cached captures and figures of the Feature maps page (kept out of the page script, which Streamlit re-executes
on every run)."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch
from PIL import Image

import ui
from ui.activations import features_of
from shufflenet_viz.features import channel_groups, channel_order, group_name
from shufflenet_viz.figures.features import channel_figure, feature_grid_figure, page_slice


# Bounded: 16 figures of at most 96 tiles (up to 1.5 MB each at 224x224). Building a plotly figure costs tens of ms,
# so a rerun that changes nothing but one widget reuses the others' figures. Figures are only read afterwards.
@st.cache_resource(max_entries=16, show_spinner=False)
def grid_figure(model_name: str, image_sha256: str, point: str, ordering: str, page: int, title: str,
                _image: Image.Image) -> tuple[go.Figure, np.ndarray]:
    """The figure of one page of a point's channels in the given ordering, and the channel indices it shows:
    frames by where each channel came from, bars (where it differs) by the group that reads it next."""
    loaded = ui.loaded_models()[model_name]
    feature = features_of(model_name, image_sha256, _image)[point]
    groups = channel_groups(loaded.model, point)
    shown = channel_order(feature, ordering)[page_slice(page, feature.shape[1])]
    figure = feature_grid_figure(feature[0, shown].numpy(), shown, groups.origin[shown], title,
                                 bar_groups=groups.reader[shown] if groups.moved else None)
    return figure, shown


@st.cache_resource(max_entries=64, show_spinner=False)
def large_channel_figure(model_name: str, image_sha256: str, point: str, channel: int,
                         _image: Image.Image) -> go.Figure:
    """One channel of a point drawn large, titled with the group it came from (and the one reading it)."""
    loaded = ui.loaded_models()[model_name]
    values = features_of(model_name, image_sha256, _image)[point][0, channel].numpy()
    groups = channel_groups(loaded.model, point)
    origin, reader = int(groups.origin[channel]), int(groups.reader[channel])
    title = f"Channel {channel}, {group_name(origin)}" if origin == reader else \
        f"Channel {channel}: from {group_name(origin)}, read by {group_name(reader)}"
    return channel_figure(values, origin, title)
