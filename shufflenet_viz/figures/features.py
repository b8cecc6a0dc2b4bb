"""Feature-map grids: a page of channels drawn as ONE heatmap (tiles mosaicked with gaps) plus a frame per tile.

One heatmap and one shape per tile keep even Stage 4's 960 channels responsive in the browser: the browser
draws one image, not a trace per channel. Each tile is scaled to its own range (a channel's pattern matters,
not its magnitude); hovering shows the true value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go

from ..features import UNGROUPED
from .common import group_colour, style

TILES_PER_PAGE = 96
GRID_COLUMNS = 12
UNGROUPED_COLOUR = "#999999"
FRAME_NAME = "frame"  # meta.role of the traces that outline tiles (meta.tiles counts them)
GROUP_BAR_NAME = "group bar"
TILE_PIXELS = 56  # on-screen height of one tile row, whatever the map's resolution
LEGEND_GROUPS_PER_ROW = 4  # legend entries per line under a grid ("no group (dense conv)" fits too)
LEGEND_ROW_PIXELS = 30


def frame_colour(group: int) -> str:
    """The colour of a channel group; grey for channels of no group (made or read by a dense conv)."""
    return UNGROUPED_COLOUR if group == UNGROUPED else group_colour(group)


def page_count(channels: int, per_page: int = TILES_PER_PAGE) -> int:
    """How many pages of tiles `channels` channels fill."""
    return max(1, math.ceil(channels / per_page))


def page_slice(page: int, channels: int, per_page: int = TILES_PER_PAGE) -> slice:
    """The positions (in display order) shown on 1-based `page`."""
    if not 1 <= page <= page_count(channels, per_page):
        raise ValueError(f"page must be from 1 to {page_count(channels, per_page)}, got {page}")
    return slice((page - 1) * per_page, min(page * per_page, channels))


@dataclass(frozen=True)
class Mosaic:
    """Tiles laid out in a grid in one array; gaps hold NaN (drawn transparent)."""

    pixels: np.ndarray  # (rows * (h + gap) - gap, columns * (w + gap) - gap)
    tile_height: int
    tile_width: int
    gap: int
    columns: int

    def origin(self, position: int) -> tuple[int, int]:
        """(row, column) of the top-left pixel of tile `position`."""
        row, column = divmod(position, self.columns)
        return row * (self.tile_height + self.gap), column * (self.tile_width + self.gap)

    def origins(self, count: int) -> tuple[np.ndarray, np.ndarray]:
        """Top and left pixel of tiles 0 .. count-1, as float arrays."""
        rows, columns = np.divmod(np.arange(count), self.columns)
        return (rows * (self.tile_height + self.gap)).astype(np.float64), \
            (columns * (self.tile_width + self.gap)).astype(np.float64)


def mosaic(tiles: np.ndarray, columns: int = GRID_COLUMNS) -> Mosaic:
    """Lay (N, h, w) tiles row by row, `columns` per row, separated by a gap of NaN a quarter tile wide."""
    count, height, width = tiles.shape
    columns = max(1, min(columns, count))
    rows = math.ceil(count / columns)
    gap = max(1, round(max(height, width) / 4))
    pixels = np.full((rows * (height + gap) - gap, columns * (width + gap) - gap), np.nan)
    layout = Mosaic(pixels, height, width, gap, columns)
    for position, tile in enumerate(tiles):
        top, left = layout.origin(position)
        pixels[top:top + height, left:left + width] = tile
    return layout


def _group_name(group: int) -> str:
    return "no group (dense conv)" if group == UNGROUPED else f"group {group + 1}"


def _rectangles(x0: np.ndarray, x1: np.ndarray, y0: np.ndarray, y1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Outlines of many rectangles as one polyline: 5 corners each, NaN between rectangles."""
    gap = np.full_like(x0, np.nan)
    xs = np.stack([x0, x1, x1, x0, x0, gap], axis=1).ravel()
    ys = np.stack([y0, y0, y1, y1, y0, gap], axis=1).ravel()
    return xs, ys


def _scaled_per_tile(tiles: np.ndarray) -> np.ndarray:
    low = tiles.min(axis=(1, 2), keepdims=True)
    span = tiles.max(axis=(1, 2), keepdims=True) - low
    # A constant channel (e.g. all zero after ReLU) shows as mid grey instead of dividing by zero.
    return np.where(span > 0, (tiles - low) / np.where(span > 0, span, 1), 0.5)


