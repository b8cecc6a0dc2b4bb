"""figures/shuffle.py and figures/flow.py: the figures show exactly the data they are given."""

import numpy as np
import pytest
import torch

from shufflenet_viz import flow
from shufflenet_viz.figures.common import GROUP_COLOURS, group_colour
from shufflenet_viz.figures.flow import (BOUNDARY_COLOUR, bin_size, influence_figure, pool_matrix,
                                         prediction_change_figure, reachability_figure)
from shufflenet_viz.figures.shuffle import (MIXED_COLOUR, layered_flow_figure, permutation_wiring_figure,
                                            shuffle_animation_figure, text_colour_on)
from shufflenet_viz.inference import Classification
from shufflenet_viz.model import shuffle_permutation


def test_animation_figure_frames_controls_and_final_order():
    animation = flow.shuffle_animation(60, 3, steps_between=6)
    figure = shuffle_animation_figure(animation)
    assert len(figure.frames) == 22
    assert [b.label for b in figure.layout.updatemenus[0].buttons] == ["\u25B6 Play", "\u275A\u275A Pause"]
    steps = figure.layout.sliders[0].steps  # one per key stage; Play runs the frames in between too
    assert [list(s.args[0]) for s in steps] == [["0"], ["7"], ["14"], ["21"]]
    assert [s.label for s in steps] == ["1 row", "2 reshape", "3 transpose", "4 flatten"]
    assert [t.marker.color for t in figure.data[:3]] == list(GROUP_COLOURS[:3])
    captions = [frame.data[3].text[0] for frame in figure.frames]
    assert captions[0] == "1. channels in a row" and captions[1] == captions[7] == "2. reshape into g rows of C/g"
    assert captions[21] == "4. flatten back: the shuffled row"
    assert figure.layout.title.text == "Channel shuffle of C=60 channels in g=3 groups"
    permutation = shuffle_permutation(60, 3).tolist()
    placed = {}
    for trace in figure.frames[-1].data[:3]:
        for x, y, label in zip(trace.x, trace.y, trace.text):
            assert y == 0
            placed[int(round(x))] = int(label)
    assert [placed[slot] for slot in range(60)] == permutation  # out[i] <- in[perm[i]]
    first = {int(label): x for trace in figure.frames[0].data[:3] for x, label in zip(trace.x, trace.text)}
    assert first == {i: i for i in range(60)}


def test_text_is_legible_on_every_group_colour():
    assert text_colour_on("#F0E442") == "#000000"  # yellow
    assert text_colour_on("#0072B2") == "#FFFFFF"  # blue
    assert text_colour_on("#000000") == "#FFFFFF"


def test_layered_flow_figure_draws_every_link_and_reach_dot():
    stacks = [flow.stacked_group_convs(12, 3, 3, shuffle) for shuffle in (False, True)]
    figure = layered_flow_figure(stacks, ["without", "with"])
    assert [a.text for a in figure.layout.annotations] == ["without", "with"]
    assert list(figure.layout.yaxis.ticktext) == ["input", "GConv 1", "no shuffle", "GConv 2", "no shuffle", "GConv 3"]
    for axis, stack in (("x", stacks[0]), ("x2", stacks[1])):
        traces = [t for t in figure.data if t.xaxis == axis]
        segments = sum(sum(1 for v in t.x if v is None) for t in traces if t.mode == "lines")
        assert segments == sum(int(link.sum()) for link in stack.links)
        filled = sum(len(t.x) for t in traces if t.mode == "markers" and t.name.startswith("hears"))
        assert filled == sum(int(r.sum()) for r in stack.reach)
    shuffled_lines = [t for t in figure.data if t.xaxis == "x2" and t.mode == "lines"]
    assert MIXED_COLOUR in {t.line.color for t in shuffled_lines}  # after GConv 2, links carry all groups
    plain_lines = [t for t in figure.data if t.xaxis == "x" and t.mode == "lines"]
    assert {t.line.color for t in plain_lines} == set(GROUP_COLOURS[:3])


