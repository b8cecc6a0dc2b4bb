"""Information flow between channel groups: the pair's models and a grouped model with its shuffle off, by
structure, by measurement on the current picture, where the shuffle sits, and the shuffle switched off. The
stage, start point, unit and span live in the URL."""

import streamlit as st

import ui
from ui import information_flow as ui_flow
from ui.display import show
from ui.url import bound_choice
from shufflenet_viz import flow
from shufflenet_viz.model import STAGE_NAMES

ui.ensure_shell()

SPANS = {"unit": 1, "stage": None}  # -> units measured (None: to the end of the stage)
SPAN_LABELS = {"unit": "the next unit", "stage": "the rest of the stage"}

pair = ui.model_pair()
views = ui_flow.flow_views(pair)
if views is None:
    st.title("Information flow")
    st.warning("This page needs a grouped model (g>1) with its shuffle on. Pick one under 'Models compared' in the "
               "sidebar.")
    st.stop()
on_views, off_view = views[:-1], views[-1]
grouped = ui.loaded_models()[off_view.name]
g = grouped.groups
on_view = next(view for view in on_views if view.name == off_view.name)

st.title("Information flow: " + " vs ".join(view.title for view in on_views))
st.markdown("Which channels can an output channel hear from? Below: " + ", ".join(
    f"**{view.title}** ({ui.loaded_models()[view.name].label})" for view in on_views) +
    f", and the same g={g} weights with **the shuffle switched off**." +
    (f" The g=1 model's channels are cut into {g} equal parts for comparison." if any(
        ui.loaded_models()[view.name].groups == 1 for view in on_views) else ""))

choice = st.columns(2)
stage = bound_choice(choice[0].radio, "Stage", STAGE_NAMES, key="stage", horizontal=True)
# Start points and units name their stage, so a choice left from another stage is no option here and starts afresh.
points = flow.stage_points(grouped.model, stage)
start_label = bound_choice(choice[1].selectbox, "Start at", points, key="start", default=points[1],
                           help="The channels whose information is followed. From the output of a stage's first "
                                "unit on, the stage has only stride-1 units.")
after = points.index(start_label)

st.header("a. Structure: which channels can reach which")
st.markdown("Read from the modules themselves, in each unit's own order: each convolution's groups, the "
            "permutation each shuffle applies, and the shortcut (added in stride-1 units, concatenated where the "
            "unit's layout puts it in stride-2 units). Columns: channels at the start point, cut into equal groups; "
            "rows: channels at a unit's output, grouped by **where they came from** (a stride-2 output's pooled "
            "channels with the start group they pool). Orange lines: group boundaries.")
reach = ui_flow.structure(views[0].name, views[0].shuffle, stage, after, views[0].groups)
unit_names = [step.unit_name for step in reach]
ui_flow.follow_from(start_label, unit_names)
shown_unit = bound_choice(st.select_slider, "Follow the flow unit by unit: output of", unit_names,
                          key=ui_flow.UNIT_KEY)
step_index = unit_names.index(shown_unit)
show(ui_flow.structure_figure(views, stage, after, step_index), "flow_structure")
for column, view in zip(st.columns(len(views)), views):
    connected = ui_flow.structure(view.name, view.shuffle, stage, after, view.groups)[step_index].connected_share
    column.metric(f"{view.title}: channel pairs connected", f"{connected:.1%}")
st.caption(ui_flow.structure_text(views, stage, after, step_index))

st.subheader("Where channels mix even with the shuffle off")
points_off = ui_flow.mixing(grouped.name)
st.markdown("\n".join(f"- **{point.unit_name}**: {point.reason}." for point in points_off) or
            "- nowhere: every unit keeps the groups apart")
inside = ui_flow.structure(off_view.name, False, stage, 1, g)
if all(flow.reach_counts(step.connectivity, step.source_groups, g).hear_own_group_only == step.connectivity.shape[0]
       for step in inside):
    st.caption(f"Inside {stage}, from the output of its first unit on, every output channel hears only the group it "
               f"came from while the shuffle is off (read from the {len(inside)} units' matrices).")

current = ui.require_image()
st.header("b. Where the shuffle sits")
st.markdown("Published ShuffleNets put the shuffle in two places: after the first 1x1 GConv (the paper's figure) or "
            "after the 3x3 depthwise conv (the official code, with the inverse index map). The depthwise conv treats "
            "every channel alone, so a permutation passes through it and only reorders its filters: both places "
            "connect the same channels. Measured on this picture, for the unit after the start point:")
ui_flow.placements(on_views, current, stage, after)

st.header("c. Measured on this picture: how much each channel moves each other channel")
span = bound_choice(st.radio, "Measure across", SPANS, key="span", format_func=SPAN_LABELS.get, horizontal=True)
units = SPANS[span]
st.markdown("For each output channel j and input channel i: |d mean(out_j) / d in_i| summed over positions, "
            "computed exactly on this picture's activation (the shared model is not changed). White: exactly zero. "
            "Rows grouped by where each channel came from, as above.")
with st.spinner("Measuring the influence..."):
    figure, influences = ui_flow.influence_heatmaps(views, current.sha256, stage, after, units, current.image)
show(figure, "flow_influence")
for column, (view, measured) in zip(st.columns(len(views)), influences):
    column.metric(f"{view.title}: influence crossing groups", flow.format_share(measured.cross_group_share),
                  help=f"From the {measured.start} to the {measured.end}; measured in {measured.seconds:.2f} s.")
measured_by_title = {view.title: measured for view, measured in influences}
span_names = unit_names if units is None else unit_names[:units]
st.caption(flow.influence_caption(off_view.title, measured_by_title[off_view.title], on_view.title,
                                  measured_by_title[on_view.title], flow.mixing_in_span(points_off, span_names)))

st.header(f"d. Switch the shuffle off in the trained g={g} model")
with_result = ui.classify_cached(grouped.name, current.sha256, current.image)
without_result = ui_flow.classify_without_shuffle(grouped.name, current.sha256, current.image)
answer = st.columns(2)
answer[0].metric("Shuffle on: prediction", with_result.predicted_class,
                 help=f"{with_result.top(1)[0][1]:.1%} probability")
answer[1].metric("Shuffle off: prediction", without_result.predicted_class,
                 help=f"{without_result.top(1)[0][1]:.1%} probability")
show(ui_flow.ablation_figure(grouped.name, current.sha256, current.image), "flow_ablation_top5")

ui_flow.stored_accuracy(grouped)
st.markdown(flow.shuffle_off_reading(grouped.model.config.width, g))
