"""The unit page's diagrams (the paper's Figure 2 drawn from a model on the current picture) and a node's feature
maps; the Lesson and the Feature maps page link to it. Kept out of the page script, which Streamlit re-executes
on every run."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st
from PIL import Image

from shufflenet_viz.figures.unit import unit_diagram_figure
from shufflenet_viz.unit_diagram import DiagramNode, UnitDiagram, captured_unit_diagram, dense_counterpart

from .activations import features_of
from .feature_maps import feature_grid
from .models import loaded_models
from .screen import narrow_screen
from .state import projector_mode

# Display mode -> (feature maps shown for a node, columns): a phone's tiles stay at least 40 CSS pixels wide.
NODE_TILES = {"desktop": (48, 12), "projector": (24, 8), "narrow": (24, 6)}
PANELS = {"live": "this unit", "a": "(a) the same unit without groups or shuffle"}


# Bounded: 64 diagrams (16 units x 4 model/picture pairs), each a dozen small records.
@st.cache_resource(max_entries=64, show_spinner=False)
def diagram(model_name: str, image_sha256: str, unit_name: str, _image: Image.Image) -> UnitDiagram:
    """The live diagram of a unit of a loaded model on the picture with this sha256, read from the activations
    captured once per picture (no forward pass of its own)."""
    loaded = loaded_models()[model_name]
    features = features_of(model_name, image_sha256, _image)
    return captured_unit_diagram(loaded.model, unit_name, features, loaded.preprocessing.input_size)


# Bounded: 64 counterparts; they depend on the architecture and input size only.
@st.cache_resource(max_entries=64, show_spinner=False)
def dense_diagram(model_name: str, unit_name: str) -> UnitDiagram:
    """Panel (a) for a unit of a loaded model: dense 1x1 convolutions, no shuffle, same place in the network."""
    loaded = loaded_models()[model_name]
    return dense_counterpart(loaded.model, unit_name, loaded.preprocessing.input_size)


# Bounded: 64 figures of about twenty traces and shapes each.
@st.cache_resource(max_entries=64, show_spinner=False)
def _diagram_figure(model_name: str, image_sha256: str, unit_name: str, panel: str, selected: str | None,
                    title: str, _image: Image.Image, compact: bool, narrow: bool) -> go.Figure:
    shown = dense_diagram(model_name, unit_name) if panel == "a" else \
        diagram(model_name, image_sha256, unit_name, _image)
    return unit_diagram_figure(shown, title, selected, compact, narrow)


def diagram_figure(model_name: str, image_sha256: str, unit_name: str, panel: str, selected: str | None,
                   title: str, image: Image.Image, compact: bool = False) -> go.Figure:
    """The figure of the live unit (panel "live") or of its dense counterpart (panel "a"); on a narrow screen
    each box holds its notes under its title."""
    return _diagram_figure(model_name, image_sha256, unit_name, panel, selected, title, image, compact,
                           narrow_screen())


def node_label(node: DiagramNode) -> str:
    """A node as the Node list (and so the URL) names it: its box's words and its key."""
    return f"{node.title} ({node.key})"


def node_feature_figure(model_name: str, image_sha256: str, node: DiagramNode, title: str,
                        image: Image.Image) -> tuple[go.Figure, int, int]:
    """The first feature maps of a node's channels at its capture point (as many as the display mode shows),
    framed by the group each came from; how many it shows, and how many channels the node has."""
    tiles, columns = NODE_TILES["projector" if projector_mode() else "narrow" if narrow_screen() else "desktop"]
    start, stop = node.channels or (0, features_of(model_name, image_sha256, image)[node.point].shape[1])
    shown = tuple(range(start, min(stop, start + tiles)))
    return feature_grid(model_name, image_sha256, node.point, shown, title, image, columns), len(shown), stop - start


def link_to_unit(model_name: str, unit_name: str, node: DiagramNode | None = None) -> dict[str, str]:
    """The query params that open the unit page on a model's unit (and on one of its nodes), spelled as that
    page's widgets spell them."""
    params = {"model": loaded_models().label(model_name), "unit": unit_name}
    return params if node is None else {**params, "node": node_label(node)}
