"""Channel shuffle: the operation animated, why it matters (the paper's Figure 1), and the shuffle of a real unit.
Every setting lives in the URL (?channels=12&groups=4&unit=stage3.unit2...)."""

import streamlit as st

import ui
from ui import shuffle as shuffle_ui
from ui.screen import narrow_screen
from ui.url import bound_choice, bound_number
from shufflenet_viz import flow
from shufflenet_viz.model import BOTTLENECK_RATIO, STAGE_OUT_CHANNELS, shuffle_permutation

ui.ensure_shell()

DEFAULT_GROUPS = 3
# The bottleneck of the g=3 model's Stage 2 at 1x: 240 output channels / 4.
DEFAULT_CHANNELS = STAGE_OUT_CHANNELS[DEFAULT_GROUPS][0] // BOTTLENECK_RATIO
PROJECTOR_CHANNELS = 12  # legible from the back of a room, and on a phone
FIGURE1_CHOICES = (2, 3, 4)

st.title("Channel shuffle")
st.markdown("A group convolution splits the channels into **g groups** and lets each group talk only to itself. "
            "That saves multiply-adds, but stacked group convolutions never exchange information between groups. "
            "The **channel shuffle** fixes this for free: reshape the C channels into a g x C/g grid, transpose "
            "it, and flatten it back. Afterwards each group holds channels from every group, as long as there are at "
            "least g channels per group (try fewer below).")

st.header("1. The operation: reshape, transpose, flatten")
setting = st.columns(2)
channels = int(bound_number(
    setting[0].number_input, f"Channels C (1 to {flow.MAX_ANIMATION_CHANNELS})", 1, flow.MAX_ANIMATION_CHANNELS,
    key="channels", default=PROJECTOR_CHANNELS if ui.projector_mode() or narrow_screen() else DEFAULT_CHANNELS,
    step=1, help=f"Default: the {DEFAULT_CHANNELS}-channel bottleneck of the g=3 model's Stage 2 ({PROJECTOR_CHANNELS} "
                 f"in projector mode and on a phone). Up to {flow.MAX_ANIMATION_CHANNELS} channels stay legible."))
groups = int(bound_number(setting[1].number_input, f"Groups g (1 to {flow.MAX_ANIMATION_GROUPS})", 1,
                          flow.MAX_ANIMATION_GROUPS, key="groups", default=DEFAULT_GROUPS, step=1))
problem = flow.shuffle_setting_problem(channels, groups)
if problem:
    st.error(problem)
else:
    ui.show(shuffle_ui.animation_for_screen(channels, groups), "shuffle_animation")
    permutation = shuffle_permutation(channels, groups)
    st.caption("Press **Play** (or drag the slider). Each dot is a channel, labelled with its index and coloured by "
               "its group. " + flow.shuffle_mixing_caption(permutation, groups))
    st.markdown(f"**Index map** (the paper's; the official code applies its inverse, see 3.) "
                f"`out[i] \u2190 in[perm[i]]`: {flow.describe_permutation(permutation)}")
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
layers = bound_choice(choice[0].select_slider, "Group convolutions stacked", FIGURE1_CHOICES, key="layers", default=2)
figure1_groups = bound_choice(choice[1].select_slider, "Groups", FIGURE1_CHOICES, key="fig1_groups", default=3)
per_group = bound_choice(choice[2].select_slider, "Channels per group", FIGURE1_CHOICES, key="per_group", default=4)
figure, stacks = shuffle_ui.figure1(figure1_groups * per_group, figure1_groups, layers)
ui.show(figure, "shuffle_figure1")
counts = st.columns(2)
for column, stack in zip(counts, stacks):
    column.metric(f"Output channels that hear every group, {'with' if stack.shuffle else 'without'} shuffle",
                  f"{stack.outputs_hearing_every_group} of {stack.channels}")
st.caption(flow.figure1_caption(*stacks))

st.header("3. Inside the trained models")
st.markdown("The shuffle each model really applies, read by running the unit's `shuffle` module on channel "
            "indices. Where it sits depends on the model's unit layout: the paper's figure shuffles right after the "
            "first 1x1 GConv, the official code after the 3x3 depthwise conv, with the inverse index map. The "
            "depthwise conv treats every channel alone, so both places connect the same channels (the Information "
            "flow page measures it).")
pair = ui.model_pair()
unit_names = pair[0].model.unit_names()
unit_name = bound_choice(st.selectbox, "Unit", unit_names, key="unit", default="stage2.unit2")
for side, loaded in ui.side_by_side(pair):
    st.subheader(loaded.label)
    if unit_name not in loaded.model.unit_names():
        st.warning(f"{loaded.label} has no unit named {unit_name}.")
        continue
    unit = dict(loaded.model.named_modules())[unit_name]
    st.markdown(f"{unit.layout.name} layout: {flow.describe_unit_parts(unit)}")
    figure, permutation, unit_groups = shuffle_ui.unit_wiring(loaded.name, unit_name)
    ui.show(figure, f"shuffle_unit_wiring_{side}")
    st.caption(flow.unit_shuffle_caption(permutation, unit_groups, unit.shuffle.enabled))
    st.markdown(f"`{flow.describe_permutation(permutation, 6)}`")
