"""Feature maps: every channel at one point of one layer for the current picture, both models side by side."""

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch

import ui
from shufflenet_viz.features import (ORDERINGS, POINT_LABELS, STEM, UNIT_POINTS, capture_features, channel_groups,
                                     channel_order, layer_names, point_name)
from shufflenet_viz.figures.features import channel_figure, feature_grid_figure, page_count, page_slice
from shufflenet_viz.preprocess import preprocess_image
from shufflenet_viz.weights import LoadedModel

ui.ensure_shell()

SHUFFLE_PAIR = "shuffle_pair"
VIEWS = {SHUFFLE_PAIR: "before and after the channel shuffle", **{part: POINT_LABELS[part] for part in UNIT_POINTS}}
DEFAULT_LAYER = "stage2.unit2"


# Bounded: 16 entries (8 pictures x 2 models). One entry holds every point of one forward pass: 0.25M-0.42M
# floats (1-1.7 MB) for a 64x64 CIFAR model (g=1, g=3), about 5.1M (21 MB) for a 224x224 g=3 ImageNet model.
@st.cache_resource(max_entries=16, show_spinner="Running the model once to capture every layer...")
def features_of(model_name: str, image_sha256: str, _image) -> dict[str, torch.Tensor]:
    """`capture_features` of the model for the picture with this sha256 (one forward pass, shared read-only)."""
    loaded = ui.loaded_models()[model_name]
    return capture_features(loaded.model, preprocess_image(_image, loaded.preprocessing))


def pick_page(channels: int, key: str) -> int:
    """The page of tiles to show (a pagination widget when there is more than one)."""
    pages = page_count(channels)
    if pages == 1:
        return 1
    return st.pagination(pages, key=key)


# Bounded: 64 figures of at most 96 tiles (a few hundred KB each). Building a plotly figure costs tens of ms,
# so a rerun that changes nothing but one widget reuses the others' figures. Figures are only read afterwards.
@st.cache_resource(max_entries=64, show_spinner=False)
def grid_figure(model_name: str, image_sha256: str, point: str, ordering: str, page: int, title: str,
                _image) -> tuple[go.Figure, np.ndarray]:
    """The figure of one page of a point's channels in the given ordering, and the channel indices it shows."""
    loaded = ui.loaded_models()[model_name]
    feature = features_of(model_name, image_sha256, _image)[point]
    groups = channel_groups(loaded.model, point)
    shown = channel_order(feature, ordering)[page_slice(page, feature.shape[1])]
    figure = feature_grid_figure(feature[0, shown].numpy(), shown, groups.origin[shown], title,
                                 bar_groups=groups.current[shown] if groups.moved else None)
    return figure, shown


@st.cache_resource(max_entries=64, show_spinner=False)
def large_channel_figure(model_name: str, image_sha256: str, point: str, channel: int, _image) -> go.Figure:
    """One channel of a point drawn large."""
    loaded = ui.loaded_models()[model_name]
    values = features_of(model_name, image_sha256, _image)[point][0, channel].numpy()
    group = int(channel_groups(loaded.model, point).current[channel])
    group_text = "no group (stem)" if group < 0 else f"group {group + 1}"
    return channel_figure(values, group, f"Channel {channel}, {group_text}")


def grid(loaded: LoadedModel, point: str, ordering: str, page: int, title: str, key: str) -> np.ndarray:
    """Draw one page of a point's channels; returns the channel indices shown."""
    figure, shown = grid_figure(loaded.name, current.sha256, point, ordering, page, title, current.image)
    st.plotly_chart(figure, theme=None, key=key)
    channels, height, width = features_of(loaded.name, current.sha256, current.image)[point].shape[1:]
    st.caption(f"Channels {shown.size} of {channels} on this page ({height}x{width} each): "
               + ", ".join(str(c) for c in shown[:8]) + (" ..." if shown.size > 8 else ""))
    return shown


def inspect_channel(loaded: LoadedModel, point: str, default: int, key: str) -> None:
    """One channel large with its value range; after a shuffle, where it came from."""
    feature = features_of(loaded.name, current.sha256, current.image)[point][0]
    groups = channel_groups(loaded.model, point)
    channel = st.number_input("Channel to see large", 0, feature.shape[0] - 1, value=int(default), key=key,
                              help="Its index at this point (0-based).")
    st.plotly_chart(large_channel_figure(loaded.name, current.sha256, point, channel, current.image), theme=None,
                    key=f"{key}_figure")
    values = feature[channel]
    st.caption(f"Values from {values.min():.3f} to {values.max():.3f} (mean {values.mean():.3f}).")
    if groups.origin[channel] != groups.current[channel]:
        st.caption(f"It carries channel {groups.source[channel]} of the first 1x1 GConv's output (group "
                   f"{groups.origin[channel] + 1}); the shuffle moved it into group {groups.current[channel] + 1}, "
                   f"whose depthwise and second 1x1 GConv read it.")


current = ui.require_image()
left, right = ui.model_pair()

st.title("Feature maps")
st.markdown("Every channel of one layer for the current picture, one small map per channel. The frame colour "
            "is the channel's group: a group convolution only mixes channels of one colour. Pick a unit and the "
            "point inside it; the shuffle pair shows the same tensor just before and just after the channel "
            "shuffle.")

names = layer_names(left.model)
controls = st.columns([2, 3, 3])
layer = controls[0].selectbox("Layer", names, index=names.index(DEFAULT_LAYER), key="fm_layer")
if layer == STEM:
    view = STEM
    controls[1].selectbox("Point", [POINT_LABELS[STEM]], key="fm_stem_view", disabled=True)
else:
    view = controls[1].selectbox("Point", list(VIEWS), format_func=VIEWS.get, key="fm_view")
pair = view == SHUFFLE_PAIR
ordering = controls[2].radio("Order", list(ORDERINGS), format_func=ORDERINGS.get, key="fm_order",
                             horizontal=True, disabled=pair,
                             help="The shuffle pair stays in channel order, so that the reordering shows.")
if pair:
    st.caption("Before: frames by the group of the first 1x1 GConv. After: the frame keeps the channel's old "
               "group, the bar below it shows its new group. With g=1 nothing moves; with g=3 every new group "
               "takes its channels from all old groups in turn.")

for side, (column, loaded) in enumerate(zip(st.columns(2, gap="large"), (left, right))):
    with column:
        st.subheader(loaded.label)
        features = features_of(loaded.name, current.sha256, current.image)
        if pair:
            before, after = point_name(layer, "compress_relu"), point_name(layer, "shuffle")
            page = pick_page(features[after].shape[1], f"fm_page_{side}_{after}_pair")
            grid(loaded, before, "index", page, f"{layer}: before the shuffle", f"fm_before_{side}")
            grid(loaded, after, "index", page, f"{layer}: after the shuffle", f"fm_after_{side}")
            inspect_channel(loaded, after, 1, f"fm_channel_{side}_{after}_pair")
        else:
            point = point_name(layer, view)
            page = pick_page(features[point].shape[1], f"fm_page_{side}_{point}_{ordering}")
            grid(loaded, point, ordering, page, f"{layer}: {POINT_LABELS[view]}", f"fm_grid_{side}")
            strongest = channel_order(features[point], ordering)[0]
            inspect_channel(loaded, point, strongest, f"fm_channel_{side}_{point}_{ordering}")
