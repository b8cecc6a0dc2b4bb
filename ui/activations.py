"""A picture as each model receives it (its pixels, and the normalised input), and every activation of one
forward pass: computed once per model and picture, shared read-only by the pages that need them (Classify,
Feature maps, The unit, Attributions, Information flow, Does the shuffle help?)."""

from __future__ import annotations

import numpy as np
import streamlit as st
import torch
from PIL import Image

from shufflenet_viz.features import capture_features
from shufflenet_viz.preprocess import preprocess_image, what_model_sees

from .models import loaded_models


# Bounded: 16 entries of one S x S x 3 uint8 picture (12 KB at 64x64, 150 KB at 224x224).
@st.cache_data(max_entries=16, show_spinner=False)
def seen_pixels(model_name: str, image_sha256: str, _image: Image.Image) -> np.ndarray:
    """The picture with this sha256 as the model sees it, before normalisation (resized, cropped, RGB)."""
    return what_model_sees(_image, loaded_models()[model_name].preprocessing)


# Bounded: 16 entries (8 pictures x 2 models) of one (1, 3, S, S) float tensor each (600 KB at 224x224).
@st.cache_resource(max_entries=16, show_spinner=False)
def model_input(model_name: str, image_sha256: str, _image: Image.Image) -> torch.Tensor:
    """The picture with this sha256 as the model receives it (preprocessed, normalised)."""
    return preprocess_image(_image, loaded_models()[model_name].preprocessing)


# Bounded by size, not by use: 4 entries (2 pictures x 2 models). One entry holds every point of one forward pass:
# 0.25M-0.42M floats (1-1.7 MB) for a 64x64 CIFAR model (g=1, g=3), 3.3M (13 MB) for a 224x224 0.5x ImageNet
# model, while recomputing one costs a single forward pass (tens of ms).
@st.cache_resource(max_entries=4, show_spinner="Running the model once to capture every layer...")
def features_of(model_name: str, image_sha256: str, _image: Image.Image) -> dict[str, torch.Tensor]:
    """`capture_features` of the model for the picture with this sha256 (one forward pass, shared read-only)."""
    return capture_features(loaded_models()[model_name].model, model_input(model_name, image_sha256, _image))
