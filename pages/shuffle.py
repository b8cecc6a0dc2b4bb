"""Channel shuffle: the operation animated, why it matters (the paper's Figure 1), and the shuffle of a real unit."""

import plotly.graph_objects as go
import streamlit as st
import torch

import ui
from shufflenet_viz import flow
from shufflenet_viz.figures.shuffle import layered_flow_figure, permutation_wiring_figure, shuffle_animation_figure
from shufflenet_viz.model import BOTTLENECK_RATIO, STAGE_OUT_CHANNELS, shuffle_permutation

ui.ensure_shell()

DEFAULT_GROUPS = 3
# The bottleneck of the g=3 model's Stage 2 at 1x: 240 output channels / 4.
DEFAULT_CHANNELS = STAGE_OUT_CHANNELS[DEFAULT_GROUPS][0] // BOTTLENECK_RATIO
FIGURE1_CHOICES = (2, 3, 4)
WIRING_WIDTH_PX = 520  # two models side by side: half of a projector-wide page


# Figures are cached as objects (cache_resource: no copy per run) because building them costs more than
# the rest of the page; st.plotly_chart only reads them. Bounded: 32 animations (~0.3 MB each), 27 Figure 1
# settings, 32 wirings (2 models x 16 units).
@st.cache_resource(max_entries=32, show_spinner=False)
def animation_figure(channels: int, groups: int) -> go.Figure:
    """The shuffle animation of `channels` channels in `groups` groups."""
    return shuffle_animation_figure(flow.shuffle_animation(channels, groups))


@st.cache_resource(max_entries=27, show_spinner=False)
def figure1(channels: int, groups: int, layers: int) -> tuple[go.Figure, list[flow.LayeredFlow]]:
    """Stacked group convolutions without and with shuffle, and their figure."""
    stacks = [flow.stacked_group_convs(channels, groups, layers, shuffle) for shuffle in (False, True)]
    return layered_flow_figure(stacks, ["without shuffle", "with shuffle"]), stacks


@st.cache_resource(max_entries=32, show_spinner=False)
def unit_wiring(model_name: str, unit_name: str) -> tuple[go.Figure, torch.Tensor, int]:
    """The wiring figure of the shuffle a loaded model applies in one unit, its permutation and groups."""
    unit = dict(ui.loaded_models()[model_name].model.named_modules())[unit_name]
    bottleneck = unit.compress_conv.out_channels
    permutation = flow.applied_permutation(unit.shuffle, bottleneck)
    figure = permutation_wiring_figure(permutation, unit.shuffle.groups,
                                       f"{unit_name}: {bottleneck} channels, g={unit.shuffle.groups}",
                                       plot_width_px=WIRING_WIDTH_PX)
    return figure, permutation, unit.shuffle.groups


st.title("Channel shuffle")
st.markdown("A group convolution splits the channels into **g groups** and lets each group talk only to itself. "
            "That saves multiply-adds, but stacked group convolutions never exchange information between groups. "
            "The **channel shuffle** fixes this for free: reshape the C channels into a g x C/g grid, transpose "
            "it, and flatten it back. Afterwards each group holds channels from every group.")

st.header("1. The operation: reshape, transpose, flatten")
setting = st.columns(2)
channels = int(setting[0].number_input(
    f"Channels C (1 to {flow.MAX_ANIMATION_CHANNELS})", min_value=1, max_value=flow.MAX_ANIMATION_CHANNELS,
    value=DEFAULT_CHANNELS, step=1, key="shuffle_channels",
    help=f"Default: the {DEFAULT_CHANNELS}-channel bottleneck of the g=3 model's Stage 2. Up to "
         f"{flow.MAX_ANIMATION_CHANNELS} channels stay legible; pick 12 for the back of a classroom."))
groups = int(setting[1].number_input(
    f"Groups g (1 to {flow.MAX_ANIMATION_GROUPS})", min_value=1, max_value=flow.MAX_ANIMATION_GROUPS,
    value=DEFAULT_GROUPS, step=1, key="shuffle_groups"))
