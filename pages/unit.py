"""The ShuffleNet unit, live: the paper's Figure 2 for a chosen model and unit on the current picture, the
feature maps behind any node, and the stride-2 channel arithmetic from the model's own numbers."""

import streamlit as st

import ui
from ui import unit as unit_ui
from ui.url import bound_choice
from shufflenet_viz.figures.unit import PANEL_NAMES, node_at
from shufflenet_viz.cost import format_count
from shufflenet_viz.unit_diagram import shuffle_place_sentence, stride2_arithmetic, unit_of

ui.ensure_shell()

NODE_KEY, CHART_KEY = "node", "unit_chart"
DEFAULT_UNIT = "stage2.unit2"


def on_node_click() -> None:
    """A click on the diagram picks the node whose feature maps are shown."""
    clicked = node_at(st.session_state.get(CHART_KEY))
    if clicked:
        st.session_state[NODE_KEY] = clicked


current = ui.require_image()
models = ui.loaded_models()
left, right = ui.model_pair()

st.title("The ShuffleNet unit")
st.markdown("The paper's Figure 2, drawn from a real model running on your picture. Every box is one operation "
            "with its groups, the shape of the tensor it produced, its multiply-adds and its parameters. "
            "**Click a box** to see its feature maps.")
controls = st.columns([3, 2, 2])
loaded = models[bound_choice(controls[0].selectbox, "Model", list(models), key="model", default=right.name,
                             format_func=models.label)]
unit_name = bound_choice(controls[1].selectbox, "Unit", loaded.model.unit_names(), key="unit", default=DEFAULT_UNIT)
panel = bound_choice(controls[2].radio, "Draw", list(unit_ui.PANELS), key="panel", format_func=unit_ui.PANELS.get)

live = unit_ui.diagram(loaded.name, current.sha256, unit_name, current.image)
dense = unit_ui.dense_diagram(loaded.name, unit_name)
diagram_area, node_header = st.container(), st.empty()  # the diagram shows the node picked below it
node = live.node(bound_choice(st.selectbox, "Node", [n.key for n in live.nodes], key=NODE_KEY, default="shuffle",
                              format_func=lambda key: unit_ui.node_label(live.node(key)),
                              help="Or click a box in the diagram."))
node_header.header(f"Feature maps at \u201c{node.title}\u201d")
with diagram_area:
    shown = dense if panel == "a" else live
    title = f"{PANEL_NAMES[shown.panel]}: {unit_name}"
    st.subheader(f"{loaded.label}, {unit_name}")
    if panel == "a":
        ui.show(unit_ui.diagram_figure(loaded.name, current.sha256, unit_name, "a", None, title, current.image),
                "unit_chart_dense", download=f"{unit_name}_figure2a")
    else:
        ui.show(unit_ui.diagram_figure(loaded.name, current.sha256, unit_name, "live", node.key, title,
                                       current.image), CHART_KEY, download=f"{unit_name}_figure2{live.panel}",
                on_select=on_node_click, selection_mode="points")
    totals = st.columns(3)
    totals[0].metric("This unit", f"{format_count(live.macs)} MACs", f"{format_count(live.params)} parameters",
                     delta_color="off", delta_arrow="off")
    totals[1].metric("(a) without groups or shuffle", f"{format_count(dense.macs)} MACs",
                     f"{format_count(dense.params)} parameters", delta_color="off", delta_arrow="off")
    totals[2].metric("Multiply-adds saved by groups", f"{1 - live.macs / dense.macs:.0%}")
    st.caption(shuffle_place_sentence(unit_of(loaded.model, unit_name)))

figure, tiles, count = unit_ui.node_feature_figure(loaded.name, current.sha256, node,
                                                   f"{unit_name}, {node.title}: {node.shape_text}", current.image)
ui.show(figure, "unit_node_maps", download=f"{unit_name}_{node.key}_maps")
st.caption(f"{node.operation}. The first {tiles} of its {count} channels, each on its own grey scale; "
           f"frames show the group each channel came from.")
st.page_link("pages/feature_maps.py", label=f"Every channel of {node.point}: the Feature maps page",
             icon=":material/grid_view:")

first = f"{unit_name.split('.')[0]}.unit1"
example = stride2_arithmetic(loaded.model, first)
st.header(f"The stride-2 unit in numbers: {first}")
st.markdown("\n".join(f"{i}. {line}" for i, line in enumerate(example.lines(), start=1)))
st.caption(example.bottleneck_note())
