"""Attributions: which pixels, and which channel groups, the class score rests on; both models side by side."""

import time

import numpy as np
import streamlit as st
import torch

import ui
from shufflenet_viz.attributions import (DEFAULT_OPTIONS, METHODS, Attribution, Cancelled, GroupAttribution,
                                         attribute, attribute_groups, black_baseline, occlusion_windows,
                                         to_npy_bytes)
from shufflenet_viz.figures.attributions import attribution_figure, attribution_png, group_bar_figure
from shufflenet_viz.preprocess import preprocess_image, what_model_sees
from shufflenet_viz.weights import LoadedModel

ui.ensure_shell()

# A computation that runs longer than this stops with a message (should_stop), so that a session cannot
# hold a core for minutes; changing any widget stops it earlier (Streamlit raises at the next progress update).
TIME_LIMIT_S = 120
GROUP_STEPS = 50
CONVERGED_DELTA = 0.01  # a convergence delta above this share of the score difference gets advice
BASELINES = {"black": "black image", "mean": "mean colour (zero after normalisation)"}
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


# Bounded: 16 entries (8 pictures x 2 models) of one (1, 3, S, S) float tensor each.
@st.cache_resource(max_entries=16, show_spinner=False)
def model_input(model_name: str, image_sha256: str, _image) -> torch.Tensor:
    """The picture as the model receives it."""
    return preprocess_image(_image, ui.loaded_models()[model_name].preprocessing)


# Bounded: 16 entries of one S x S x 3 uint8 picture (12 KB at 64x64).
@st.cache_data(max_entries=16, show_spinner=False)
def seen_pixels(model_name: str, image_sha256: str, _image) -> np.ndarray:
    """What the model sees, before normalisation (the backdrop of every overlay)."""
    return what_model_sees(_image, ui.loaded_models()[model_name].preprocessing)


# Bounded: 48 slots, each holding one finished result (an Attribution is at most 3 x S x S float64: 98 KB at
# 64x64, 1.2 MB at 224x224). A slot is filled only when its computation finishes; a cancelled one stays empty.
@st.cache_resource(max_entries=48, show_spinner=False)
def result_slot(model_name: str, image_sha256: str, kind: str, options: tuple, target: int) -> dict:
    """The shared place where the result for this model, picture, method, options and target is kept."""
    return {}


def computed(loaded: LoadedModel, kind: str, options: tuple, target: int, run) -> Attribution | GroupAttribution | None:
    """The cached result, or `run(progress, should_stop)` with a progress bar; None when it was stopped."""
    slot = result_slot(loaded.name, current.sha256, kind, options, target)
    if "result" in slot:
        return slot["result"]
    label = f"{METHODS.get(kind, 'Per-group attribution')} for {loaded.label}"
    bar = st.progress(0.0, text=f"{label}...")
    deadline = time.monotonic() + TIME_LIMIT_S
    try:
        result = run(lambda fraction: bar.progress(fraction, text=f"{label}: {fraction:.0%}"),
                     lambda: time.monotonic() > deadline)
    except Cancelled:
        st.warning(f"{label} was stopped after {TIME_LIMIT_S} s. Choose fewer steps or samples (or, for "
                   f"Occlusion, a larger stride) and it will run again.")
        return None
    except ValueError as error:  # settings this model cannot take (e.g. a window larger than its input)
        st.error(f"{label} cannot run with these settings: {error}. Change them above.")
        return None
    finally:
        bar.empty()
    slot["result"] = result
    return result


