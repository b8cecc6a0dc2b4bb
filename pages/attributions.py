"""Attributions: which pixels, and which channel groups, the class score rests on; both models side by side.
The method, its options, the class and the group unit live in the URL (?method=gradcam&cam_unit=stage3.unit8...)."""

import streamlit as st

import ui
from ui import attributions as ui_explain
from ui import url as ui_url
from shufflenet_viz.attributions import (DEFAULT_OPTIONS, METHODS, Attribution, GroupAttribution, attribute,
                                         attribute_groups, black_baseline, describe_groups, describe_occlusion,
                                         occlusion_defaults, occlusion_windows, to_npy_bytes)
from shufflenet_viz.weights import LoadedModel

ui.ensure_shell()

GROUP_STEPS = 50
AUTO_GROUP_PIXELS = 64 * 64  # inputs up to this size open with IG and get the per-group attribution unasked
CONVERGED_DELTA = 0.01  # a convergence delta above this share of the score difference gets advice
BASELINES = {"black": "black image", "mean": "mean colour (zero after normalisation)"}
TARGETS = {"predicted": "each model's prediction", "chosen": "a class I choose"}
# Option of a method -> its URL param. Methods share a param where they share an option, and the URL remembers it
# under one name ("at_" + param), so that a value written for one method is never taken as a link by another.
OPTION_PARAMS = {"n_steps": "steps", "baseline": "baseline", "base": "base", "nt_samples": "samples",
                 "stdevs": "noise", "unit": "cam_unit", "window": "window", "stride": "stride"}
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


