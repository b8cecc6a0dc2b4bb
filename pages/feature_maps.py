"""Feature maps: every channel at one point of one layer for the current picture, both models side by side.
The layer, point, order and each side's page and large channel live in the URL."""

import streamlit as st

import ui
from ui import feature_maps as feature_maps_ui
from ui import unit as unit_ui
from ui.activations import features_of
from ui.url import bound_choice
from shufflenet_viz.features import (ORDERINGS, POINT_LABELS, STEM, describe_shuffle, layer_names, point_module,
                                     point_name, shuffle_neighbour_points, unit_points)
from shufflenet_viz.unit_diagram import node_of_point

ui.ensure_shell()

SHUFFLE_PAIR = "shuffle_pair"
PAIR_LABEL = "before and after the channel shuffle"
DEFAULT_LAYER = "stage2.unit2"

current = ui.require_image()
left, right = ui.model_pair()

st.title("Feature maps")
st.markdown("Every channel of one layer for the current picture, one small map per channel. A tile's frame is "
            "where the channel came from (the group of the 1x1 GConv that computed it); where the next 1x1 GConv "
            "reads it in another group, a bar under the tile shows that group. Pick a unit and the point inside "
            "it; the shuffle pair shows the tensor just before and just after the channel shuffle, wherever the "
            "model's layout puts it.")

controls = st.columns([2, 3, 3])
layer = bound_choice(controls[0].selectbox, "Layer", layer_names(left.model), key="layer", default=DEFAULT_LAYER)
if layer == STEM:
    view = STEM
    controls[1].selectbox("Point", [POINT_LABELS[STEM]], key="fm_stem_view", disabled=True)
else:
    points = unit_points(point_module(left.model, point_name(layer, "output")))
    view = bound_choice(controls[1].selectbox, "Point", [SHUFFLE_PAIR, *points], key="point",
                        format_func=lambda part: PAIR_LABEL if part == SHUFFLE_PAIR else POINT_LABELS[part])
pair = view == SHUFFLE_PAIR
ordering = bound_choice(controls[2].radio, "Order", list(ORDERINGS), key="order", format_func=ORDERINGS.get,
                        horizontal=True, disabled=pair,
                        help="The shuffle pair stays in channel order, so that the reordering shows.")

for side, loaded in ui.side_by_side((left, right)):
    st.subheader(loaded.label)
    features = features_of(loaded.name, current.sha256, current.image)
    if pair:
        unit = point_module(loaded.model, point_name(layer, "output"))
        before, after = (point_name(layer, part) for part in shuffle_neighbour_points(unit))
        st.caption(describe_shuffle(loaded.model, layer))
        page = feature_maps_ui.pick_page(features[after].shape[1], side, f"{after} pair")
        feature_maps_ui.grid(loaded, current, before, "index", page, f"{layer}: before the shuffle",
                             f"fm_before_{side}")
        feature_maps_ui.grid(loaded, current, after, "index", page, f"{layer}: after the shuffle",
                             f"fm_after_{side}")
        feature_maps_ui.inspect_channel(loaded, current, after, 1, side, f"{after} pair")
    else:
        point = point_name(layer, view)
        if layer != STEM:
            unit_name, node_key = node_of_point(point)
            node = unit_ui.diagram(loaded.name, current.sha256, unit_name, current.image).node(node_key)
            st.page_link("pages/unit.py", label="This point in the unit diagram", icon=":material/schema:",
                         query_params=unit_ui.link_to_unit(loaded.name, unit_name, node))
        page = feature_maps_ui.pick_page(features[point].shape[1], side, f"{point} {ordering}")
        feature_maps_ui.grid(loaded, current, point, ordering, page, f"{layer}: {POINT_LABELS[view]}",
                             f"fm_grid_{side}")
        strongest = feature_maps_ui.strongest_channel(loaded, current, point, ordering)
        feature_maps_ui.inspect_channel(loaded, current, point, strongest, side, f"{point} {ordering}")
