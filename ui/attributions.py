"""The Attributions page's settings, cached results and the overlays and bars it draws from them (kept out of the
page script, which Streamlit re-executes on every run)."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import plotly.graph_objects as go
import streamlit as st

import ui
from shufflenet_viz.attributions import (DEFAULT_OPTIONS, METHODS, Attribution, Cancelled, GroupAttribution,
                                         attribute, attribute_groups, black_baseline, describe_groups,
                                         describe_occlusion, occlusion_defaults, occlusion_windows, to_npy_bytes)
from shufflenet_viz.figures.attributions import attribution_figure, attribution_png, group_bar_figure
from shufflenet_viz.heavy_work import HEAVY_ATTRIBUTIONS
from shufflenet_viz.weights import LoadedModel

from .activations import model_input, seen_pixels
from .display import show
from .heavy_work import heavy_turn
from .url import bound_choice, bound_number

GROUP_STEPS = 50
CONVERGED_DELTA = 0.01  # a convergence delta above this share of the score difference gets advice
BASELINES = {"black": "black image", "mean": "mean colour (zero after normalisation)"}
# A computation that runs longer than this stops with a message (should_stop), so that a session cannot
# hold a core for minutes; changing any widget stops it earlier (Streamlit raises at the next progress update).
TIME_LIMIT_S = 120


# Bounded: 16 slots (five methods for two models on one picture, and room to spare), each holding one finished
# result (an Attribution is at most 3 x S x S float64: 98 KB at 64x64, 1.5 MB with its inputs at 224x224).
# A slot is filled only when its computation finishes; a cancelled one stays empty.
@st.cache_resource(max_entries=16, show_spinner=False)
def result_slot(model_name: str, image_sha256: str, kind: str, options: tuple, target: int) -> dict:
    """The shared place where the result for this model, picture, method, options and target is kept."""
    return {}


def computed(loaded: LoadedModel, image_sha256: str, kind: str, options: tuple, target: int,
             run: Callable, what: str = "", *, place: str) -> Attribution | GroupAttribution | None:
    """The cached result, or `run(progress, should_stop)` with a progress bar; None when it was stopped.

    `what` follows the percentage on the bar (e.g. "of 226 model evaluations"). A heavy kind (HEAVY_ATTRIBUTIONS)
    first waits for its turn among the server's heavy computations; `place` names its spot on the page.
    """
    slot = result_slot(loaded.name, image_sha256, kind, options, target)
    if "result" in slot:
        return slot["result"]
    label = f"{METHODS.get(kind, 'Per-group attribution')} for {loaded.label}"
    if kind not in HEAVY_ATTRIBUTIONS:
        return _run_with_progress(slot, label, run, what)
    with heavy_turn(label, place, (loaded.name, image_sha256, kind, options, target)) as may_run:
        return _run_with_progress(slot, label, run, what) if may_run else None


def _run_with_progress(slot: dict, label: str, run: Callable, what: str) -> Attribution | GroupAttribution | None:
    # The time limit counts from here: waiting for a turn is not computing.
    bar = st.progress(0.0, text=f"{label}...")
    deadline = time.monotonic() + TIME_LIMIT_S
    try:
        result = run(lambda fraction: bar.progress(fraction, text=f"{label}: {fraction:.0%} {what}".rstrip()),
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


# Bounded: 16 overlays (a figure and a PNG of at most 224x224 pixels, ~1 MB together). Building the plotly figure
# and encoding the PNG cost more than a warm rerun may take, so each is made once per result and opacity.
@st.cache_resource(max_entries=16, show_spinner=False)
def overlay(model_name: str, image_sha256: str, kind: str, options: tuple, target: int, opacity: float, title: str,
            _result: Attribution, _base: np.ndarray) -> tuple[go.Figure, bytes]:
    """The overlay figure and its PNG for the result kept under the same key (see `result_slot`)."""
    return (attribution_figure(_base, _result.map, _result.signed, opacity, title),
            attribution_png(_base, _result.map, _result.signed, opacity))


# Bounded: 32 bar charts of at most 9 bars.
@st.cache_resource(max_entries=32, show_spinner=False)
def group_bars(model_name: str, image_sha256: str, options: tuple, target: int, title: str,
               _result: GroupAttribution) -> go.Figure:
    """The per-group bar chart of the result kept under the same key."""
    return group_bar_figure(_result, title)


def method_options(method: str, pair: tuple[LoadedModel, LoadedModel]) -> dict:
    """The method's options as widgets, each bound to a URL parameter of its own; the baseline as a name (see
    `with_baseline`). Options of the same name in two methods have two parameters, as their ranges differ."""
    defaults = DEFAULT_OPTIONS[method]
    if method == "integrated_gradients":
        return {"n_steps": bound_number(st.slider, "Steps", 10, 1000, key="steps", default=defaults["n_steps"],
                                        step=10, help="More steps: a smaller convergence delta, a longer wait "
                                                      "(1,000 steps: several seconds per model)."),
                "baseline": bound_choice(st.radio, "Baseline", BASELINES, key="baseline", format_func=BASELINES.get,
                                         horizontal=True)}
    if method == "smoothgrad":
        options = {"base": bound_choice(st.radio, "Averages", ["saliency", "integrated_gradients"], key="base",
                                        format_func=METHODS.get, horizontal=True),
                   "nt_samples": bound_number(st.slider, "Noisy samples", 4, 64, key="samples",
                                              default=defaults["nt_samples"], step=4),
                   "stdevs": bound_number(st.slider, "Noise (standard deviation)", 0.05, 1.0, key="noise",
                                          default=defaults["stdevs"], step=0.05,
                                          help="In normalised input units; the input spans about 4 of them.")}
        if options["base"] == "integrated_gradients":
            options["n_steps"] = bound_number(st.slider, "IG steps per sample", 5, 50, key="sg_steps",
                                              default=defaults["n_steps"], step=5)
        return options
    if method == "gradcam":
        last = min(m.preprocessing.input_size for m in pair) // 32
        return {"unit": bound_choice(st.selectbox, "Unit", pair[0].model.unit_names(), key="cam_unit",
                                     default=defaults["unit"],
                                     help=f"Later units: coarser maps ({last}x{last} in Stage 4 at the smaller "
                                          f"input) about larger parts.")}
    if method == "occlusion":
        size = min(m.preprocessing.input_size for m in pair)  # the window must fit both inputs
        sized = occlusion_defaults(size)
        window = bound_number(st.slider, "Window (pixels)", 2, size // 2, key="window",
                              default=min(sized["window"], size // 2), step=2)
        stride = bound_number(st.slider, "Stride (pixels)", 1, window, key="stride",
                              default=min(sized["stride"], window), step=1)
        st.caption(describe_occlusion({m.label: m.preprocessing.input_size for m in pair}, window, stride))
        return {"window": window, "stride": stride,
                "baseline": bound_choice(st.radio, "Window fill", BASELINES, key="fill", format_func=BASELINES.get,
                                         horizontal=True)}
    return {}


def with_baseline(options: dict, loaded: LoadedModel) -> dict:
    """The options for `attribute`: a baseline name becomes the model's tensor (None: zeros, the mean colour)."""
    if options.get("baseline") != "black":
        return {**options, "baseline": None} if "baseline" in options else options
    return {**options, "baseline": black_baseline(loaded.preprocessing)}


