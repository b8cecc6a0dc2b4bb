"""The Feature maps page's figures and per-side views; the feature grid is also The unit page's (a node's
channels). Kept out of the page script, which Streamlit re-executes on every run."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st
from PIL import Image

from shufflenet_viz.features import (channel_groups_at, channel_order, describe_channel, describe_point_groups,
                                     group_name)
from shufflenet_viz.figures.features import (GRID_COLUMNS, TILES_PER_PAGE, channel_figure, feature_grid_figure,
                                            page_count, page_slice)
from shufflenet_viz.weights import LoadedModel

from .activations import features_of
from .display import show
from .models import loaded_models
from .picture import CurrentImage
from .screen import narrow_screen
from .state import SIDES
from .url import bound_number

CONTEXT_KEY = "fm_shown_at"  # URL-bound widget key -> the point (and order) its value was picked for
# A phone's grid: tiles of at least 40 CSS pixels on a 390-pixel screen, so fewer per row and per page.
NARROW_GRID_COLUMNS = 6
NARROW_TILES_PER_PAGE = 36


def grid_shape() -> tuple[int, int]:
    """(tiles per page, tiles per row) of a feature-map grid on this screen."""
    return (NARROW_TILES_PER_PAGE, NARROW_GRID_COLUMNS) if narrow_screen() else (TILES_PER_PAGE, GRID_COLUMNS)


# Bounded: 24 figures of at most 96 tiles (up to 1.5 MB each at 224x224): the Feature maps page's grids and The unit
# page's node grids (48 tiles at most). Building a plotly figure costs tens of ms, so a rerun that changes nothing
# but one widget reuses the others' figures; each is rebuilt in tens of ms from the cached capture. Figures are only
# read afterwards.
@st.cache_resource(max_entries=24, show_spinner=False)
def feature_grid(model_name: str, image_sha256: str, point: str, channels: tuple[int, ...], title: str,
                 _image: Image.Image, columns: int = GRID_COLUMNS) -> go.Figure:
    """The feature maps of `channels` at a capture point, in that order: frames by where each channel came from,
    bars (where it differs) by the group that reads it next."""
    loaded = loaded_models()[model_name]
    feature = features_of(model_name, image_sha256, _image)[point][0]
    groups = channel_groups_at(loaded.model, point)
    shown = np.asarray(channels)
    return feature_grid_figure(feature[shown].numpy(), shown, groups.origin[shown], title,
                               bar_groups=groups.reader[shown] if groups.moved else None, columns=columns)


# Bounded: 64 figures of one channel (at most 224 x 224 values).
@st.cache_resource(max_entries=64, show_spinner=False)
def large_channel_figure(model_name: str, image_sha256: str, point: str, channel: int,
                         _image: Image.Image) -> go.Figure:
    """One channel of a point drawn large, titled with the group it came from (and the one reading it)."""
    loaded = loaded_models()[model_name]
    values = features_of(model_name, image_sha256, _image)[point][0, channel].numpy()
    groups = channel_groups_at(loaded.model, point)
    origin, reader = int(groups.origin[channel]), int(groups.reader[channel])
    title = f"Channel {channel}, {group_name(origin)}" if origin == reader else \
        f"Channel {channel}: from {group_name(origin)}, read by {group_name(reader)}"
    return channel_figure(values, origin, title)


def fresh_for(key: str, shown_at: str, default: int) -> None:
    """Start the URL-bound widget `key` at `default` when what it picks from (`shown_at`: a point and order)
    changed since its value was picked: another layer is a fresh grid, not the old page and channel. A link's
    value, read before anything was shown, stays."""
    seen = st.session_state.setdefault(CONTEXT_KEY, {})
    if seen.get(key, shown_at) != shown_at:
        st.session_state[key] = default
    seen[key] = shown_at


def _pagination(label: str, low: int, high: int, default: int, **kwargs) -> int:
    # st.pagination as `bound_number` calls a slider: pages `low` (1) to `high`, no label.
    return st.pagination(high, default=default, **kwargs)


def pick_page(channels: int, side: int, shown_at: str) -> int:
    """The page of tiles to show: a pagination widget, kept in the URL as left_page or right_page, when there is
    more than one."""
    pages = page_count(channels, grid_shape()[0])
    if pages == 1:
        return 1
    key = f"{SIDES[side]}_page"
    fresh_for(key, shown_at, 1)
    return bound_number(_pagination, "Page", 1, pages, key=key, default=1)


def grid(loaded: LoadedModel, current: CurrentImage, point: str, ordering: str, page: int, title: str,
         key: str) -> None:
    """One page of a point's channels in the given order, with what its colours mean."""
    feature = features_of(loaded.name, current.sha256, current.image)[point]
    per_page, columns = grid_shape()
    shown = channel_order(feature, ordering)[page_slice(min(page, page_count(feature.shape[1], per_page)),
                                                        feature.shape[1], per_page)]
    show(feature_grid(loaded.name, current.sha256, point, tuple(shown.tolist()), title, current.image, columns),
         key)
    channels, height, width = feature.shape[1:]
    st.caption(f"Channels {shown.size} of {channels} on this page ({height}x{width} each): "
               + ", ".join(str(c) for c in shown[:8]) + (" ..." if shown.size > 8 else ""))
    st.caption(describe_point_groups(loaded.model, point))


def inspect_channel(loaded: LoadedModel, current: CurrentImage, point: str, default: int, side: int,
                    shown_at: str) -> None:
    """One channel large with its value range, where it came from and which group reads it (its index kept in the
    URL as left_channel or right_channel)."""
    feature = features_of(loaded.name, current.sha256, current.image)[point][0]
    key = f"{SIDES[side]}_channel"
    fresh_for(key, shown_at, default)
    channel = bound_number(st.number_input, "Channel to see large", 0, feature.shape[0] - 1, key=key,
                           default=default, help="Its index at this point (0-based).")
    show(large_channel_figure(loaded.name, current.sha256, point, channel, current.image), f"{key}_figure")
    values = feature[channel]
    st.caption(f"Values from {values.min():.3f} to {values.max():.3f} (mean {values.mean():.3f}). "
               + describe_channel(loaded.model, point, channel))


def strongest_channel(loaded: LoadedModel, current: CurrentImage, point: str, ordering: str) -> int:
    """The first channel of a point in the given order (the strongest, unless the order is the index)."""
    return int(channel_order(features_of(loaded.name, current.sha256, current.image)[point], ordering)[0])

