"""Shared look: a colour-blind-safe palette, large legible type for projectors, group colours."""

from __future__ import annotations

import plotly.graph_objects as go

# Okabe & Ito (2008), safe for the common colour-vision deficiencies; ordered for contrast on white.
GROUP_COLOURS: tuple[str, ...] = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00",
                                  "#F0E442", "#000000")
POSITIVE_COLOUR = "#D55E00"  # vermillion
NEGATIVE_COLOUR = "#0072B2"  # blue
FONT_SIZE = 18  # legible from the back of a classroom


def group_colour(group: int) -> str:
    """Colour of channel group `group` (0-based); groups beyond eight reuse the palette."""
    return GROUP_COLOURS[group % len(GROUP_COLOURS)]


def style(figure: go.Figure, title: str | None = None, height: int | None = None) -> go.Figure:
    """Apply the house look: white background, large type, a title, tight margins."""
    figure.update_layout(template="plotly_white", font=dict(size=FONT_SIZE),
                         margin=dict(l=40, r=20, t=70 if title else 30, b=40))
    if title is not None:
        figure.update_layout(title=dict(text=title))
    if height is not None:
        figure.update_layout(height=height)
    return figure