def target_of(loaded: LoadedModel, image, chosen_class: str | None) -> int:
    """The class index to explain for the picture: the model's own prediction, or the chosen class."""
    if chosen_class is None:
        return ui.classify_cached(loaded.name, image.sha256, image.image).predicted_index
    return loaded.classes.index(chosen_class)


def explain(loaded: LoadedModel, image, method: str, options: dict, chosen_class: str | None, opacity: float,
            side: int) -> None:
    """One model's attribution of the picture by `method`: the class explained, the overlay, its numbers and
    downloads (a progress bar while it is computed)."""
    st.subheader(loaded.label)
    target = target_of(loaded, image, chosen_class)
    answer = ui.classify_cached(loaded.name, image.sha256, image.image)
    st.caption(f"Explaining **{loaded.classes[target]}** (probability {answer.probabilities[target]:.0%}; "
               f"predicted: {answer.predicted_class}).")
    x = model_input(loaded.name, image.sha256, image.image)
    evaluations = ""
    if method == "occlusion" and options["window"] <= loaded.preprocessing.input_size:
        count = occlusion_windows(loaded.preprocessing.input_size, options["window"], options["stride"]) + 1
        evaluations = f"of {count:,} model evaluations"
    option_key = tuple(sorted(options.items()))
    result = computed(loaded, image.sha256, method, option_key, target,
                      lambda progress, should_stop: attribute(loaded.model, x, method, target, progress=progress,
                                                              should_stop=should_stop,
                                                              **with_baseline(options, loaded)),
                      evaluations, place=f"{method}_{side}")
    if result is not None:
        _show_attribution(loaded, image, result, option_key, opacity, side)


def _show_attribution(loaded: LoadedModel, image, result: Attribution, option_key: tuple, opacity: float,
                      side: int) -> None:
    # The overlay, IG's convergence delta and the downloads.
    title = f"{result.label}: {loaded.classes[result.target]}"
    figure, png = overlay(loaded.name, image.sha256, result.method, option_key, result.target, opacity, title, result,
                          seen_pixels(loaded.name, image.sha256, image.image))
    show(figure, f"at_overlay_{side}")
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
    png_column.download_button("PNG", png, file_name=f"{stem}.png", mime="image/png", key=f"at_png_{side}",
                               help="The overlay as shown, with its colour scale.")
    npy_column.download_button("Raw values (NumPy)", to_npy_bytes(result.values), file_name=f"{stem}.npy",
                               mime="application/octet-stream", key=f"at_npy_{side}",
                               help=f"The raw attribution, shape {result.values.shape}, for numpy.load.")
    st.caption(f"Computed in {result.seconds:.2f} s.")


def explain_groups(loaded: LoadedModel, image, unit: str, chosen_class: str | None, side: int) -> None:
    """One model's Layer Integrated Gradients at `unit` summed per channel group: the bars and what they say."""
    target = target_of(loaded, image, chosen_class)
    x = model_input(loaded.name, image.sha256, image.image)
    group_options = (("unit", unit), ("n_steps", GROUP_STEPS))
    result = computed(loaded, image.sha256, "groups", group_options, target,
                      lambda progress, should_stop: attribute_groups(
                          loaded.model, x, unit, target, n_steps=GROUP_STEPS,
                          baseline=black_baseline(loaded.preprocessing), progress=progress, should_stop=should_stop),
                      place=f"groups_{side}")
    if result is None:
        return
    title = f"{result.unit} by channel group: {loaded.classes[result.target]}"
    show(group_bars(loaded.name, image.sha256, group_options, result.target, title, result), f"at_groups_{side}")
    st.caption(describe_groups(result))
