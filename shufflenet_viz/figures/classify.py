"""Figures of the Classify page: a model's top-k answer and its model card (confusion matrix, per-class accuracy)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import plotly.graph_objects as go

from ..inference import Classification
from .common import FONT_SIZE, GROUP_COLOURS, style

# The two models compared keep one colour each on every page: the left model blue, the right one orange.
PAIR_COLOURS: tuple[str, str] = (GROUP_COLOURS[0], GROUP_COLOURS[1])


def top_k_figure(classification: Classification, k: int = 5, colour: str = PAIR_COLOURS[0],
                 title: str | None = None) -> go.Figure:
    """Horizontal bars of the k most likely classes, the most likely on top, labelled with percentages."""
    top = classification.top(k)
    names = [name for name, _ in top][::-1]  # plotly draws the first category at the bottom
    probabilities = [p for _, p in top][::-1]
    figure = go.Figure(go.Bar(
        x=probabilities, y=names, orientation="h", marker_color=colour,
        text=[f"{p:.1%}" for p in probabilities], textposition="outside", cliponaxis=False,
        hovertemplate="%{y}: %{x:.2%}<extra></extra>"))
    figure.update_xaxes(range=[0, 1.18], tickformat=".0%", title_text="probability")
    figure.update_yaxes(tickfont=dict(size=FONT_SIZE + 2))
    return style(figure, title, height=90 + 48 * len(top))


def confusion_figure(matrix: Sequence[Sequence[int]], classes: Sequence[str], title: str | None = None) -> go.Figure:
    """Counts of test images by true class (rows) and predicted class (columns), each cell labelled."""
    counts = [list(map(int, row)) for row in matrix]
    if len(counts) != len(classes) or any(len(row) != len(classes) for row in counts):
        raise ValueError(f"a confusion matrix for {len(classes)} classes must be {len(classes)}x{len(classes)}")
    labels = list(classes)
    figure = go.Figure(go.Heatmap(
        z=counts, x=labels, y=labels, colorscale="Blues", showscale=False,
        text=[[str(v) for v in row] for row in counts], texttemplate="%{text}",
        hovertemplate="true %{y}, predicted %{x}: %{z} images<extra></extra>"))
    figure.update_xaxes(title_text="predicted class", side="bottom", tickangle=-45)
    figure.update_yaxes(title_text="true class", autorange="reversed")
    style(figure, title, height=140 + 44 * len(labels))
    figure.update_layout(font=dict(size=FONT_SIZE - 4))  # ten labels per axis must fit in half a screen
    return figure


def per_class_accuracy_figure(per_class: Mapping[str, float], colour: str = PAIR_COLOURS[0],
                              title: str | None = None) -> go.Figure:
    """Accuracy on the test set for each class, as horizontal bars in the classes' order (first on top)."""
    names = list(per_class)[::-1]
    accuracies = [float(per_class[name]) for name in names]
    figure = go.Figure(go.Bar(
        x=accuracies, y=names, orientation="h", marker_color=colour,
        text=[f"{a:.0%}" for a in accuracies], textposition="outside", cliponaxis=False,
        hovertemplate="%{y}: %{x:.1%}<extra></extra>"))
    figure.update_xaxes(range=[0, 1.15], tickformat=".0%", title_text="test accuracy")
    return style(figure, title, height=90 + 34 * len(names))
