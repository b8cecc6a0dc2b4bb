"""Figures of information flow between channel groups: structural reachability, measured influence,
and how a prediction changes when the shuffle is switched off."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go

from ..flow import Influence
from ..inference import Classification
from ..model import channel_group_index
from .common import FONT_SIZE, NEGATIVE_COLOUR, POSITIVE_COLOUR, style

# Large matrices are shown in bins so a figure stays light enough for a browser (960 x 960 would be
# ~1M cells per panel); group boundaries always fall on bin edges for the models' channel counts.
MAX_CELLS_PER_AXIS = 240
BOUNDARY_COLOUR = POSITIVE_COLOUR
CONNECTED_COLOUR = NEGATIVE_COLOUR
# Cividis is designed for colour-vision deficiencies; exact zeros are left white (not drawn).
INFLUENCE_SCALE = "Cividis"
INFLUENCE_DECADES = 4  # influence below max / 10^4 is drawn at the bottom of the scale


def bin_size(channels: int, max_cells: int = MAX_CELLS_PER_AXIS) -> int:
    """The smallest divisor of `channels` that leaves at most `max_cells` bins."""
    return next(size for size in range(1, channels + 1) if channels % size == 0 and channels // size <= max_cells)


def pool_matrix(matrix: np.ndarray, reduce: str) -> tuple[np.ndarray, int, int]:
    """Bin a (rows, columns) matrix to at most MAX_CELLS_PER_AXIS per axis by 'mean' or 'sum';
    returns the pooled matrix and the bin sizes (rows, columns)."""
    rows, columns = matrix.shape
    row_bin, column_bin = bin_size(rows), bin_size(columns)
    blocks = np.asarray(matrix, dtype=np.float64).reshape(rows // row_bin, row_bin, columns // column_bin, column_bin)
    pooled = blocks.mean(axis=(1, 3)) if reduce == "mean" else blocks.sum(axis=(1, 3))
    return pooled, row_bin, column_bin


def _bin_centres(count: int, size: int) -> np.ndarray:
    return np.arange(count) * size + (size - 1) / 2


def _boundaries(row_groups: np.ndarray, columns: int, groups: int, column: int) -> list[dict]:
    """Group boundaries of one panel as line shapes (channel coordinates): between the `groups` equal parts of the
    start channels, and wherever the group an output channel came from changes. Returned as plain shapes so a
    figure sets all of them at once (adding shapes one by one costs more than the rest of the figure)."""
    rows = len(row_groups)
    axis = "" if column == 1 else str(column)
    line = dict(type="line", xref=f"x{axis}", yref=f"y{axis}", line=dict(color=BOUNDARY_COLOUR, width=3))
    shapes = [dict(line, x0=k * columns / groups - 0.5, x1=k * columns / groups - 0.5, y0=-0.5, y1=rows - 0.5)
              for k in range(1, groups)]
    shapes += [dict(line, x0=-0.5, x1=columns - 0.5, y0=change - 0.5, y1=change - 0.5)
               for change in np.flatnonzero(np.diff(np.asarray(row_groups))) + 1]
    return shapes


_PANEL_SPACING = 0.06  # between panels, as a share of the figure's width


def _matrix_figure(titles: Sequence[str], heatmaps: Sequence[dict], sizes: Sequence[tuple[int, int]],
                   shapes: list[dict], height: int) -> go.Figure:
    """Heatmap panels side by side, each with its own axes (ranges in channel coordinates, rows downwards),
    built as one layout: plotly's subplot helpers and per-panel updates cost more than the data."""
    count = len(titles)
    width = (1 - _PANEL_SPACING * (count - 1)) / count
    layout = dict(shapes=shapes, annotations=[])
    for index, (title, (rows, columns)) in enumerate(zip(titles, sizes)):
        axis = "" if index == 0 else str(index + 1)
        left = index * (width + _PANEL_SPACING)
        layout[f"xaxis{axis}"] = dict(domain=[left, left + width], anchor=f"y{axis}", range=[-0.5, columns - 0.5],
                                      showgrid=False, zeroline=False, title=dict(text="from channel (start point)"))
        layout[f"yaxis{axis}"] = dict(domain=[0, 1], anchor=f"x{axis}", range=[rows - 0.5, -0.5], showgrid=False,
                                      zeroline=False, title=dict(text="to channel" if index == 0 else ""))
        layout["annotations"].append(dict(text=title, x=left + width / 2, y=1, xref="paper", yref="paper",
                                          xanchor="center", yanchor="bottom", showarrow=False,
                                          font=dict(size=FONT_SIZE + 4)))
        heatmaps[index].update(xaxis=f"x{axis}", yaxis=f"y{axis}")
    return style(go.Figure(dict(data=list(heatmaps), layout=layout)), None, height)


