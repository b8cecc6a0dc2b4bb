"""Information flow between channel groups: g=1, g=3 and g=3 with the shuffle off, by structure, by
measurement on the current picture, and by switching the shuffle off in the trained model."""

import plotly.graph_objects as go
import streamlit as st
from PIL import Image

import ui
from shufflenet_viz import data, flow
from shufflenet_viz.figures.flow import influence_figure, prediction_change_figure, reachability_figure
from shufflenet_viz.inference import Classification, classify
from shufflenet_viz.model import STAGE_NAMES
from shufflenet_viz.preprocess import preprocess_image
from shufflenet_viz.weights import LoadedModel

ui.ensure_shell()

SPANS = {"the next unit": 1, "the rest of the stage": None}


# Bounded: one copy (~4 MB of weights) per grouped model; a copy, so the shared model is never switched.
@st.cache_resource(max_entries=4, show_spinner=False)
def shuffle_off_copy(name: str) -> LoadedModel:
    """The loaded model `name` with every channel shuffle off."""
    return flow.without_shuffle(ui.loaded_models()[name])


def resolve(name: str, shuffle: bool) -> LoadedModel:
    """A loaded model, or its shuffle-off copy."""
    return ui.loaded_models()[name] if shuffle else shuffle_off_copy(name)


# Results and figures are cached as objects (cache_resource, read-only, no copy per run): building the figures
# costs more than the rest of the page. A view is (title, model name, shuffle on).
# Bounded: 36 = 3 views x 12 start points; the largest is 3 steps of 960 x 480 booleans (1.4 MB).
@st.cache_resource(max_entries=36, show_spinner=False)
def structure(name: str, shuffle: bool, stage: str, after: int) -> list[flow.ReachStep]:
    """`flow.stage_reachability` for one model, once per start point."""
    return flow.stage_reachability(resolve(name, shuffle).model, stage, after)


# Bounded: 24 figures of three panels of at most 240 x 240 cells (~1.5 MB each).
@st.cache_resource(max_entries=24, show_spinner=False)
def structure_figure(views: tuple, stage: str, after: int, step: int, groups: int) -> go.Figure:
    """The reachability matrices of all views at one unit after the start point."""
    return reachability_figure([(title, structure(name, shuffle, stage, after)[step].connectivity, groups)
                                for title, name, shuffle in views])


# Bounded: one list of at most 16 short records per grouped model.
@st.cache_resource(max_entries=4, show_spinner=False)
def mixing(name: str) -> list[flow.MixingPoint]:
    """Where a model's structure mixes groups with the shuffle off."""
    return flow.mixing_without_shuffle(ui.loaded_models()[name].model)


# Bounded: 12 results (3 views x 4 settings); the largest is a 960 x 960 float64 matrix (7 MB).
@st.cache_resource(max_entries=12, show_spinner=False)
def influence(name: str, shuffle: bool, image_sha256: str, stage: str, after: int, units: int | None,
              groups: int, _image: Image.Image) -> flow.Influence:
    """`flow.measure_influence` for one model, picture and span, computed once."""
    loaded = resolve(name, shuffle)
    x = preprocess_image(_image, loaded.preprocessing)
    return flow.measure_influence(loaded.model, x, stage, after, units, groups)


# Bounded: 8 figures of three panels of at most 240 x 240 cells (~1.5 MB each).
@st.cache_resource(max_entries=8, show_spinner=False)
def influence_heatmaps(views: tuple, image_sha256: str, stage: str, after: int, units: int | None, groups: int,
                       _image: Image.Image) -> tuple[go.Figure, list[tuple[str, flow.Influence]]]:
    """The measured influence of all views for one picture and span, and its figure."""
    measured = [(title, influence(name, shuffle, image_sha256, stage, after, units, groups, _image))
                for title, name, shuffle in views]
    return influence_figure(measured), measured