def method_options(method: str) -> dict:
    """The method's options as widgets; the baseline as a name (see `with_baseline`)."""
    defaults = DEFAULT_OPTIONS[method]
    if method == "integrated_gradients":
        return {"n_steps": st.slider("Steps", 10, 1000, defaults["n_steps"], 10, key="at_ig_steps",
                                     help="More steps: a smaller convergence delta, a longer wait "
                                          "(1,000 steps: several seconds per model)."),
                "baseline": st.radio("Baseline", list(BASELINES), format_func=BASELINES.get, key="at_ig_baseline",
                                     horizontal=True)}
    if method == "smoothgrad":
        options = {"base": st.radio("Averages", ["saliency", "integrated_gradients"], format_func=METHODS.get,
                                    key="at_sg_base", horizontal=True),
                   "nt_samples": st.slider("Noisy samples", 4, 64, defaults["nt_samples"], 4, key="at_sg_samples"),
                   "stdevs": st.slider("Noise (standard deviation)", 0.05, 1.0, defaults["stdevs"], 0.05,
                                       key="at_sg_noise", help="In normalised input units; the input spans "
                                                               "about 4 of them.")}
        if options["base"] == "integrated_gradients":
            options["n_steps"] = st.slider("IG steps per sample", 5, 50, defaults["n_steps"], 5, key="at_sg_steps")
        return options
    if method == "gradcam":
        units = left.model.unit_names()
        return {"unit": st.selectbox("Unit", units, index=units.index(defaults["unit"]), key="at_cam_unit",
                                     help="Later units: coarser maps (2x2 in Stage 4) about larger parts.")}
    if method == "occlusion":
        size = min(m.preprocessing.input_size for m in (left, right))  # the window must fit both inputs
        window = st.slider("Window (pixels)", 2, size // 2, min(defaults["window"], size // 2), 2, key="at_occ_window")
        stride = st.slider("Stride (pixels)", 1, window, min(defaults["stride"], window), 1, key="at_occ_stride")
        st.caption(f"{occlusion_windows(size, window, stride)} window positions per model.")
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
    base = seen_pixels(loaded.name, current.sha256, current.image)
    title = f"{result.label}: {loaded.classes[result.target]}"
    st.plotly_chart(attribution_figure(base, result.map, result.signed, opacity, title), theme=None,
                    key=f"at_overlay_{side}")
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
    png_column.download_button("PNG", attribution_png(base, result.map, result.signed, opacity),
                               file_name=f"{stem}.png", mime="image/png", key=f"at_png_{side}",
                               help="The overlay as shown, with its colour scale.")
    npy_column.download_button(".npy", to_npy_bytes(result.values), file_name=f"{stem}.npy",
                               mime="application/octet-stream", key=f"at_npy_{side}",
                               help=f"The raw attribution, shape {result.values.shape}, for numpy.load.")
    st.caption(f"Computed in {result.seconds:.2f} s.")


def show_groups(loaded: LoadedModel, result: GroupAttribution, side: int) -> None:
    """The per-group bars and which group dominates."""
    st.plotly_chart(group_bar_figure(result, f"{result.unit} by channel group: {loaded.classes[result.target]}"),
                    theme=None, key=f"at_groups_{side}")
    if result.channel_groups.groups > 1:
        top = int(np.argmax(result.shares))
        st.caption(f"Group {top + 1} carries {result.shares[top]:.0%} of the attribution's size "
                   f"(an even split would be {1 / result.channel_groups.groups:.0%}). "
                   f"Convergence delta {result.convergence_delta:+.1e}.")
    else:
        st.caption(f"With g=1 every channel is in one group. Convergence delta {result.convergence_delta:+.1e}.")


current = ui.require_image()
left, right = ui.model_pair()

st.title("Attributions")
st.markdown("Which input pixels raise or lower a class score, by five methods, for both models with the same "
            "method and class. Orange: pixels that speak **for** the class, blue: **against** it; "
            "transparent: no effect.")

method_column, options_column, target_column = st.columns([2, 3, 3], gap="medium")
method = method_column.selectbox("Method", list(METHODS), format_func=METHODS.get, key="at_method")
method_column.caption(METHOD_NOTES[method])
with options_column:
    options = method_options(method)
with target_column:
    shared = [name for name in left.classes if name in set(right.classes)]
    explain = st.radio("Class to explain", ["predicted", "chosen"], key="at_target_kind",
                       format_func={"predicted": "each model's prediction", "chosen": "a class I choose"}.get,
                       disabled=not shared)
    chosen_class = st.selectbox("Class", shared, key="at_class") if explain == "chosen" and shared else None
    if not shared:
        st.caption("The two models share no class, so each explains its own prediction.")
    opacity = st.slider("Opacity of the attribution", 0.0, 1.0, 0.7, 0.05, key="at_opacity")

option_key = tuple(sorted(options.items()))
for side, (column, loaded) in enumerate(zip(st.columns(2, gap="large"), (left, right))):
    with column:
        st.subheader(loaded.label)
        target = target_of(loaded, chosen_class)
        answer = ui.classify_cached(loaded.name, current.sha256, current.image)
        st.caption(f"Explaining **{loaded.classes[target]}** (probability {answer.probabilities[target]:.0%}; "
                   f"predicted: {answer.predicted_class}).")
        x = model_input(loaded.name, current.sha256, current.image)
        result = computed(loaded, method, option_key, target,
                          lambda progress, should_stop: attribute(
                              loaded.model, x, method, target, progress=progress, should_stop=should_stop,
                              **with_baseline(options, loaded)))
        if result is not None:
            show_attribution(loaded, result, side)

st.header("Which channel groups carry the decision?")
st.markdown("Layer Integrated Gradients at one unit's output, summed over the channels of each group "
            f"(black baseline, {GROUP_STEPS} steps). In g=3, does one group dominate?")
units = left.model.unit_names()
group_unit = st.selectbox("Unit", units, index=len(units) - 1, key="at_group_unit")
for side, (column, loaded) in enumerate(zip(st.columns(2, gap="large"), (left, right))):
    with column:
        target = target_of(loaded, chosen_class)
        x = model_input(loaded.name, current.sha256, current.image)
        result = computed(loaded, "groups", (("unit", group_unit), ("n_steps", GROUP_STEPS)), target,
                          lambda progress, should_stop: attribute_groups(
                              loaded.model, x, group_unit, target, n_steps=GROUP_STEPS,
                              baseline=black_baseline(loaded.preprocessing), progress=progress,
                              should_stop=should_stop))
        if result is not None:
            show_groups(loaded, result, side)
