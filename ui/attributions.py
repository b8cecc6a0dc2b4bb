"""Cached results and the progress-bar runner of the Attributions page (kept out of the page script, which
Streamlit re-executes on every run)."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch
from PIL import Image

import ui
from ui.activations import model_input  # noqa: F401
from shufflenet_viz.attributions import METHODS, Attribution, Cancelled, GroupAttribution
from shufflenet_viz.figures.attributions import attribution_figure, attribution_png, group_bar_figure
from shufflenet_viz.preprocess import what_model_sees
from shufflenet_viz.weights import LoadedModel

# A computation that runs longer than this stops with a message (should_stop), so that a session cannot
# hold a core for minutes; changing any widget stops it earlier (Streamlit raises at the next progress update).
TIME_LIMIT_S = 120


# Bounded: 16 entries of one S x S x 3 uint8 picture (12 KB at 64x64, 150 KB at 224x224).
@st.cache_data(max_entries=16, show_spinner=False)
def seen_pixels(model_name: str, image_sha256: str, _image: Image.Image) -> np.ndarray:
    """What the model sees, before normalisation (the backdrop of every overlay)."""
    return what_model_sees(_image, ui.loaded_models()[model_name].preprocessing)


# Bounded: 16 slots (five methods for two models on one picture, and room to spare), each holding one finished
# result (an Attribution is at most 3 x S x S float64: 98 KB at 64x64, 1.5 MB with its inputs at 224x224).
# A slot is filled only when its computation finishes; a cancelled one stays empty.
@st.cache_resource(max_entries=16, show_spinner=False)
def result_slot(model_name: str, image_sha256: str, kind: str, options: tuple, target: int) -> dict:
    """The shared place where the result for this model, picture, method, options and target is kept."""
    return {}


def computed(loaded: LoadedModel, image_sha256: str, kind: str, options: tuple, target: int,
             run: Callable, what: str = "") -> Attribution | GroupAttribution | None:
    """The cached result, or `run(progress, should_stop)` with a progress bar; None when it was stopped.

    `what` follows the percentage on the bar (e.g. "of 226 model evaluations").
    """
    slot = result_slot(loaded.name, image_sha256, kind, options, target)
    if "result" in slot:
        return slot["result"]
    label = f"{METHODS.get(kind, 'Per-group attribution')} for {loaded.label}"
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