def feature_grid_figure(tiles: np.ndarray, channels: np.ndarray, frame_groups: np.ndarray,
                        title: str, bar_groups: np.ndarray | None = None,
                        columns: int = GRID_COLUMNS) -> go.Figure:
    """A grid of feature maps: (N, h, w) `tiles` of the given channel indices, each framed in the colour of
    `frame_groups[i]` (where the channel came from); `bar_groups` (optional) adds a bar under each tile in a
    second group's colour (which group reads it next)."""
    tiles = np.asarray(tiles, dtype=np.float64)
    layout = mosaic(_scaled_per_tile(tiles), columns)
    raw = mosaic(tiles, columns).pixels
    channel_of_pixel = mosaic(np.broadcast_to(np.asarray(channels, dtype=np.float64)[:, None, None],
                                              tiles.shape), columns).pixels
    figure = go.Figure(go.Heatmap(
        z=layout.pixels, customdata=np.dstack([channel_of_pixel, raw]), colorscale="gray", zmin=0, zmax=1,
        showscale=False, hoverongaps=False,
        hovertemplate="channel %{customdata[0]:.0f}<br>value %{customdata[1]:.3f}<extra></extra>"))
    # Frames as one line trace per group (rectangles separated by gaps), not one shape per tile: a page of
    # 96 shapes takes plotly ~100x longer to build than three traces, and the traces double as the legend.
    height, width, gap = layout.tile_height, layout.tile_width, layout.gap
    tops, lefts = layout.origins(len(tiles))
    frame_groups = np.asarray(frame_groups)
    for group in sorted(set(frame_groups.tolist())):
        chosen = frame_groups == group
        xs, ys = _rectangles(lefts[chosen] - 0.5, lefts[chosen] + width - 0.5,
                             tops[chosen] - 0.5, tops[chosen] + height - 0.5)
        figure.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line=dict(color=frame_colour(group), width=3),
                                    name=_group_name(group), legendgroup=f"frame {group}", hoverinfo="skip",
                                    meta=dict(role=FRAME_NAME, tiles=int(chosen.sum()))))
    if bar_groups is not None:
        bar_groups = np.asarray(bar_groups)
        for group in sorted(set(bar_groups.tolist())):
            chosen = bar_groups == group
            xs, ys = _rectangles(lefts[chosen] - 0.5, lefts[chosen] + width - 0.5,
                                 tops[chosen] + height - 0.5 + gap * 0.25, tops[chosen] + height - 0.5 + gap * 0.75)
            figure.add_trace(go.Scatter(x=xs, y=ys, mode="lines", fill="toself", line=dict(width=0),
                                        fillcolor=frame_colour(group), name=f"{_group_name(group)} (bar)",
                                        showlegend=False, hoverinfo="skip",
                                        meta=dict(role=GROUP_BAR_NAME, tiles=int(chosen.sum()))))
    rows = math.ceil(len(tiles) / layout.columns)
    figure.update_xaxes(visible=False, range=[-1, layout.pixels.shape[1]], constrain="domain")
    figure.update_yaxes(visible=False, range=[layout.pixels.shape[0], -1], scaleanchor="x", constrain="domain")
    # The legend spans the whole figure, not the (narrow, square-tiled) plot area, in rows of a few groups: in
    # the plot area's width alone a g=8 legend stacks one group per line and is cut off.
    legend_rows = math.ceil(len(set(frame_groups.tolist())) / LEGEND_GROUPS_PER_ROW)
    figure.update_layout(legend=dict(orientation="h", xref="container", yref="container", x=0.02, y=0,
                                     yanchor="bottom"), plot_bgcolor="white")
    style(figure, title, height=max(260, rows * TILE_PIXELS + 160) + (legend_rows - 1) * LEGEND_ROW_PIXELS)
    figure.update_layout(margin_b=20 + legend_rows * LEGEND_ROW_PIXELS)
    return figure


def channel_figure(feature_map: np.ndarray, group: int, title: str) -> go.Figure:
    """One channel large, on its own value scale with a colour bar (the values as the network computed them)."""
    figure = go.Figure(go.Heatmap(
        z=np.asarray(feature_map, dtype=np.float64), colorscale="gray",
        colorbar=dict(title=dict(text="value"), outlinecolor=frame_colour(group), outlinewidth=3),
        hovertemplate="row %{y}, column %{x}<br>value %{z:.3f}<extra></extra>"))
    figure.update_xaxes(visible=False, constrain="domain")
    figure.update_yaxes(visible=False, autorange="reversed", scaleanchor="x", constrain="domain")
    return style(figure, title, height=420)
