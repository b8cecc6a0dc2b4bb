"""The Classify page's results, cached: each model's answer for the picture, what the model sees as a PNG, the
top-k chart and the model card's charts. Figures are returned as built; `ui.display.show` draws them for the
display mode."""

from __future__ import annotations

import io

import plotly.graph_objects as go
import streamlit as st
from PIL import Image

from shufflenet_viz.figures.classify import PAIR_COLOURS, confusion_figure, per_class_accuracy_figure
from shufflenet_viz.figures.classify import top_k_figure as build_top_k_figure
from shufflenet_viz.inference import Classification, classify

from .activations import seen_pixels
from .models import loaded_models

TOP_K = 5
SEEN_SIDE = 256  # "what the model sees" is blown up to about this many pixels, nearest neighbour
CARD_MAX_CLASSES = 20  # beyond this a per-class chart or confusion matrix is unreadable (ImageNet: 1000)


# Bounded: 64 entries (32 pictures x 2 models) for all sessions together; one entry is a Classification of at
# most 1000 probabilities (8 KB), so the whole cache stays under 1 MB. Least recently used entries go first.
@st.cache_data(max_entries=64, show_spinner=False)
def classify_cached(model_name: str, image_sha256: str, _image: Image.Image) -> Classification:
    """`inference.classify` for a loaded model and the picture with this sha256, computed once per pair."""
    return classify(loaded_models()[model_name], _image)


# Bounded: 64 entries (32 pictures x 2 models), each a PNG of at most 256x256 pixels (~100 KB): < 7 MB.
@st.cache_data(max_entries=64, show_spinner=False)
def seen_png_cached(model_name: str, image_sha256: str, _image: Image.Image) -> bytes:
    """The model's input picture (before normalisation) enlarged with square pixels, as PNG bytes."""
    pixels = Image.fromarray(seen_pixels(model_name, image_sha256, _image))
    factor = max(1, SEEN_SIDE // pixels.width)
    buffer = io.BytesIO()
    pixels.resize((pixels.width * factor, pixels.height * factor), Image.Resampling.NEAREST).save(buffer, "PNG")
    return buffer.getvalue()


# Bounded: 64 figures (32 pictures x 2 sides), a few KB each. Built once per picture and model, then only read:
# rebuilding a plotly figure costs more than the forward pass it shows.
@st.cache_resource(max_entries=64, show_spinner=False)
def top_k_figure(model_name: str, image_sha256: str, side: int, _image: Image.Image) -> go.Figure:
    """The top-k chart of this model for the picture with this sha256, in the colour of its side (shared
    read-only)."""
    answer = classify_cached(model_name, image_sha256, _image)
    return build_top_k_figure(answer, TOP_K, PAIR_COLOURS[side], f"Top {TOP_K}")


# Bounded: 16 models x 2 sides; the figures depend on the manifest alone and are only read afterwards.
@st.cache_resource(max_entries=32, show_spinner=False)
def model_card_figures(model_name: str, side: int) -> tuple[go.Figure | None, go.Figure | None]:
    """(per-class accuracy chart or None, confusion matrix or None) from the model's manifest metrics; None
    where the manifest has no such metric or the model has too many classes to read one (shared read-only)."""
    loaded = loaded_models()[model_name]
    metrics = loaded.entry.get("metrics", {})
    per_class, matrix = metrics.get("per_class_accuracy"), metrics.get("confusion_matrix")
    small = len(loaded.classes) <= CARD_MAX_CLASSES
    per_class_figure = per_class_accuracy_figure(per_class, PAIR_COLOURS[side], "Accuracy per class") \
        if per_class and small else None
    matrix_figure = confusion_figure(matrix, loaded.classes, "Confusion matrix (test set)") \
        if matrix and small else None
    return per_class_figure, matrix_figure

