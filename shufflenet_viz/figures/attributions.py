"""Attribution overlays (plotly and PNG, from the same colour rule) and the per-group bar chart.

Colour rule: a diverging, colour-blind-safe scale from NEGATIVE_COLOUR (against the class) through
transparent (no effect) to POSITIVE_COLOUR (for the class); methods without sign (Saliency, Grad-CAM) use
its positive half. Transparency grows toward zero, so the picture shows through where nothing happens.
The scale ends at the 99.5th percentile of |attribution|: a few extreme pixels would otherwise wash out
the rest (values beyond it are drawn at full colour).
"""

from __future__ import annotations

import io

import numpy as np
import plotly.graph_objects as go
from PIL import Image, ImageDraw, ImageFont

from ..attributions import GroupAttribution
from .common import POSITIVE_COLOUR, NEGATIVE_COLOUR, group_colour, style
from .features import UNGROUPED_COLOUR

DISPLAY_PERCENTILE = 99.5
PNG_SCALE = 4  # each model pixel becomes a 4x4 block in the PNG
LEGEND_HEIGHT = 28


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    value = hex_colour.lstrip("#")
    return tuple(int(value[i:i + 2], 16) for i in (0, 2, 4))


def colour_stops(signed: bool) -> list[tuple[float, tuple[int, int, int, float]]]:
    """(position in [0, 1], (r, g, b, alpha)) stops of the attribution scale."""
    clear = (255, 255, 255, 0.0)
    positive = (*_rgb(POSITIVE_COLOUR), 1.0)
    if signed:
        return [(0.0, (*_rgb(NEGATIVE_COLOUR), 1.0)), (0.5, clear), (1.0, positive)]
    return [(0.0, clear), (1.0, positive)]


def plotly_colour_scale(signed: bool) -> list[list]:
    """The attribution scale as a plotly colorscale (rgba strings)."""
    return [[position, f"rgba({r},{g},{b},{a})"] for position, (r, g, b, a) in colour_stops(signed)]


def display_limit(values: np.ndarray) -> float:
    """The |value| at which the colour scale saturates (positive even for an all-zero map)."""
    magnitude = np.abs(np.asarray(values, dtype=np.float64))
    limit = float(np.percentile(magnitude, DISPLAY_PERCENTILE)) if magnitude.size else 0.0
    return limit if limit > 0 else float(magnitude.max(initial=0.0)) or 1.0


def rgba_pixels(values: np.ndarray, signed: bool, limit: float | None = None) -> np.ndarray:
    """(H, W) attribution -> (H, W, 4) floats in [0, 1]: colour and alpha by the scale."""
    limit = display_limit(values) if limit is None else limit
    scaled = np.asarray(values, dtype=np.float64) / limit
    position = (np.clip(scaled, -1, 1) + 1) / 2 if signed else np.clip(scaled, 0, 1)
    stops = colour_stops(signed)
    where = [p for p, _ in stops]
    channels = [np.interp(position, where, [colour[i] / 255 for _, colour in stops]) for i in range(3)]
    alpha = np.interp(position, where, [colour[3] for _, colour in stops])
    return np.stack([*channels, alpha], axis=-1)


def overlay_pixels(base: np.ndarray, values: np.ndarray, signed: bool, opacity: float) -> np.ndarray:
    """The attribution painted over the (H, W, 3) uint8 picture at `opacity` (0: picture only)."""
    rgba = rgba_pixels(values, signed)
    alpha = rgba[..., 3:] * float(np.clip(opacity, 0, 1))
    blended = base.astype(np.float64) * (1 - alpha) + rgba[..., :3] * 255 * alpha
    return blended.round().clip(0, 255).astype(np.uint8)