def reachability_figure(panels: Sequence[tuple]) -> go.Figure:
    """Boolean (to channel, from channel) reachability matrices side by side, with group boundaries.
    `panels`: (title, connectivity, groups[, source group of each row]); rows default to `groups` equal parts.
    Binned cells show the share of connected pairs."""
    heatmaps, sizes, shapes = [], [], []
    for column, (_, connectivity, groups, *labels) in enumerate(panels, start=1):
        rows, columns = connectivity.shape
        row_groups = labels[0] if labels else channel_group_index(rows, groups).numpy()
        pooled, row_bin, column_bin = pool_matrix(connectivity.numpy(), "mean")
        heatmaps.append(dict(
            type="heatmap", z=pooled, x=_bin_centres(pooled.shape[1], column_bin),
            y=_bin_centres(pooled.shape[0], row_bin), zmin=0, zmax=1,
            colorscale=[[0, "#FFFFFF"], [1, CONNECTED_COLOUR]], showscale=column == 1,
            colorbar=dict(title=dict(text="connected"), tickvals=[0, 1], ticktext=["no", "yes"], len=0.6),
            hovertemplate="to %{y:.0f}, from %{x:.0f}: %{z:.0%} connected<extra></extra>"))
        sizes.append((rows, columns))
        shapes += _boundaries(row_groups, columns, groups, column)
    return _matrix_figure([panel[0] for panel in panels], heatmaps, sizes, shapes, 560)


def influence_figure(panels: Sequence[tuple[str, Influence]]) -> go.Figure:
    """Measured influence heatmaps side by side on a shared log scale relative to each panel's largest
    value; exact zeros stay white; group boundaries drawn."""
    heatmaps, sizes, shapes = [], [], []
    for column, (_, influence) in enumerate(panels, start=1):
        rows, columns = influence.matrix.shape
        pooled, row_bin, column_bin = pool_matrix(influence.matrix, "sum")
        peak = pooled.max() if pooled.max() > 0 else 1.0
        with np.errstate(divide="ignore"):
            decades = np.where(pooled > 0, np.clip(np.log10(pooled / peak), -INFLUENCE_DECADES, 0), np.nan)
        heatmaps.append(dict(
            type="heatmap", z=decades, x=_bin_centres(pooled.shape[1], column_bin),
            y=_bin_centres(pooled.shape[0], row_bin), zmin=-INFLUENCE_DECADES, zmax=0, colorscale=INFLUENCE_SCALE,
            showscale=column == len(panels), colorbar=dict(title=dict(text="log10 of<br>share of max"), len=0.7),
            hovertemplate="to %{y:.0f}, from %{x:.0f}: 10^%{z:.1f} of max<extra></extra>"))
        sizes.append((rows, columns))
        shapes += _boundaries(influence.row_groups, columns, influence.groups, column)
    return _matrix_figure([title for title, _ in panels], heatmaps, sizes, shapes, 580)


def prediction_change_figure(with_shuffle: Classification, without_shuffle: Classification, k: int = 5) -> go.Figure:
    """Probabilities of the classes in either top-k, with and without the shuffle, as paired bars."""
    both = with_shuffle.top(k) + without_shuffle.top(k)
    names = list(dict.fromkeys(name for name, _ in both))  # in order, each once
    index = {name: i for i, name in enumerate(with_shuffle.classes)}
    figure = go.Figure()
    for label, result, colour in (("shuffle on", with_shuffle, NEGATIVE_COLOUR),
                                  ("shuffle off", without_shuffle, POSITIVE_COLOUR)):
        values = [float(result.probabilities[index[name]]) for name in names]
        figure.add_trace(go.Bar(y=names, x=values, orientation="h", name=label, marker_color=colour,
                                text=[f"{v:.0%}" for v in values], textposition="outside",
                                hovertemplate="%{y}: %{x:.1%}<extra>" + label + "</extra>"))
    figure.update_layout(barmode="group", legend=dict(orientation="h", y=1.02, x=1, xanchor="right", yanchor="bottom"))
    figure.update_xaxes(range=[0, 1.15], tickformat=".0%", title_text="probability")
    figure.update_yaxes(autorange="reversed")
    return style(figure, "Top classes with and without the shuffle", 130 + 55 * len(names))
