"""Feature capture: one forward pass gives every point's true tensor, the shuffle point is the shuffled
compress point, channel groups follow the architecture, and no hook outlives a capture or leaks across threads."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from shufflenet_viz.attributions import has_hooks
from shufflenet_viz.features import (UNGROUPED, UNIT_POINTS, capture_features, channel_groups_at, channel_order,
                                     channel_strength, feature_points, forward_hooks, layer_names, point_name,
                                     split_point)
from shufflenet_viz.figures.features import (FRAME_NAME, LEGEND_GROUPS_PER_ROW, LEGEND_ROW_PIXELS,
                                             feature_grid_figure)
from shufflenet_viz.copies import with_shuffle
from shufflenet_viz.model import build_model, channel_shuffle, shuffle_permutation
from shufflenet_viz.preprocess import preprocess_image
from shufflenet_viz.runtime import configure_torch_threads


@pytest.fixture(scope="module", autouse=True)
def serving_threads():
    """The app's torch threads (one per session): two threads spin against each other on a busy machine."""
    configure_torch_threads()


@pytest.fixture(scope="module")
def sample_inputs(cifar_pair, sample_image_path):
    from PIL import Image

    with Image.open(sample_image_path) as image:
        picture = image.convert("RGB")
    return [preprocess_image(picture, loaded.preprocessing) for loaded in cifar_pair]


@pytest.fixture(scope="module")
def captured(cifar_pair, sample_inputs):
    return [capture_features(loaded.model, x) for loaded, x in zip(cifar_pair, sample_inputs)]