def _legend_strip(width: int, signed: bool, limit: float) -> Image.Image:
    ramp = np.linspace(-limit if signed else 0.0, limit, width)[None, :].repeat(LEGEND_HEIGHT // 2, axis=0)
    white = np.full(ramp.shape + (3,), 255, dtype=np.uint8)
    strip = Image.new("RGB", (width, LEGEND_HEIGHT), "white")
    strip.paste(Image.fromarray(overlay_pixels(white, ramp, signed, 1.0)), (0, 0))
    draw, font = ImageDraw.Draw(strip), ImageFont.load_default()
    low = f"-{limit:.2g} against" if signed else "0"
    high = f"+{limit:.2g} for" if signed else f"{limit:.2g}"
    draw.text((2, LEGEND_HEIGHT // 2), low, fill="black", font=font)
    draw.text((width - 2, LEGEND_HEIGHT // 2), high, fill="black", font=font, anchor="ra")
    return strip


def attribution_png(base: np.ndarray, values: np.ndarray, signed: bool, opacity: float,
                    scale: int = PNG_SCALE) -> bytes:
    """The overlay as PNG bytes, enlarged with square pixels, with the colour scale as a strip below."""
    overlay = Image.fromarray(overlay_pixels(base, values, signed, opacity))
    overlay = overlay.resize((overlay.width * scale, overlay.height * scale), Image.Resampling.NEAREST)
    canvas = Image.new("RGB", (overlay.width, overlay.height + LEGEND_HEIGHT), "white")
    canvas.paste(overlay, (0, 0))
    canvas.paste(_legend_strip(overlay.width, signed, display_limit(values)), (0, overlay.height))
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG")
    return buffer.getvalue()


def attribution_figure(base: np.ndarray, values: np.ndarray, signed: bool, opacity: float,
                       title: str) -> go.Figure:
    """The picture the model sees with the attribution over it and a colour bar that reads the sign."""
    limit = display_limit(values)
    ticks = dict(tickvals=[-limit, 0, limit], ticktext=["against", "0", "for"]) if signed \
        else dict(tickvals=[0, limit], ticktext=["0", f"{limit:.2g}"])
    figure = go.Figure(go.Image(z=base, hoverinfo="skip"))
    figure.add_trace(go.Heatmap(
        z=np.asarray(values, dtype=np.float64), colorscale=plotly_colour_scale(signed),
        zmin=-limit if signed else 0, zmax=limit, opacity=float(opacity),
        colorbar=dict(title=dict(text="attribution"), **ticks),
        hovertemplate="row %{y}, column %{x}<br>attribution %{z:.3g}<extra></extra>"))
    figure.update_xaxes(visible=False, constrain="domain")
    figure.update_yaxes(visible=False, autorange="reversed", scaleanchor="x", constrain="domain")
    return style(figure, title, height=460)


UNGROUPED_BAR = "no group (pooled stem channels)"


def group_bar_figure(result: GroupAttribution, title: str) -> go.Figure:
    """One bar per channel group (and one for the channels of no group): the sum of its channels' |attribution|,
    labelled with its share of all channels'; the hover adds the net (signed) sum."""
    names = [f"group {g + 1}" for g in range(result.channel_groups.groups)]
    sizes, shares, nets = list(result.magnitude_per_group), list(result.shares), list(result.per_group)
    colours = [group_colour(g) for g in range(len(names))]
    if result.ungrouped is not None:
        names.append(UNGROUPED_BAR)
        sizes.append(result.ungrouped_magnitude)
        shares.append(result.ungrouped_share)
        nets.append(result.ungrouped)
        colours.append(UNGROUPED_COLOUR)
    figure = go.Figure(go.Bar(x=names, y=sizes, marker_color=colours, text=[f"{share:.0%}" for share in shares],
                              textposition="outside", customdata=nets, name="channel groups",
                              hovertemplate="%{x}<br>sum of |attribution| %{y:.3g} (%{text})"
                                            "<br>net %{customdata:+.3g}<extra></extra>"))
    figure.update_yaxes(title_text="sum of |channel attribution|", rangemode="tozero")
    figure.update_layout(showlegend=False)
    return style(figure, title, height=380)
