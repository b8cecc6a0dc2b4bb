"""Figures drawn for a phone's width: the narrow styling every figure gets through the one display path, and the
figures whose layout changes there (Figure 1 and the animation turned a quarter, the unit diagram's notes inside
its boxes); the unit diagram's boxes grow with their words at every type size."""

import numpy as np
import plotly.graph_objects as go
import pytest
import torch

from shufflenet_viz import flow
from shufflenet_viz.figures.common import (FONT_SIZE, NARROW_FONT_SIZE, PROJECTOR_FONT_SIZE, narrow_style,
                                           projector_style, style)
from shufflenet_viz.figures.shuffle import NARROW_PLOT_WIDTH_PX, layered_flow_figure, shuffle_animation_figure
from shufflenet_viz.figures.unit import node_title, unit_diagram_figure
from shufflenet_viz.model import build_model
from shufflenet_viz.unit_diagram import live_unit_diagram

PHONE_WIDTH_PX = 360
GLYPH_EM = 0.56  # the mean width of a character of the sans-serif type, in font sizes


def test_narrow_style_shrinks_the_type_and_breaks_the_title_to_the_width():
    figure = style(go.Figure(go.Bar(x=["a", "b"], y=[1, 2], text=["97.4%", "2.6%"], textposition="outside",
                                    textfont=dict(size=FONT_SIZE))),
                   "A title far too long for a phone's screen at the size plotly gives a title by default", 300)
    narrow = narrow_style(figure, PHONE_WIDTH_PX)
    assert narrow.layout.font.size == NARROW_FONT_SIZE < FONT_SIZE
    assert narrow.data[0].textfont.size < FONT_SIZE
    lines = narrow.layout.title.text.split("<br>")
    assert len(lines) > 1
    assert all(len(line) * GLYPH_EM * narrow.layout.title.font.size <= PHONE_WIDTH_PX for line in lines)
    assert narrow.layout.margin.t > figure.layout.margin.t * NARROW_FONT_SIZE / FONT_SIZE  # room for the lines
    assert figure.layout.font.size == FONT_SIZE and "<br>" not in figure.layout.title.text  # the original stays


def test_narrow_style_moves_a_legend_and_a_colour_bar_under_the_plot():
    figure = go.Figure([go.Scatter(x=[0, 1], y=[0, 1], name=f"a rather long legend entry {k}") for k in range(4)])
    figure.update_layout(legend=dict(orientation="h", y=1.0, yanchor="bottom"))
    narrow = narrow_style(style(figure, "legend", 400), PHONE_WIDTH_PX)
    assert (narrow.layout.legend.yref, narrow.layout.legend.y, narrow.layout.legend.yanchor) == \
        ("container", 0, "bottom")
    # Four entries of ~30 characters wrap into rows: the bottom margin holds them all.
    assert narrow.layout.margin.b >= 40 + 3 * NARROW_FONT_SIZE

    picture = style(go.Figure(go.Heatmap(z=np.eye(4), colorbar=dict(title=dict(text="attribution")))), "map", 460)
    narrow = narrow_style(picture, PHONE_WIDTH_PX)
    bar = narrow.data[0].colorbar
    assert (bar.orientation, bar.yanchor, bar.title.side) == ("h", "top", "top") and bar.y < 0
    # The picture keeps its room: the figure grows by the strip the bar takes.
    assert narrow.layout.height == 460 + (narrow.layout.margin.b - picture.layout.margin.b)


def test_narrow_style_keeps_labels_inside_markers_at_the_markers_size():
    figure = shuffle_animation_figure(flow.shuffle_animation(12, 3), 17, vertical=True,
                                      plot_width_px=NARROW_PLOT_WIDTH_PX)
    narrow = narrow_style(figure, PHONE_WIDTH_PX)
    assert narrow.data[0].textfont.size == figure.data[0].textfont.size
    assert narrow.frames[5].data[0].textfont.size == figure.frames[5].data[0].textfont.size
    assert narrow.data[-1].textfont.size < figure.data[-1].textfont.size  # the stage's caption shrinks


def test_the_animation_turned_a_quarter_puts_the_channels_in_a_column_that_never_overlaps():
    animation = flow.shuffle_animation(24, 3)
    figure = shuffle_animation_figure(animation, 17, vertical=True, plot_width_px=NARROW_PLOT_WIDTH_PX)
    first = np.concatenate([np.c_[trace.x, trace.y] for trace in figure.data[:3]])
    assert len(set(first[:, 0])) == 1 and len(set(first[:, 1])) == 24  # a column of 24 channels
    marker = figure.data[0].marker.size
    x_range, y_range = figure.layout.xaxis.range, figure.layout.yaxis.range
    margins = figure.layout.margin
    x_px = NARROW_PLOT_WIDTH_PX / (x_range[1] - x_range[0])
    y_px = (figure.layout.height - margins.t - margins.b) / (y_range[1] - y_range[0])
    assert min(x_px, y_px) >= marker  # neighbours one unit apart never overlap
    # Every key stage fits in the plot's width: the g columns of the grid and the C/g of the transposed grid.
    for key in animation.key_frames:
        xs = np.concatenate([frame_trace.x for frame_trace in figure.frames[key].data[:3]])
        assert x_range[0] < xs.min() and xs.max() < x_range[1]
    slider, buttons = figure.layout.sliders[0], figure.layout.updatemenus[0]
    assert slider.pad.t >= 50 and slider.x + slider.len <= 1 and buttons.x == 0  # the slider under the buttons


