"""Figures of the channel shuffle: the animation, stacked group convolutions (paper Figure 1) and the
wiring of a real unit's shuffle. Every channel is coloured by the group it comes from."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from ..flow import ANIMATION_STAGES, LayeredFlow, ShuffleAnimation
from ..flow.animation import MOVE_FRAME_MS, STAGE_HOLD_MS
from .common import FONT_SIZE, group_colour, style

MIXED_COLOUR = "#555555"  # a link carrying several groups at once
UNREACHED_OUTLINE = "#AAAAAA"
_STAGE_SHORT_NAMES = ("1 row", "2 reshape", "3 transpose", "4 flatten")
# Width in pixels the figures are laid out for (Streamlit's wide layout on a projector is ~1100-1800).
PLOT_WIDTH_PX = 1100
NARROW_PLOT_WIDTH_PX = 340  # a phone's screen, less the page's paddings
_VERTICAL_LEGEND_PX = 80  # Figure 1's legend in two rows under a phone's figure


def text_colour_on(fill: str) -> str:
    """Black or white, whichever reads better on the hex colour `fill` (WCAG relative luminance)."""
    channels = [int(fill[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    luminance = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    return "#000000" if luminance > 0.25 else "#FFFFFF"


def _animation_traces(animation: ShuffleAnimation, frame: int, marker_size: float,
                      caption_at: tuple[float, float]) -> list[dict]:
    """One trace per group (markers labelled with channel indices) and a caption naming the stage; every
    frame has the same traces, so plotly moves each marker from frame to frame. Plain dicts: the figure
    validates them once, in bulk (a graph object per trace of every frame costs several times more)."""
    positions = animation.positions[frame]
    owner = animation.group_of_channel
    traces = []
    for group in range(animation.groups):
        members = np.flatnonzero(owner == group)
        colour = group_colour(group)
        traces.append(dict(
            type="scatter", x=positions[members, 0], y=positions[members, 1], mode="markers+text",
            text=[str(i) for i in members], textposition="middle center",
            textfont=dict(size=max(8, int(marker_size * 0.55)), color=text_colour_on(colour)),
            marker=dict(size=marker_size, color=colour, line=dict(width=1, color="#000000")),
            name=f"group {group + 1}", customdata=members, hovertemplate="channel %{customdata}<extra></extra>"))
    # The stage's name as a trace rather than a title: plotly applies frame data reliably, frame layout not.
    traces.append(dict(
        type="scatter", x=[caption_at[0]], y=[caption_at[1]], mode="text",
        text=[ANIMATION_STAGES[animation.stage_of_frame(frame)]], textposition="middle right",
        textfont=dict(size=FONT_SIZE + 4, color="#000000"), showlegend=False, hoverinfo="skip"))
    return traces


def shuffle_animation_figure(animation: ShuffleAnimation, largest_marker_px: float = 36,
                             vertical: bool = False, plot_width_px: float = PLOT_WIDTH_PX) -> go.Figure:
    """The shuffle as a plotly animation at a speaking pace: Play runs it from the first stage, moving the
    channels and holding each stage; Pause stops it; a slider jumps (gliding) to the four key stages. Each channel
    is a marker labelled with its index and coloured by its input group; markers of at most `largest_marker_px`
    set the rows' spacing, so a smaller bound makes a shorter figure (a slide's). `vertical` turns the picture a
    quarter (the channels in a column, the groups side by side) for a screen too narrow for a row of channels,
    and puts the slider under the buttons; `plot_width_px` is the width the figure gets."""
    if vertical:  # mirrored on the anti-diagonal: a row becomes a column, the g x C/g grid g columns
        animation = ShuffleAnimation(animation.channels, animation.groups,
                                     tuple(-frame[:, ::-1] for frame in animation.positions), animation.key_frames,
                                     animation.permutation)
    all_positions = np.concatenate(animation.positions)
    x_low, x_high = all_positions[:, 0].min() - 1, all_positions[:, 0].max() + 1
    x_unit_px = plot_width_px / (x_high - x_low)
    marker_size = float(np.clip(0.85 * x_unit_px, 10, largest_marker_px))
    y_unit_px = max(marker_size / 0.85, 18)
    y_low, y_high = all_positions[:, 1].min() - 0.8, all_positions[:, 1].max() + 0.8
    caption_px = 40  # a caption line above the channels
    caption_at = (x_low + 0.5, y_high + caption_px / y_unit_px)
    controls_px = 150 if vertical else 90  # the buttons, and on a narrow screen the slider under them
    title_px = 70
    height = int(title_px + caption_px * 1.5 + y_unit_px * (y_high - y_low) + controls_px)

    frames = [dict(data=_animation_traces(animation, f, marker_size, caption_at), name=str(f))
              for f in range(len(animation.positions))]
    figure = go.Figure(dict(data=frames[0]["data"], frames=frames))
    glide = dict(mode="immediate", frame=dict(duration=900, redraw=False),
                 transition=dict(duration=800, easing="cubic-in-out"))
    slider_at = dict(x=0.08, len=0.84, y=-0.02, pad=dict(t=60)) if vertical else \
        dict(x=0.22, len=0.72, y=-0.02, pad=dict(t=10))
    figure.update_layout(
        xaxis=dict(range=[x_low, x_high], visible=False, fixedrange=True),
        yaxis=dict(range=[y_low, caption_at[1] + 0.5 * caption_px / y_unit_px], visible=False, fixedrange=True),
        legend=dict(orientation="h", y=1.0, x=1, xanchor="right", yanchor="bottom"),
        updatemenus=[dict(
            type="buttons", direction="left", x=0, y=-0.02, xanchor="left", yanchor="top",
            pad=dict(r=10, t=10), font=dict(size=FONT_SIZE),
            buttons=[
                dict(label="\u25B6 Play", method="animate",
                     args=[None, dict(mode="immediate", frame=_frame_pace(animation),
                                      transition=dict(duration=MOVE_FRAME_MS))]),
                dict(label="\u275A\u275A Pause", method="animate",
                     args=[[None], dict(mode="immediate", frame=dict(duration=0, redraw=False),
                                        transition=dict(duration=0))]),
            ])],
        sliders=[dict(
            active=0, yanchor="top", currentvalue=dict(visible=False), font=dict(size=FONT_SIZE),
            steps=[dict(method="animate", label=name, args=[[str(key)], glide])
                   for key, name in zip(animation.key_frames, _STAGE_SHORT_NAMES)], **slider_at)],
    )
    style(figure, f"Channel shuffle of C={animation.channels} channels in g={animation.groups} groups", height)
    figure.update_layout(margin=dict(t=title_px, b=controls_px))
    return figure


def _frame_pace(animation: ShuffleAnimation) -> list[dict]:
    """Each frame's time on screen when Play runs every frame from the first: a stage reached is held, the frames
    between stages pass quickly (the first is already on screen, so Play starts moving at once). Per-frame times
    index the frames Play queues, which is why Play always starts from the first stage."""
    held = set(animation.key_frames[1:])
    return [dict(duration=STAGE_HOLD_MS if frame in held else MOVE_FRAME_MS, redraw=False)
            for frame in range(len(animation.positions))]


def _link_segments(link: torch.Tensor, y_from: float, y_to: float, tail_colours: list[str]) -> dict[str, tuple]:
    """Line segments of one layer of links, grouped by colour: colour -> (xs, ys) with None breaks."""
    segments: dict[str, tuple[list, list]] = {}
    for out_channel, in_channel in torch.nonzero(link).tolist():
        xs, ys = segments.setdefault(tail_colours[in_channel], ([], []))
        xs += [in_channel, out_channel, None]
        ys += [y_from, y_to, None]
    return segments


def _reach_colours(reach: torch.Tensor) -> list[str]:
    """A channel's colour: its source group's when it hears exactly one group, grey when it hears several."""
    return [group_colour(int(row.nonzero()[0])) if int(row.sum()) == 1 else MIXED_COLOUR for row in reach]


def layered_flow_figure(flows: Sequence[LayeredFlow], titles: Sequence[str], vertical: bool = False) -> go.Figure:
    """Stacked group convolutions side by side (the paper's Figure 1). Each channel shows one small dot per
    input group, filled in that group's colour when information from the group can reach it; links are
    coloured by the group they carry (grey: several). `vertical` draws for a narrow screen: the layers from left
    to right, the channels down the page and the panels one under the other, so that every channel keeps room
    for its dots."""
    groups, channels = flows[0].groups, flows[0].channels
    layers = max(len(flow.layer_names) for flow in flows)
    # Each panel keeps its own layer axis: its layers are its own ("shuffle" in one, "no shuffle" in another).
    if vertical:
        figure = make_subplots(rows=len(flows), cols=1, subplot_titles=list(titles), vertical_spacing=0.12)
        channel_px = NARROW_PLOT_WIDTH_PX / (layers - 0.5) * 0.5  # a layer's column: half for the dots
        dot_size = float(np.clip(0.8 * channel_px / groups, 6, 12))
        row_px = max(dot_size + 10, 22)
    else:
        figure = make_subplots(rows=1, cols=len(flows), subplot_titles=list(titles),
                               horizontal_spacing=0.15 if len(flows) > 1 else 0.04)  # room for the row labels
        dot_size = float(np.clip(0.8 * 0.8 / groups * PLOT_WIDTH_PX / len(flows) / (channels + 1), 6, 16))
    dot_spacing = 0.8 / groups if not vertical else 0.5 / groups

    legend_has_unreached = False
    traces, cells = [], []  # added in one call: one graph object per trace costs more than the rest
    for panel, flow in enumerate(flows, start=1):
        cell = (panel, 1) if vertical else (1, panel)
        for layer, link in enumerate(flow.links):
            for colour, (xs, ys) in _link_segments(link, -layer, -(layer + 1),
                                                   _reach_colours(flow.reach[layer])).items():
                if vertical:  # layers from left to right, channels down the page
                    xs, ys = [None if y is None else -y for y in ys], [None if x is None else -x for x in xs]
                traces.append(dict(type="scatter", x=xs, y=ys, mode="lines",
                                   line=dict(color=colour, width=1.5), opacity=0.55, hoverinfo="skip",
                                   showlegend=False))
                cells.append(cell)
        # Reached dots first, so the legend lists the groups before the one "not reached" entry.
        for reached, group in [(True, g) for g in range(groups)] + [(False, g) for g in range(groups)]:
            layer_index, channel = np.nonzero(np.stack([r[:, group].numpy() == reached for r in flow.reach]))
            if not len(channel):
                continue
            offset = (group - (groups - 1) / 2) * dot_spacing
            x, y = (layer_index + offset, -channel) if vertical else (channel + offset, -layer_index)
            traces.append(dict(
                type="scatter", x=x, y=y,
                mode="markers", marker=dict(size=dot_size, color=group_colour(group) if reached else "#FFFFFF",
                                            line=dict(width=1.5, color="#000000" if reached else UNREACHED_OUTLINE)),
                name=f"hears group {group + 1}" if reached else "group not reached",
                legendgroup=f"{group}" if reached else "none",
                showlegend=panel == 1 and (reached or not legend_has_unreached),
                hovertemplate=f"{'hears' if reached else 'does not hear'} group {group + 1}<extra></extra>"))
            cells.append(cell)
            legend_has_unreached = legend_has_unreached or (panel == 1 and not reached)
    figure.add_traces(traces, rows=[r for r, _ in cells], cols=[c for _, c in cells])
    for panel, flow in enumerate(flows, start=1):
        names = range(len(flow.layer_names))
        tickfont = dict(size=FONT_SIZE)  # a set size, which the projector's styling enlarges with the rest
        if vertical:  # the layers' names under their columns, a word a line
            figure.update_xaxes(tickvals=list(names), ticktext=[n.replace(" ", "<br>") for n in flow.layer_names],
                                range=[-0.5, (layers - 1) + 0.5], side="bottom", tickfont=tickfont, row=panel, col=1)
        else:
            figure.update_yaxes(tickvals=[-k for k in names], ticktext=list(flow.layer_names),
                                range=[-(layers - 1) - 0.5, 0.5], tickfont=tickfont, row=1, col=panel)
    channel_axes = dict(range=[-(channels - 1) - 0.8, 0.8] if vertical else [-0.8, channels - 0.2],
                        showticklabels=False, showgrid=False, zeroline=False, fixedrange=True)
    layer_axes = dict(fixedrange=True, showgrid=False, zeroline=False)
    if vertical:
        figure.update_yaxes(**channel_axes)
        figure.update_xaxes(**layer_axes)
    else:
        figure.update_xaxes(**channel_axes)
        figure.update_yaxes(**layer_axes)
    figure.update_layout(legend=dict(orientation="h", y=-0.05, yanchor="top", x=0))
    figure.update_annotations(font=dict(size=FONT_SIZE + 4))  # the panel titles
    if vertical:  # the legend at the bottom of the figure, under the last panel's layer names
        panel_px = channels * row_px + 90  # the layers' names under it and the panel's title above it
        style(figure, None, len(flows) * panel_px + _VERTICAL_LEGEND_PX)
        figure.update_layout(legend=dict(yref="container", y=0, yanchor="bottom"),
                             margin=dict(b=_VERTICAL_LEGEND_PX + 20))
        return figure
    return style(figure, None, 170 + 95 * layers)


def permutation_wiring_figure(permutation: torch.Tensor, groups: int, title: str,
                              plot_width_px: int = PLOT_WIDTH_PX) -> go.Figure:
    """Where each channel goes in a shuffle: the top row before, the bottom row after, one line per
    channel from in[perm[i]] to out[i], coloured by the input group it comes from. Markers are sized for
    a plot about `plot_width_px` wide (less in a column)."""
    channels = permutation.numel()
    per_group = channels // groups
    source_group = (permutation // per_group).numpy()
    marker_size = float(np.clip(0.8 * plot_width_px / (channels + 2), 3, 22))
    traces = []
    for group in range(groups):
        colour = group_colour(group)
        outputs = np.flatnonzero(source_group == group)
        inputs = permutation[outputs].numpy()
        xs = np.stack([inputs, outputs, np.full(len(outputs), np.nan)], axis=1).ravel()
        ys = np.tile([1.0, 0.0, np.nan], len(outputs))
        traces.append(dict(type="scatter", x=xs, y=ys, mode="lines", line=dict(color=colour, width=1.5),
                           opacity=0.7, hoverinfo="skip", showlegend=False))
        traces.append(dict(
            type="scatter", x=np.concatenate([inputs, outputs]),
            y=np.r_[np.ones(len(inputs)), np.zeros(len(outputs))],
            mode="markers", marker=dict(size=marker_size, color=colour, line=dict(width=0.5, color="#000000")),
            name=f"from group {group + 1}",
            customdata=np.concatenate([inputs, inputs]),
            text=np.concatenate([inputs, outputs]),
            hovertemplate="channel %{text} (input channel %{customdata})<extra></extra>"))
    figure = go.Figure(dict(data=traces))  # plain traces, validated in one pass
    figure.update_yaxes(tickvals=[1, 0], ticktext=["before shuffle", "after shuffle"], range=[-0.25, 1.25],
                        fixedrange=True, showgrid=False, zeroline=False)
    figure.update_xaxes(title_text="channel index", range=[-1, channels], showgrid=False, zeroline=False)
    figure.update_layout(legend=dict(orientation="h", y=1.0, x=1, xanchor="right", yanchor="bottom"))
    return style(figure, title, 340)