# Bounded: 32 classifications of at most 1000 probabilities each.
@st.cache_data(max_entries=32, show_spinner=False)
def classify_without_shuffle(name: str, image_sha256: str, _image: Image.Image) -> Classification:
    """The picture classified by the shuffle-off copy of model `name`."""
    return classify(shuffle_off_copy(name), _image)


# Bounded: one result per grouped CIFAR-10 model; reading the archive (~10 s) happens once per process.
@st.cache_resource(max_entries=4, show_spinner=False)
def measured_ablation(name: str, archive: str) -> flow.AblationAccuracy:
    """Accuracy with and without shuffle on the 1,000-image CIFAR-10 test subset of `archive`, measured once."""
    test = data.load_cifar10(archive, splits=("test",))["test"]
    return flow.measure_ablation(ui.loaded_models()[name], test)


st.title("Information flow: g=1 vs g=3")
st.markdown("Which channels can an output channel hear from? Below: **g=1** (ordinary 1x1 convolutions), **g=3** "
            "(group convolutions with channel shuffle), and the same g=3 weights with **the shuffle switched off**.")

pair = ui.model_pair()
ungrouped = next((m for m in pair if m.groups == 1), None)
grouped = next((m for m in pair if m.groups > 1 and m.model.config.shuffle), None)
if ungrouped is None or grouped is None:
    st.warning("This page compares a g=1 model with a grouped model (g>1, shuffle on). Pick one of each under "
               "'Models compared' in the sidebar.")
    st.stop()
g = grouped.groups
views = (("g=1", ungrouped.name, True), (f"g={g}", grouped.name, True), (f"g={g}, shuffle off", grouped.name, False))

choice = st.columns(2)
stage = choice[0].radio("Stage", STAGE_NAMES, horizontal=True, key="flow_stage")
points = flow.stage_points(grouped.model, stage)
# One widget per stage (and per start point below), so a choice never points at a unit another stage lacks.
start_label = choice[1].selectbox("Start at", points, index=1, key=f"flow_start_{stage}",
                                  help="The channels whose information is followed. From the output of a stage's "
                                       "first unit on, the stage has only stride-1 units.")
after = points.index(start_label)

st.header("a. Structure: which channels can reach which")
st.markdown(f"Read from the modules themselves: each convolution's groups, the permutation each shuffle applies, "
            f"and the shortcut (added in stride-1 units, concatenated in stride-2 units). Rows: channels at a unit's "
            f"output; columns: channels at the start point. Orange lines: the {g} groups (for g=1, the same "
            f"{g} equal parts, for comparison).")
reach = {title: structure(name, shuffle, stage, after) for title, name, shuffle in views}
unit_names = [step.unit_name for step in reach[views[0][0]]]
shown_unit = st.select_slider("Follow the flow unit by unit: output of", unit_names, value=unit_names[0],
                              key=f"flow_structure_unit_{stage}_{after}")
step_index = unit_names.index(shown_unit)
st.plotly_chart(structure_figure(views, stage, after, step_index, g), key="flow_structure")
for column, (title, _, _) in zip(st.columns(len(views)), views):
    column.metric(f"{title}: channel pairs connected", f"{reach[title][step_index].connected_share:.1%}")
st.caption("With the shuffle off, the stride-1 units keep the matrix block-diagonal: each group stays on its own "
           "forever. One shuffle fills the matrix; g=1 is full from the first 1x1 convolution on." +
           (" Starting at the stage input, the stride-2 unit's concatenation already mixes groups (see below)."
            if after == 0 else ""))

st.subheader("Where channels mix even with the shuffle off")
st.markdown("\n".join(f"- **{point.unit_name}**: {point.reason}." for point in mixing(grouped.name)) or
            "- nowhere: every unit keeps the groups apart")
st.caption("Start this page at a stage's input to see the stride-2 unit's concatenation at work. Inside a stage "
           "(from the first unit's output on) nothing crosses the groups without the shuffle.")