def test_figure1_turned_a_quarter_keeps_every_channels_dots_apart():
    stacks = [flow.stacked_group_convs(12, 3, 3, on) for on in (False, True)]
    wide = layered_flow_figure(stacks, ["without shuffle", "with shuffle"])
    figure = layered_flow_figure(stacks, ["without shuffle", "with shuffle"], vertical=True)
    # The panels one under the other, each with its layers across.
    assert figure.layout.xaxis.domain == figure.layout.xaxis2.domain
    assert figure.layout.yaxis.domain[0] > figure.layout.yaxis2.domain[1]
    assert [text.replace("<br>", " ") for text in figure.layout.xaxis.ticktext] == list(stacks[0].layer_names)
    dots = [trace for trace in figure.data if trace.mode == "markers"]
    assert {trace.marker.size for trace in dots} == {dots[0].marker.size}
    size = dots[0].marker.size
    x_range = figure.layout.xaxis.range
    x_px = NARROW_PLOT_WIDTH_PX / (x_range[1] - x_range[0])
    first_panel = [trace for trace in dots if trace.xaxis in (None, "x")]
    first_channel = sorted(x for trace in first_panel for x, y in zip(trace.x, trace.y) if y == 0 and x < 0.5)
    assert len(first_channel) == 3 and np.diff(first_channel).min() * x_px >= size  # three dots side by side
    # The same dots and links as the wide figure: only the orientation changed.
    assert sum(len(t.x) for t in figure.data if t.mode == "markers") == \
        sum(len(t.x) for t in wide.data if t.mode == "markers")
    assert figure.layout.height > wide.layout.height


def test_figure1_row_labels_grow_with_the_projectors_type():
    stacks = [flow.stacked_group_convs(12, 3, 2, on) for on in (False, True)]
    projected = projector_style(layered_flow_figure(stacks, ["without shuffle", "with shuffle"]))
    assert projected.layout.yaxis.tickfont.size == projected.layout.yaxis2.tickfont.size == PROJECTOR_FONT_SIZE


@pytest.fixture(scope="module")
def diagram():
    model = build_model(3, 1.0, 10).eval()
    return live_unit_diagram(model, "stage2.unit1", torch.zeros(1, 3, 64, 64))


def boxes(figure: go.Figure) -> list:
    return [shape for shape in figure.layout.shapes if shape.type == "rect"]


def test_unit_boxes_are_as_wide_as_their_words_at_every_type_size(diagram):
    figure = unit_diagram_figure(diagram)
    titles = next(trace for trace in figure.data if trace.mode == "text")
    for styled, scale in ((figure, 1.0), (projector_style(figure), PROJECTOR_FONT_SIZE / FONT_SIZE),
                          (narrow_style(figure, PHONE_WIDTH_PX), NARROW_FONT_SIZE / FONT_SIZE)):
        shuffle_box = next(box for box, node in zip(boxes(styled), diagram.nodes) if node.key == "shuffle")
        assert shuffle_box.xsizemode == "pixel"
        words = next(text for text in titles.text if "Channel Shuffle" in text)
        words_px = len("Channel Shuffle") * GLYPH_EM * titles.textfont.size * scale
        assert shuffle_box.x1 - shuffle_box.x0 >= words_px, (scale, words)
    grown = boxes(projector_style(figure))[0]
    assert grown.x1 - grown.x0 == pytest.approx((boxes(figure)[0].x1 - boxes(figure)[0].x0)
                                                * PROJECTOR_FONT_SIZE / FONT_SIZE)


def test_a_phones_unit_diagram_writes_the_notes_inside_each_box(diagram):
    figure = unit_diagram_figure(diagram, narrow=True)
    wide = unit_diagram_figure(diagram)
    assert not figure.layout.annotations or all(note.showarrow is not False or note.text == "identity"
                                                 for note in figure.layout.annotations)
    assert len(wide.layout.annotations) > len(figure.layout.annotations)  # the notes beside the boxes are gone
    titles, notes = (trace for trace in figure.data if trace.mode == "text" and trace.textposition == "middle center")
    branch = [node for node in diagram.nodes if node.column == 0]
    for node, title, note in zip(branch, titles.y, notes.y):
        box = next(box for box, shown in zip(boxes(figure), diagram.nodes) if shown.key == node.key)
        assert box.y0 < note < title < box.y1, node.key  # the notes under the title, both inside the box
    assert figure.layout.xaxis.range[1] < wide.layout.xaxis.range[1]  # no room kept for notes on the right
    assert node_title(diagram.node("shuffle")) in titles.text