def test_every_point_is_captured_with_the_architectures_shapes(cifar_pair, captured):
    for loaded, features in zip(cifar_pair, captured):
        model, g = loaded.model, loaded.groups
        assert list(features) == feature_points(model)
        assert len(features) == 1 + 16 * len(UNIT_POINTS)
        c2, c3, c4 = model.config.stage_channels
        assert features["stem"].shape == (1, 24, 16, 16)
        assert features["stage2.unit1.compress_relu"].shape == (1, c2 // 4, 16, 16)
        assert features["stage2.unit1.depthwise_bn"].shape == (1, c2 // 4, 8, 8)
        assert features["stage2.unit1.expand_bn"].shape == (1, c2 - 24, 8, 8)
        assert features["stage2.unit1.output"].shape == (1, c2, 8, 8)
        assert features["stage4.unit4.output"].shape == (1, c4, 2, 2)
        assert (c4, g) in ((576, 1), (960, 3))
        assert all(not t.requires_grad and t.device.type == "cpu" for t in features.values())


def test_captured_tensors_are_the_networks_own(cifar_pair, sample_inputs, captured):
    # The recorded points are what the modules compute: the stem and the last unit match a plain run, and
    # the compress point is ReLU'd (nothing negative), as the shuffle receives it.
    for loaded, x, features in zip(cifar_pair, sample_inputs, captured):
        with torch.no_grad():
            assert torch.equal(features["stem"], loaded.model.stem(x))
            assert torch.equal(features["stage4.unit4.output"], loaded.model.forward_features(x))
        assert all(features[point_name(u, "compress_relu")].min() >= 0 for u in loaded.model.unit_names())


@pytest.mark.parametrize("side", [0, 1], ids=["g1", "g3"])
def test_after_shuffle_equals_channel_shuffle_of_before(cifar_pair, captured, side):
    loaded, features = cifar_pair[side], captured[side]
    g = loaded.groups
    for unit in loaded.model.unit_names():
        before, after = features[f"{unit}.compress_relu"], features[f"{unit}.shuffle"]
        assert torch.equal(after, channel_shuffle(before, g)), unit
        if g > 1:  # a real reordering, so the equality above is not trivially true
            assert not torch.equal(after, before), unit
            perm = shuffle_permutation(before.shape[1], g)
            assert torch.equal(after[0, 1], before[0, perm[1]])


def test_no_hook_is_left_after_capture_even_when_the_forward_raises():
    model = build_model(groups=3, num_classes=10).eval()
    capture_features(model, torch.randn(1, 3, 64, 64))
    assert not has_hooks(model)
    with pytest.raises(RuntimeError):
        capture_features(model, torch.randn(1, 4, 64, 64))  # wrong channel count: the stem conv raises
    assert not has_hooks(model)

    def failing_observer(module, inputs, output):
        raise ValueError("observer failed")

    with pytest.raises(ValueError, match="observer failed"):
        with forward_hooks(model, {"stage3.unit2.shuffle": failing_observer}):
            assert has_hooks(model)
            model(torch.randn(1, 3, 64, 64))
    assert not has_hooks(model)
    with pytest.raises(ValueError, match="no module named"):
        with forward_hooks(model, {"stage9.unit1": failing_observer}):
            pass
    assert not has_hooks(model)


def test_hooks_record_only_the_attaching_threads_forward_pass():
    torch.manual_seed(0)
    model = build_model(groups=3, num_classes=10).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = model(x)
    seen, other_thread_logits = [], []

    def observe(module, inputs, output):
        seen.append(threading.get_ident())

    with forward_hooks(model, {"stage2.unit1": observe, "stem": observe}):
        worker = threading.Thread(target=lambda: other_thread_logits.append(model(x).detach()))
        worker.start()
        worker.join()
        assert seen == []  # the other thread's pass went by unrecorded ...
        assert torch.equal(other_thread_logits[0], expected)  # ... and unchanged
        with torch.no_grad():
            model(x)
    assert seen == [threading.get_ident()] * 2
    assert not has_hooks(model)


def test_channel_groups_follow_the_architecture(cifar_pair):
    g3 = cifar_pair[1].model
    before = channel_groups_at(g3, "stage2.unit2.compress_relu")
    after = channel_groups_at(g3, "stage2.unit2.shuffle")
    assert before.origin.tolist() == [0] * 20 + [1] * 20 + [2] * 20  # made by the first 1x1 GConv's groups ...
    # Channel b of group a lands at position 3b + a, which the second 1x1 GConv reads in group (3b + a) // 20.
    assert before.reader.tolist() == [(3 * b + a) // 20 for a in range(3) for b in range(20)]
    assert after.reader.tolist() == before.origin.tolist()  # the second 1x1 GConv reads contiguous groups ...
    assert after.origin.tolist() == [0, 1, 2] * 20  # ... that now hold one channel of every old group
    assert after.source.tolist() == shuffle_permutation(60, 3).tolist() and after.moved
    depthwise = channel_groups_at(g3, "stage2.unit2.depthwise_bn")
    assert depthwise.origin.tolist() == after.origin.tolist()  # a depthwise conv keeps channels apart

    first = channel_groups_at(g3, "stage2.unit1.output")  # 216 branch channels, then the 24 pooled stem channels
    assert first.origin.tolist() == [0] * 72 + [1] * 72 + [2] * 72 + [UNGROUPED] * 24
    assert first.reader.tolist() == [0] * 80 + [1] * 80 + [2] * 80  # stage2.unit2 reads contiguous thirds
    stride2 = channel_groups_at(g3, "stage3.unit1.output")  # 240 branch + 240 pooled stage-2 channels
    assert stride2.origin.tolist() == [0] * 80 + [1] * 80 + [2] * 80 + [0] * 80 + [1] * 80 + [2] * 80
    assert stride2.reader.tolist() == [0] * 160 + [1] * 160 + [2] * 160
    assert stride2.origin[100] == 1 and stride2.reader[100] == 0
    stem = channel_groups_at(g3, "stem")
    assert stem.origin.tolist() == stem.reader.tolist() == [UNGROUPED] * 24  # read by a dense 1x1 conv
    dense = channel_groups_at(g3, "stage2.unit1.compress_relu")  # stage2.unit1's first conv is not grouped
    assert dense.origin.tolist() == [UNGROUPED] * 60 and set(dense.reader.tolist()) == {0, 1, 2}
    last = channel_groups_at(g3, "stage4.unit4.output")  # read by the dense classifier
    assert last.reader.tolist() == [UNGROUPED] * 960

    no_shuffle = channel_groups_at(with_shuffle(g3, False), "stage2.unit2.shuffle")
    assert not no_shuffle.moved and no_shuffle.origin.tolist() == before.origin.tolist()
    g1 = cifar_pair[0].model
    assert not channel_groups_at(g1, "stage3.unit3.shuffle").moved


def test_group_labels_cover_every_captured_channel(cifar_pair, captured):
    for loaded, features in zip(cifar_pair, captured):
        for point, tensor in features.items():
            groups = channel_groups_at(loaded.model, point)
            assert groups.channels == tensor.shape[1], point
            for labels in (groups.origin, groups.reader):
                assert set(labels.tolist()) <= {UNGROUPED, *range(loaded.groups)}, point


def test_channel_order_by_index_and_by_strength(captured):
    feature = captured[1]["stage4.unit4.output"]
    assert channel_order(feature, "index").tolist() == list(range(960))
    for by in ("mean_abs", "mean"):
        order = channel_order(feature, by)
        assert sorted(order.tolist()) == list(range(960))
        strength = channel_strength(feature, by)[order]
        assert np.all(np.diff(strength) <= 0)
    expected = feature[0].abs().mean(dim=(1, 2)).numpy()
    assert channel_strength(feature, "mean_abs") == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError, match="unknown ordering"):
        channel_order(feature, "loudest")


def test_point_names_round_trip(cifar_pair):
    model = cifar_pair[1].model
    assert layer_names(model)[:2] == ["stem", "stage2.unit1"] and len(layer_names(model)) == 17
    for point in feature_points(model):
        layer, part = split_point(point)
        assert point_name(layer, part) == point
    with pytest.raises(ValueError):
        split_point("stage2.unit1.relu")
    with pytest.raises(ValueError):
        channel_groups_at(model, "stage5.unit1.output")


@pytest.mark.parametrize("groups, rows", [(3, 1), (8, 2)])
def test_the_grid_legend_names_every_group_across_the_figure(groups, rows):
    channels = groups * 6
    tiles = np.random.default_rng(0).standard_normal((channels, 7, 7))
    figure = feature_grid_figure(tiles, np.arange(channels), np.arange(channels) // 6, "t").to_dict()
    frames = [trace for trace in figure["data"] if trace.get("meta", {}).get("role") == FRAME_NAME]
    assert [trace["name"] for trace in frames] == [f"group {g + 1}" for g in range(groups)]
    # One legend group per entry: plotly stacks the entries of a shared group vertically (g=8 was cut off).
    assert len({trace["legendgroup"] for trace in frames}) == groups
    legend = figure["layout"]["legend"]
    assert (legend["orientation"], legend["xref"]) == ("h", "container")
    assert -(-groups // LEGEND_GROUPS_PER_ROW) == rows
    assert figure["layout"]["margin"]["b"] == 20 + rows * LEGEND_ROW_PIXELS
