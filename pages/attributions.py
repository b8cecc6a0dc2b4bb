"""Attributions: which pixels, and which channel groups, the class score rests on; both models side by side.
The method, its options, the class and the group unit live in the URL (?method=Grad-CAM&cam_unit=stage3.unit8...)."""

import streamlit as st

import ui
from ui import attributions as ui_attributions
from ui.url import bound_choice, bound_flag, bound_number
from shufflenet_viz.attributions import METHODS, colour_legend

ui.ensure_shell()

AUTO_GROUP_PIXELS = 64 * 64  # inputs up to this size open with IG and get the per-group attribution unasked
TARGETS = {"predicted": "each model's prediction", "chosen": "a class I choose"}
METHOD_NOTES = {
    "integrated_gradients": "Integrates the gradient along a straight path from a baseline picture to this "
                            "one. The attributions add up to score(picture) - score(baseline); the "
                            "convergence delta says how far the sum is from that.",
    "saliency": "The size of the gradient of the class score for each input value: where a small change "
                "would move the score most. No sign.",
    "smoothgrad": "The average of Saliency (or IG) over noisy copies of the picture: less speckle.",
    "gradcam": "The unit's channels weighted by their average gradient, summed, kept where positive and "
               "scaled up to the picture: a coarse map of where the unit saw evidence for the class.",
    "occlusion": "Covers the picture with a window (black or the mean colour) at each position and records "
                 "how much the class score drops: slow but model-agnostic.",
}

current = ui.require_image()
pair = ui.model_pair()
left, right = pair

st.title("Attributions")
st.markdown("Which input pixels a class score rests on, by five methods, for both models with the same method "
            "and class.")

# Small inputs open with Integrated Gradients (a fraction of a second per model); at 224x224 its 50 gradient steps
# take a second or more per model, so the page opens with Saliency (one gradient) and IG is one choice away.
cheap = max(m.preprocessing.input_size for m in pair) ** 2 <= AUTO_GROUP_PIXELS
method_column, options_column, target_column = st.columns([2, 3, 3], gap="medium")
with method_column:
    method = bound_choice(st.selectbox, "Method", METHODS, key="method", format_func=METHODS.get,
                          default="integrated_gradients" if cheap else "saliency")
    st.caption(METHOD_NOTES[method])
    if not cheap and method == "saliency":
        st.caption("At 224x224 the page opens with Saliency; Integrated Gradients, 50 gradient steps per model, is "
                   "one choice away.")
with options_column:
    options = ui_attributions.method_options(method, pair)
with target_column:
    right_classes = set(right.classes)
    shared = [name for name in left.classes if name in right_classes]
    target_kind = bound_choice(st.radio, "Class to explain", TARGETS, key="target", format_func=TARGETS.get,
                           disabled=not shared)
    chosen_class = None
    if target_kind == "chosen" and shared:
        chosen_class = bound_choice(st.selectbox, "Class", shared, key="class",
                                    help=f"The {len(shared):,} classes both models know; type part of a name to "
                                         f"filter the list.")
    if not shared:
        st.caption("The two models share no class, so each explains its own prediction.")
    opacity = bound_number(st.slider, "Opacity of the attribution", 0.0, 1.0, key="opacity", default=0.7, step=0.05)

st.markdown(colour_legend(method, options))
for side, loaded in ui.side_by_side(pair):
    ui_attributions.explain(loaded, current, method, options, chosen_class, opacity, side)

st.header("Which channel groups carry the decision?")
st.markdown(f"Layer Integrated Gradients at one unit's output (black baseline, {ui_attributions.GROUP_STEPS} "
            "steps), summed over positions: one attribution per channel. Channels are grouped by where they came "
            "from: the group of the 1x1 GConv that computed them (a stride-2 unit's pooled shortcut keeps its "
            "earlier group; stage2.unit1's pooled stem channels have none). A bar is the sum of its channels' "
            "|attribution|, so channels for and against the class both count; its label is the share of all "
            "channels' sum. In g=3, does one group dominate?")
units = left.model.unit_names()
group_unit = bound_choice(st.selectbox, "Unit", units, key="group_unit", default=units[-1])
# Layer IG costs as much as IG itself: at once for small inputs (CIFAR-10's 64x64: a fraction of a second), on
# request above that (224x224: about a second per model), so that the page's first answer does not wait for it.
groups_on = bound_flag(st.toggle, f"Compute it for both models ({ui_attributions.GROUP_STEPS} steps of Layer IG "
                                  f"each)", key="groups", default=cheap)
if groups_on:
    for side, loaded in ui.side_by_side(pair):
        ui_attributions.explain_groups(loaded, current, group_unit, chosen_class, side)