st.header("b. Measured on this picture: how much each channel moves each other channel")
current = ui.require_image()
span_label = st.radio("Measure across", list(SPANS), horizontal=True, key="flow_span")
units = SPANS[span_label]
st.markdown("For each output channel j and input channel i: |d mean(out_j) / d in_i| summed over positions, from "
            "the exact Jacobian on this picture's activation (the shared model is not changed). White: exactly "
            "zero.")
with st.spinner("Measuring the Jacobians..."):
    figure, influences = influence_heatmaps(views, current.sha256, stage, after, units, g, current.image)
st.plotly_chart(figure, key="flow_influence")
for column, (title, measured) in zip(st.columns(len(views)), influences):
    column.metric(f"{title}: influence crossing groups", flow.format_share(measured.cross_group_share),
                  help=f"From the {measured.start} to the {measured.end}; measured in {measured.seconds:.2f} s.")
st.caption(f"Share of all influence that goes from one of the {g} groups to another. With the shuffle off it is "
           f"exactly zero inside a stage; one shuffle is enough to spread influence across all groups." +
           (" This span starts at the stage input, so it includes the stride-2 unit, whose concatenation lets "
            "some influence cross groups even with the shuffle off." if after == 0 else ""))

st.header(f"c. Switch the shuffle off in the trained g={g} model")
with_result = ui.classify_cached(grouped.name, current.sha256, current.image)
without_result = classify_without_shuffle(grouped.name, current.sha256, current.image)
answer = st.columns(2)
answer[0].metric("Shuffle on: prediction", with_result.predicted_class,
                 help=f"{with_result.top(1)[0][1]:.1%} probability")
answer[1].metric("Shuffle off: prediction", without_result.predicted_class,
                 help=f"{without_result.top(1)[0][1]:.1%} probability")
st.plotly_chart(prediction_change_figure(with_result, without_result), key="flow_ablation_top5")

paper = flow.PAPER_TABLE3_G3
can_measure = data.DEFAULT_ARCHIVE.exists() and tuple(grouped.classes) == data.CIFAR10_CLASSES
accuracy = None
if can_measure:
    with st.spinner("Reading 1,000 CIFAR-10 test images and classifying them with and without shuffle "
                    "(about 15 s, once per server)..."):
        try:
            accuracy = measured_ablation(grouped.name, str(data.DEFAULT_ARCHIVE))
        except data.DatasetError as error:
            st.warning(f"The CIFAR-10 test images could not be read ({error}); showing the numbers stored in the "
                       f"manifest instead.")
if accuracy is None:
    accuracy = flow.manifest_ablation(grouped)
if accuracy is None:
    st.info(f"No accuracy with and without shuffle is available for {grouped.label}: the CIFAR-10 archive is not "
            f"at {data.DEFAULT_ARCHIVE} and the manifest stores no ablation numbers for it.")
else:
    scores = st.columns(3)
    scores[0].metric("Our accuracy, shuffle on", f"{accuracy.with_shuffle:.1%}")
    scores[1].metric("Our accuracy, shuffle off", f"{accuracy.without_shuffle:.1%}",
                     delta=f"{(accuracy.without_shuffle - accuracy.with_shuffle) * 100:+.1f} points")
    scores[2].metric(f"Paper, {paper['model']}: error without / with shuffle",
                     f"{paper['error_without_shuffle']:.1%} / {paper['error_with_shuffle']:.1%}")
    st.caption(f"Ours: {accuracy.images}, {accuracy.source}; guessing would score {1 / len(grouped.classes):.0%}. "
               f"Paper: {paper['source']}.")
st.markdown(f"**Read these numbers honestly.** Our g={g} model was trained *with* the shuffle; switching it off at "
            f"test time hands every later layer channels in an order it never saw, so the drop measures the "
            f"scrambling as much as the lost cross-group flow. The paper trained each variant on its own, and its "
            f"no-shuffle network, which learned to live without the exchange, was "
            f"{(paper['error_without_shuffle'] - paper['error_with_shuffle']) * 100:.1f} points worse "
            f"({paper['error_without_shuffle']:.1%} vs {paper['error_with_shuffle']:.1%} top-1 error on ImageNet).")