problem = flow.shuffle_setting_problem(channels, groups)
if problem:
    st.error(problem)
else:
    st.plotly_chart(animation_figure(channels, groups), key="shuffle_animation")
    st.caption("Press **Play** (or drag the slider). Each dot is a channel, labelled with its index and coloured by "
               "its group. Watch the colours: they start as solid blocks and end interleaved, one channel of each "
               "group after another, so every later group convolution sees all groups.")
    permutation = shuffle_permutation(channels, groups)
    st.markdown(f"**Index map** `out[i] \u2190 in[perm[i]]`: {flow.describe_permutation(permutation)}")
    with st.expander(f"The whole index map ({channels} channels)"):
        st.dataframe({"output channel i": list(range(channels)),
                      "input channel perm[i]": permutation.tolist(),
                      "input group": (permutation // (channels // groups) + 1).tolist()},
                     hide_index=True, key="shuffle_index_map")

st.header("2. Why: stacked group convolutions, without and with shuffle")
st.markdown("The paper's Figure 1: the same group convolutions stacked, once as they are and once with a shuffle "
            "between them. Each channel carries one small dot per **input** group; a dot is filled when "
            "information from that group can reach the channel.")
choice = st.columns(3)
layers = choice[0].select_slider("Group convolutions stacked", FIGURE1_CHOICES, value=2, key="shuffle_fig1_layers")
figure1_groups = choice[1].select_slider("Groups", FIGURE1_CHOICES, value=3, key="shuffle_fig1_groups")
per_group = choice[2].select_slider("Channels per group", FIGURE1_CHOICES, value=4, key="shuffle_fig1_per_group")
figure, stacks = figure1(figure1_groups * per_group, figure1_groups, layers)
st.plotly_chart(figure, key="shuffle_figure1")
counts = st.columns(2)
for column, stack in zip(counts, stacks):
    column.metric(f"Output channels that hear every group, {'with' if stack.shuffle else 'without'} shuffle",
                  f"{stack.outputs_hearing_every_group} of {stack.channels}")
st.caption("Without shuffle every output channel hears only its own group, however many layers are stacked. With "
           "one shuffle between two group convolutions every output channel hears all groups.")

st.header("3. Inside the trained models")
st.markdown("The shuffle each model really applies, read by running the unit's `shuffle` module on the channel "
            "indices of its bottleneck (the channels between the first 1x1 group convolution and the depthwise "
            "convolution).")
pair = ui.model_pair()
unit_names = pair[0].model.unit_names()
unit_name = st.selectbox("Unit", unit_names, index=unit_names.index("stage2.unit2"), key="shuffle_unit")
for side, (column, loaded) in enumerate(zip(st.columns(len(pair), gap="large"), pair)):
    with column:
        st.subheader(loaded.label)
        if unit_name not in loaded.model.unit_names():
            st.warning(f"{loaded.label} has no unit named {unit_name}.")
            continue
        figure, permutation, unit_groups = unit_wiring(loaded.name, unit_name)
        bottleneck = permutation.numel()
        st.plotly_chart(figure, key=f"shuffle_unit_wiring_{side}")
        if torch.equal(permutation, torch.arange(bottleneck)):
            why = "one group" if unit_groups == 1 else "the shuffle is switched off in this model"
            st.caption(f"Identity ({why}): every line is straight, each channel stays where it is.")
        else:
            taken = flow.group_level(flow.permutation_connectivity(permutation), unit_groups, unit_groups)[0]
            st.caption(f"Shuffled: output channels come in turn from groups 1 to {unit_groups}, so each group of "
                       f"the next 1x1 group convolution reads from every group (group 1 takes "
                       f"{', '.join(str(int(n)) for n in taken)} channels from groups 1 to {unit_groups}).")
        st.markdown(f"`{flow.describe_permutation(permutation, 6)}`")