def method_options(method: str) -> dict:
    """The method's options as widgets, each kept in the URL (see OPTION_PARAMS); the baseline as a name (see
    `with_baseline`)."""
    defaults = DEFAULT_OPTIONS[method]
    if method == "integrated_gradients":
        ui_url.number("at_ig_steps", "steps", 10, 1000, defaults["n_steps"], marker="at_steps")
        ui_url.choice("at_ig_baseline", "baseline", list(BASELINES), "black", BASELINES.get, marker="at_baseline")
        return {"n_steps": st.slider("Steps", 10, 1000, step=10, key="at_ig_steps",
                                     help="More steps: a smaller convergence delta, a longer wait "
                                          "(1,000 steps: several seconds per model)."),
                "baseline": st.radio("Baseline", list(BASELINES), format_func=BASELINES.get, key="at_ig_baseline",
                                     horizontal=True)}
    if method == "smoothgrad":
        bases = ["saliency", "integrated_gradients"]
        ui_url.choice("at_sg_base", "base", bases, bases[0], METHODS.get, marker="at_base")
        ui_url.number("at_sg_samples", "samples", 4, 64, defaults["nt_samples"], marker="at_samples")
        ui_url.number("at_sg_noise", "noise", 0.05, 1.0, defaults["stdevs"], kind=float, marker="at_noise")
        options = {"base": st.radio("Averages", bases, format_func=METHODS.get, key="at_sg_base", horizontal=True),
                   "nt_samples": st.slider("Noisy samples", 4, 64, step=4, key="at_sg_samples"),
                   "stdevs": st.slider("Noise (standard deviation)", 0.05, 1.0, step=0.05, key="at_sg_noise",
                                       help="In normalised input units; the input spans about 4 of them.")}
        if options["base"] == "integrated_gradients":
            ui_url.number("at_sg_steps", "steps", 5, 50, defaults["n_steps"], marker="at_steps")
            options["n_steps"] = st.slider("IG steps per sample", 5, 50, step=5, key="at_sg_steps")
        return options
    if method == "gradcam":
        units = left.model.unit_names()
        last = min(m.preprocessing.input_size for m in (left, right)) // 32
        ui_url.choice("at_cam_unit", "cam_unit", units, defaults["unit"], marker="at_cam_unit")
        return {"unit": st.selectbox("Unit", units, key="at_cam_unit",
                                     help=f"Later units: coarser maps ({last}x{last} in Stage 4 at the smaller "
                                          f"input) about larger parts.")}
    if method == "occlusion":
        size = min(m.preprocessing.input_size for m in (left, right))  # the window must fit both inputs
        sized = occlusion_defaults(size)
        ui_url.number("at_occ_window", "window", 2, size // 2, min(sized["window"], size // 2), marker="at_window")
        window = st.slider("Window (pixels)", 2, size // 2, step=2, key="at_occ_window")
        ui_url.number("at_occ_stride", "stride", 1, window, min(sized["stride"], window), marker="at_stride")
        stride = st.slider("Stride (pixels)", 1, window, step=1, key="at_occ_stride")
        st.caption(describe_occlusion({m.label: m.preprocessing.input_size for m in (left, right)}, window, stride))
        ui_url.choice("at_occ_baseline", "baseline", list(BASELINES), "black", BASELINES.get, marker="at_baseline")
        return {"window": window, "stride": stride,
                "baseline": st.radio("Window fill", list(BASELINES), format_func=BASELINES.get,
                                     key="at_occ_baseline", horizontal=True)}
    return {}


def with_baseline(options: dict, loaded: LoadedModel) -> dict:
    """The options for `attribute`: a baseline name becomes the model's tensor (None: zeros, the mean colour)."""
    if options.get("baseline") != "black":
        return {**options, "baseline": None} if "baseline" in options else options
    return {**options, "baseline": black_baseline(loaded.preprocessing)}


def target_of(loaded: LoadedModel, chosen_class: str | None) -> int:
    """The class index to explain: the model's own prediction, or the chosen class."""
    if chosen_class is None:
        return ui.classify_cached(loaded.name, current.sha256, current.image).predicted_index
    return loaded.classes.index(chosen_class)


def show_attribution(loaded: LoadedModel, result: Attribution, side: int) -> None:
    """The overlay, IG's convergence delta and the downloads."""
    base = ui_explain.seen_pixels(loaded.name, current.sha256, current.image)
    title = f"{result.label}: {loaded.classes[result.target]}"
    figure, png = ui_explain.overlay(loaded.name, current.sha256, result.method, option_key, result.target, opacity,
                                     title, result, base)
    st.plotly_chart(ui.for_screen(figure), theme=None, key=f"at_overlay_{side}")
    if result.convergence_delta is not None:
        st.metric("IG convergence delta", f"{result.convergence_delta:+.2e}",
                  help="sum of attributions - (score of the picture - score of the baseline); 0 is exact.")
        converged = result.relative_delta <= CONVERGED_DELTA
        st.caption(f"{result.relative_delta:.2%} of score(picture) - score(baseline) "
                   f"({result.options['n_steps']} steps)." +
                   ("" if converged else
                    f" Above {CONVERGED_DELTA:.0%}: the gradient jumps along the path wherever a ReLU switches, so "
                    f"the sum converges slowly; raise the steps (e.g. to 1,000)."))
    stem = f"{loaded.name}_{result.method}_{loaded.classes[result.target]}".replace(" ", "_")
    png_column, npy_column = st.columns(2)
    png_column.download_button("PNG", png,
                               file_name=f"{stem}.png", mime="image/png", key=f"at_png_{side}",
                               help="The overlay as shown, with its colour scale.")
    npy_column.download_button(".npy", to_npy_bytes(result.values), file_name=f"{stem}.npy",
                               mime="application/octet-stream", key=f"at_npy_{side}",
                               help=f"The raw attribution, shape {result.values.shape}, for numpy.load.")
    st.caption(f"Computed in {result.seconds:.2f} s.")


def show_groups(loaded: LoadedModel, result: GroupAttribution, side: int, group_options: tuple) -> None:
    """The per-group bars and what they say."""
    title = f"{result.unit} by channel group: {loaded.classes[result.target]}"
    figure = ui_explain.group_bars(loaded.name, current.sha256, group_options, result.target, title, result)
    st.plotly_chart(ui.for_screen(figure), theme=None, key=f"at_groups_{side}")
    st.caption(describe_groups(result))


current = ui.require_image()
left, right = ui.model_pair()

st.title("Attributions")
st.markdown("Which input pixels raise or lower a class score, by five methods, for both models with the same "
            "method and class. Orange: pixels that speak **for** the class, blue: **against** it; "
            "transparent: no effect.")

# Small inputs open with Integrated Gradients (a fraction of a second per model); at 224x224 its 50 gradient steps
# take a second or more per model, so the page opens with Saliency (one gradient) and IG is one choice away.
cheap = max(m.preprocessing.input_size for m in (left, right)) ** 2 <= AUTO_GROUP_PIXELS
ui_url.choice("at_method", "method", list(METHODS), "integrated_gradients" if cheap else "saliency", METHODS.get)
method_column, options_column, target_column = st.columns([2, 3, 3], gap="medium")
method = method_column.selectbox("Method", list(METHODS), format_func=METHODS.get, key="at_method")
method_column.caption(METHOD_NOTES[method])
if not cheap and method == "saliency":
    method_column.caption("At 224x224 the page opens with Saliency; Integrated Gradients, 50 gradient steps per "
                          "model, is one choice away.")
with options_column:
    options = method_options(method)
with target_column:
    right_classes = set(right.classes)
    shared = [name for name in left.classes if name in right_classes]
    ui_url.choice("at_target_kind", "target", list(TARGETS), "predicted", TARGETS.get)
    explain = st.radio("Class to explain", list(TARGETS), key="at_target_kind", format_func=TARGETS.get,
                       disabled=not shared)
    chosen_class = None
    if explain == "chosen" and shared:
        ui_url.choice("at_class", "class", shared, shared[0])
        chosen_class = st.selectbox("Class", shared, key="at_class",
                                    help=f"The {len(shared):,} classes both models know; type part of a name to "
                                         f"filter the list.")
    if not shared:
        st.caption("The two models share no class, so each explains its own prediction.")
    ui_url.number("at_opacity", "opacity", 0.0, 1.0, 0.7, kind=float)
    opacity = st.slider("Opacity of the attribution", 0.0, 1.0, step=0.05, key="at_opacity")

option_key = tuple(sorted(options.items()))
for side, (column, loaded) in enumerate(zip(st.columns(2, gap="large"), (left, right))):
    with column:
        st.subheader(loaded.label)
        target = target_of(loaded, chosen_class)
        answer = ui.classify_cached(loaded.name, current.sha256, current.image)
        st.caption(f"Explaining **{loaded.classes[target]}** (probability {answer.probabilities[target]:.0%}; "
                   f"predicted: {answer.predicted_class}).")
        x = ui_explain.model_input(loaded.name, current.sha256, current.image)
        evaluations = ""
        if method == "occlusion" and options["window"] <= loaded.preprocessing.input_size:
            count = occlusion_windows(loaded.preprocessing.input_size, options["window"], options["stride"]) + 1
            evaluations = f"of {count:,} model evaluations"
        result = ui_explain.computed(loaded, current.sha256, method, option_key, target,
                                     lambda progress, should_stop: attribute(
                                         loaded.model, x, method, target, progress=progress,
                                         should_stop=should_stop, **with_baseline(options, loaded)),
                                     evaluations)
        if result is not None:
            show_attribution(loaded, result, side)

st.header("Which channel groups carry the decision?")
st.markdown(f"Layer Integrated Gradients at one unit's output (black baseline, {GROUP_STEPS} steps), summed over "
            "positions: one attribution per channel. Channels are grouped by where they came from: the group of "
            "the 1x1 GConv that computed them (a stride-2 unit's pooled shortcut keeps its earlier group; "
            "stage2.unit1's pooled stem channels have none). A bar is the sum of its channels' |attribution|, "
            "so channels for and against the class both count; its label is the share of all channels' sum. "
            "In g=3, does one group dominate?")
units = left.model.unit_names()
ui_url.choice("at_group_unit", "group_unit", units, units[-1])
group_unit = st.selectbox("Unit", units, key="at_group_unit")
# Layer IG costs as much as IG itself: at once for small inputs (CIFAR-10's 64x64: a fraction of a second), on
# request above that (224x224: about a second per model), so that the page's first answer does not wait for it.
ui_url.flag("at_groups_on", "groups", cheap)
groups_on = st.toggle(f"Compute it for both models ({GROUP_STEPS} steps of Layer IG each)", key="at_groups_on")
ui_url.to_url({"method": ("at_method", method),
               **{OPTION_PARAMS[name]: (f"at_{OPTION_PARAMS[name]}", value) for name, value in options.items()},
               "target": ("at_target_kind", explain),
               **({"class": ("at_class", chosen_class)} if chosen_class is not None else {}),
               "opacity": ("at_opacity", opacity), "group_unit": ("at_group_unit", group_unit),
               "groups": ("at_groups_on", groups_on)})
if groups_on:
    for side, (column, loaded) in enumerate(zip(st.columns(2, gap="large"), (left, right))):
        with column:
            target = target_of(loaded, chosen_class)
            x = ui_explain.model_input(loaded.name, current.sha256, current.image)
            group_options = (("unit", group_unit), ("n_steps", GROUP_STEPS))
            result = ui_explain.computed(loaded, current.sha256, "groups", group_options, target,
                                         lambda progress, should_stop: attribute_groups(
                                             loaded.model, x, group_unit, target, n_steps=GROUP_STEPS,
                                             baseline=black_baseline(loaded.preprocessing), progress=progress,
                                             should_stop=should_stop))
            if result is not None:
                show_groups(loaded, result, side, group_options)
