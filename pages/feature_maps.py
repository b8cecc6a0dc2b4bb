"""Feature maps: every channel at one point of one layer for the current picture, both models side by side.
The layer, point, order and each side's page and large channel live in the URL."""

import numpy as np
import streamlit as st

import ui
from ui import feature_maps as ui_features
from ui import url as ui_url
from shufflenet_viz.features import (ORDERINGS, POINT_LABELS, STEM, channel_order, describe_channel,
                                     describe_point_groups, describe_shuffle, layer_names, point_module,
                                     point_name, shuffle_neighbours, unit_points)
from shufflenet_viz.figures.features import page_count
from shufflenet_viz.unit_diagram import node_of_point
from shufflenet_viz.weights import LoadedModel

ui.ensure_shell()

SHUFFLE_PAIR = "shuffle_pair"
PAIR_LABEL = "before and after the channel shuffle"
DEFAULT_LAYER = "stage2.unit2"


def pick_page(channels: int, key: str, side: int) -> int:
    """The page of tiles to show (a pagination widget when there is more than one, its page kept in the URL)."""
    pages = page_count(channels)
    if pages == 1:
        return 1
    param = f"{ui.SIDES[side]}_page"
    linked = ui_url.number(key, param, 1, pages, 1, marker=f"fm_page_{side}", as_default=True)
    page = st.pagination(pages, default=linked, key=key)
    settings[param] = (f"fm_page_{side}", page)
    return page


def grid(loaded: LoadedModel, point: str, ordering: str, page: int, title: str, key: str) -> np.ndarray:
    """Draw one page of a point's channels with what its colours mean; returns the channel indices shown."""
    figure, shown = ui_features.grid_figure(loaded.name, current.sha256, point, ordering, page, title,
                                            current.image)
    st.plotly_chart(ui.for_screen(figure), theme=None, key=key)
    channels, height, width = ui_features.features_of(loaded.name, current.sha256, current.image)[point].shape[1:]
    st.caption(f"Channels {shown.size} of {channels} on this page ({height}x{width} each): "
               + ", ".join(str(c) for c in shown[:8]) + (" ..." if shown.size > 8 else ""))
    st.caption(describe_point_groups(loaded.model, point))
    return shown


def inspect_channel(loaded: LoadedModel, point: str, default: int, key: str, side: int) -> None:
    """One channel large with its value range, where it came from and which group reads it (its index kept in the
    URL)."""
    feature = ui_features.features_of(loaded.name, current.sha256, current.image)[point][0]
    param = f"{ui.SIDES[side]}_channel"
    ui_url.number(key, param, 0, feature.shape[0] - 1, int(default), marker=f"fm_channel_{side}")
    channel = st.number_input("Channel to see large", 0, feature.shape[0] - 1, key=key,
                              help="Its index at this point (0-based).")
    settings[param] = (f"fm_channel_{side}", channel)
    st.plotly_chart(ui.for_screen(ui_features.large_channel_figure(loaded.name, current.sha256, point, channel,
                                                                   current.image)), theme=None, key=f"{key}_figure")
    values = feature[channel]
    st.caption(f"Values from {values.min():.3f} to {values.max():.3f} (mean {values.mean():.3f}). "
               + describe_channel(loaded.model, point, channel))


current = ui.require_image()
left, right = ui.model_pair()

st.title("Feature maps")
st.markdown("Every channel of one layer for the current picture, one small map per channel. A tile's frame is "
            "where the channel came from (the group of the 1x1 GConv that computed it); where the next 1x1 GConv "
            "reads it in another group, a bar under the tile shows that group. Pick a unit and the point inside "
            "it; the shuffle pair shows the tensor just before and just after the channel shuffle, wherever the "
            "model's layout puts it.")

names = layer_names(left.model)
controls = st.columns([2, 3, 3])
ui_url.choice("fm_layer", "layer", names, DEFAULT_LAYER)
layer = controls[0].selectbox("Layer", names, key="fm_layer")
settings = {"layer": ("fm_layer", layer)}  # for the URL; each side's page and channel widgets add theirs
if layer == STEM:
    view = STEM
    controls[1].selectbox("Point", [POINT_LABELS[STEM]], key="fm_stem_view", disabled=True)
else:
    views = [SHUFFLE_PAIR, *unit_points(point_module(left.model, point_name(layer, "output")))]
    ui_url.choice("fm_view", "point", views, SHUFFLE_PAIR)
    view = controls[1].selectbox("Point", views, key="fm_view",
                                 format_func=lambda part: PAIR_LABEL if part == SHUFFLE_PAIR else POINT_LABELS[part])
    settings["point"] = ("fm_view", view)
pair = view == SHUFFLE_PAIR
ui_url.choice("fm_order", "order", list(ORDERINGS), next(iter(ORDERINGS)), format=ORDERINGS.get)
ordering = controls[2].radio("Order", list(ORDERINGS), format_func=ORDERINGS.get, key="fm_order",
                             horizontal=True, disabled=pair,
                             help="The shuffle pair stays in channel order, so that the reordering shows.")
settings["order"] = ("fm_order", ordering)

for side, (column, loaded) in enumerate(zip(st.columns(2, gap="large"), (left, right))):
    with column:
        st.subheader(loaded.label)
        features = ui_features.features_of(loaded.name, current.sha256, current.image)
        if pair:
            unit = point_module(loaded.model, point_name(layer, "output"))
            before, after = (point_name(layer, part) for part in shuffle_neighbours(unit))
            st.caption(describe_shuffle(loaded.model, layer))
            page = pick_page(features[after].shape[1], f"fm_page_{side}_{after}_pair", side)
            grid(loaded, before, "index", page, f"{layer}: before the shuffle", f"fm_before_{side}")
            grid(loaded, after, "index", page, f"{layer}: after the shuffle", f"fm_after_{side}")
            inspect_channel(loaded, after, 1, f"fm_channel_{side}_{after}_pair", side)
        else:
            point = point_name(layer, view)
            if layer != STEM:
                unit_name, node = node_of_point(point)
                st.page_link("pages/unit.py", label="This point in the unit diagram", icon=":material/schema:",
                             query_params={"model": loaded.name, "unit": unit_name, "node": node})
            page = pick_page(features[point].shape[1], f"fm_page_{side}_{point}_{ordering}", side)
            grid(loaded, point, ordering, page, f"{layer}: {POINT_LABELS[view]}", f"fm_grid_{side}")
            strongest = channel_order(features[point], ordering)[0]
            inspect_channel(loaded, point, strongest, f"fm_channel_{side}_{point}_{ordering}", side)
ui_url.to_url(settings)