def test_permutation_wiring_connects_each_output_to_its_input():
    permutation = shuffle_permutation(12, 3)
    figure = permutation_wiring_figure(permutation, 3, "a unit")
    links = []
    for trace in figure.data:
        if trace.mode == "lines":
            xs = np.array(trace.x, dtype=float).reshape(-1, 3)
            links += [(int(a), int(b)) for a, b, _ in xs]
    assert sorted(links, key=lambda pair: pair[1]) == [(int(p), i) for i, p in enumerate(permutation)]
    assert figure.layout.title.text == "a unit"
    identity = permutation_wiring_figure(torch.arange(6), 1, "g=1")
    xs = np.array(identity.data[0].x, dtype=float).reshape(-1, 3)
    assert np.array_equal(xs[:, 0], xs[:, 1])  # straight lines
    assert identity.data[0].line.color == group_colour(0)


def test_pooling_keeps_totals_and_boundaries_on_bin_edges():
    assert [bin_size(n) for n in (240, 480, 960, 576, 24)] == [1, 2, 4, 3, 1]
    matrix = np.arange(960 * 480, dtype=float).reshape(960, 480)
    pooled, row_bin, column_bin = pool_matrix(matrix, "sum")
    assert pooled.shape == (240, 240) and (row_bin, column_bin) == (4, 2)
    assert pooled.sum() == matrix.sum()
    assert pool_matrix(np.eye(4), "mean")[0].tolist() == np.eye(4).tolist()


def test_reachability_figure_shows_the_matrices():
    blocks = flow.group_conv_connectivity(480, 480, 3)
    figure = reachability_figure([("no shuffle", blocks, 3), ("full", torch.ones(480, 480, dtype=torch.bool), 3)])
    assert [a.text for a in figure.layout.annotations] == ["no shuffle", "full"]
    first = np.array(figure.data[0].z)
    assert first.shape == (240, 240)
    assert np.array_equal(first, np.kron(np.eye(3), np.ones((80, 80))))
    assert np.all(np.array(figure.data[1].z) == 1)
    lines = [s for s in figure.layout.shapes if s.line.color == BOUNDARY_COLOUR]
    assert len(lines) == 2 * 2 * 2  # two panels, two boundaries, both axes
    assert sorted({s.x0 for s in lines if s.x0 == s.x1}) == [159.5, 319.5]


def test_influence_figure_leaves_exact_zeros_white():
    matrix = np.kron(np.eye(3), np.ones((2, 2))) * np.arange(1, 7)[None, :]
    influence = flow.Influence(matrix, 3, "a", "b", 0.0)
    figure = influence_figure([("one", influence)])
    z = np.array(figure.data[0].z, dtype=float)
    assert np.all(np.isnan(z[matrix == 0])) and not np.any(np.isnan(z[matrix > 0]))
    assert np.nanmax(z) == 0 and z[0, 0] == pytest.approx(np.log10(1 / 6))


def test_prediction_change_figure_pairs_the_two_answers():
    classes = tuple("abcdefg")
    on = Classification("m", classes, np.array([0.5, 0.2, 0.1, 0.1, 0.05, 0.05, 0.0]), 0.0)
    off = Classification("m", classes, np.array([0.0, 0.1, 0.1, 0.1, 0.1, 0.1, 0.5]), 0.0)
    figure = prediction_change_figure(on, off)
    assert [t.name for t in figure.data] == ["shuffle on", "shuffle off"]
    names = list(figure.data[0].y)
    assert names[:5] == ["a", "b", "c", "d", "e"] and "g" in names and len(names) == len(set(names))
    assert list(figure.data[1].x) == [float(off.probabilities[classes.index(n)]) for n in names]


def test_rows_are_bounded_where_their_source_group_changes():
    # A stride-2 output in the official layout: [pooled 1, 2, 3 | branch 1, 2, 3], 4 channels each.
    labels = np.repeat([0, 1, 2, 0, 1, 2], 4)
    figure = reachability_figure([("official", torch.ones(24, 12, dtype=torch.bool), 3, labels)])
    rows = sorted(s.y0 for s in figure.layout.shapes if s.y0 == s.y1)
    columns = sorted(s.x0 for s in figure.layout.shapes if s.x0 == s.x1)
    assert rows == [3.5, 7.5, 11.5, 15.5, 19.5] and columns == [3.5, 7.5]
    influence = flow.Influence(np.ones((24, 12)), 3, "a", "b", 0.0, labels)
    shapes = influence_figure([("x", influence)]).layout.shapes
    assert sorted(s.y0 for s in shapes if s.y0 == s.y1) == rows
    assert influence.cross_group_share == pytest.approx(2 / 3)
