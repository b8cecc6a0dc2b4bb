"""Every option of every control on the Feature maps and Attributions pages, swept through the functions the
pages call, each claim checked against an independent computation (gradients through the real modules, Captum's
own window count, numpy on the raw attributions). Layouts: the CIFAR-10 pair (paper layout) and random-weight
official-layout ImageNet architectures (0.5x g=3 and g=8), whose shuffle sits after the depthwise conv and
whose stride-2 output puts the shortcut first."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from captum.attr import Occlusion

from shufflenet_viz.attributions import (attribute, attribute_groups, black_baseline, describe_groups,
                                         describe_occlusion, occlusion_defaults, occlusion_windows)
from shufflenet_viz.features import (ORDERINGS, STEM, UNGROUPED, UNIT_POINTS, capture_features, channel_groups_at,
                                     channel_order, describe_channel, describe_point_groups, describe_shuffle,
                                     layer_names, point_module, shuffle_neighbour_points, split_point, unit_points)
from shufflenet_viz.figures.features import page_count, page_slice
from shufflenet_viz.model import build_model
from shufflenet_viz.preprocess import Preprocessing
from shufflenet_viz.runtime import configure_torch_threads


@pytest.fixture(scope="module", autouse=True)
def serving_threads():
    configure_torch_threads()


@pytest.fixture(scope="module")
def models(cifar_pair):
    """name -> (model, input side): the shipped pair and official-layout architectures with random weights."""
    torch.manual_seed(0)
    chosen = {loaded.name: (loaded.model, loaded.preprocessing.input_size) for loaded in cifar_pair}
    for groups in (3, 8):
        chosen[f"official_g{groups}"] = (build_model(groups, 0.5, 1000, layout="official").eval(), 64)
    return chosen


def _grad_wrt(model, x, source: str, target: str, select) -> torch.Tensor:
    """d(sum of select(target's output)) / d(source's tensor) per channel: source is a module whose output (or,
    for "<module>:in", input) is the tensor, target the module whose output is read. Eval mode keeps the items
    of a batch apart, so `select` may pick something else in each item and the rows of the result differ."""
    modules = dict(model.named_modules())
    saved = {}
    name, _, side = source.partition(":")

    def keep(module, inputs, output):
        tensor = inputs[0] if side == "in" else output
        saved["source"] = tensor
        tensor.retain_grad()

    def keep_target(module, inputs, output):
        saved["target"] = output

    handles = [modules[name].register_forward_hook(keep), modules[target].register_forward_hook(keep_target)]
    try:
        with torch.enable_grad():
            model(x.clone().requires_grad_())
            select(saved["target"]).sum().backward()
    finally:
        for handle in handles:
            handle.remove()
    return saved["source"].grad.abs().sum(dim=(2, 3))  # (batch, channels)


def _module_name(model, point: str) -> str:
    module = point_module(model, point)
    return next(name for name, m in model.named_modules() if m is module)


def _reader_module(model, point: str) -> tuple[str, int]:
    """(name of the conv that reads `point` next, its groups) found from the module tree, not from features.py."""
    layer, part = split_point(point)
    names = [STEM, *model.unit_names()]
    if layer != STEM and part not in ("expand_bn", "output"):
        return f"{layer}.expand_conv", model.get_submodule(f"{layer}.expand_conv").groups
    following = names[names.index(layer) + 1:]
    if not following:
        return "classifier", 1
    conv = model.get_submodule(f"{following[0]}.compress_conv")
    return f"{following[0]}.compress_conv", conv.groups


def _measured_readers(model, x, point: str) -> list[set[int]]:
    """For each channel at `point`: the reader conv's output groups whose value it changes (by gradients)."""
    reader, groups = _reader_module(model, point)
    source = _module_name(model, point)
    if reader == "classifier":  # dense: every channel reaches every class score
        grad = _grad_wrt(model, x, source, reader, lambda out: out)[0]
        return [{UNGROUPED} if g > 0 else set() for g in grad]
    out_channels = model.get_submodule(reader).out_channels
    per_group = out_channels // groups
    reached = [set() for _ in range(channel_groups_at(model, point).channels)]
    mask = torch.zeros(groups, out_channels, 1, 1)
    for group in range(groups):
        mask[group, group * per_group:(group + 1) * per_group] = 1
    grads = _grad_wrt(model, x.expand(groups, -1, -1, -1), source, reader, lambda out: out * mask)
    for group in range(groups):
        for channel in torch.nonzero(grads[group] > 0).flatten().tolist():
            reached[channel].add(UNGROUPED if groups == 1 and model.config.groups > 1 else group)
    return reached


def _maker_input(model, point: str) -> tuple[str, int] | None:
    """The conv that computed the channels at `point` (its module name, its groups), or None for a stride-2
    unit's output and the stem (checked separately)."""
    layer, part = split_point(point)
    if layer == STEM:
        return None
    if part in ("compress_relu", "shuffle", "depthwise_bn"):
        conv = model.get_submodule(f"{layer}.compress_conv")
        return f"{layer}.compress_conv", conv.groups
    return f"{layer}.expand_conv", model.get_submodule(f"{layer}.expand_conv").groups


def test_feature_map_colours_every_layer_point_order_and_page(models):
    """Frames (origin), bars (reader), their captions, orderings and pages, for every layer and point."""
    for name, (model, size) in models.items():
        torch.manual_seed(1)
        x = torch.randn(1, 3, size, size)
        captured = capture_features(model, x)
        g = model.config.groups
        for layer in layer_names(model):
            points = [STEM] if layer == STEM else [f"{layer}.{part}" for part in
                                                   unit_points(model.get_submodule(layer))]
            if layer != STEM:
                before, after = shuffle_neighbour_points(model.get_submodule(layer))
                # The pair is the tensor just before and just after the `shuffle` module, in forward order.
                assert torch.equal(captured[f"{layer}.{after}"],
                                   model.get_submodule(f"{layer}.shuffle")(captured[f"{layer}.{before}"]))
                assert sorted(unit_points(model.get_submodule(layer))) == sorted(UNIT_POINTS)
                # The shuffle caption's "reads channels from N of the g groups", from the real shuffle module:
                # label each bottleneck channel with its first-conv group, shuffle the labels, read them in blocks.
                block = model.get_submodule(layer)
                mid = block.mid_channels
                if block.compress_conv.groups == g and g > 1:
                    labels = (torch.arange(mid) // (mid // g)).float().reshape(1, mid, 1, 1)
                    shuffled = block.shuffle(labels).flatten().long().reshape(g, mid // g)
                    heard = sorted({len(set(row.tolist())) for row in shuffled})
                    count = f"{heard[0]}" if len(heard) == 1 else f"{heard[0]} to {heard[-1]}"
                    assert f"reads channels from {count} of the {g} groups" in describe_shuffle(model, layer)
            for point in points:
                groups = channel_groups_at(model, point)
                assert groups.channels == captured[point].shape[1], (name, point)
                # Reader: the next conv's output groups each channel reaches, measured by gradients.
                measured = _measured_readers(model, x, point)
                for channel, reached in enumerate(measured):
                    assert reached <= {int(groups.reader[channel])}, (name, point, channel, reached)
                live = sum(1 for reached in measured if reached)
                # Not vacuous: many channels reach it (ReLUs after a unit leave some channels dead on this input).
                assert live >= 0.25 * groups.channels, (name, point)
                # Origin: which groups of the maker conv's input each channel depends on.
                maker = _maker_input(model, point)
                if maker is not None and (split_point(point)[1] != "output"
                                          or model.get_submodule(split_point(point)[0]).stride == 1):
                    conv_name, conv_groups = maker
                    conv = model.get_submodule(conv_name)
                    per_group = conv.in_channels // conv_groups
                    origin = groups.origin
                    labels = sorted(set(origin.tolist()))
                    mask = torch.stack([torch.from_numpy(origin == group) for group in labels]).float()
                    grads = _grad_wrt(model, x.expand(len(labels), -1, -1, -1), f"{conv_name}:in",
                                      _module_name(model, point), lambda out: out * mask[:, :, None, None])
                    for group, grad in zip(labels, grads):
                        touched = {c // per_group for c in torch.nonzero(grad > 0).flatten().tolist()}
                        if group == UNGROUPED:
                            assert conv_groups == 1 and g > 1, (name, point)
                        else:
                            assert touched <= {group}, (name, point, group, touched)
                # Captions: the counts they state are the measured ones.
                text = describe_point_groups(model, point)
                differ = int(sum(1 for c in range(groups.channels) if groups.origin[c] != groups.reader[c]))
                measured_dense = all(reached <= {UNGROUPED} for reached in measured)
                if measured_dense:
                    assert f"reads all {groups.channels} channels together (no groups" in text, (name, point)
                elif differ:
                    assert f"differs from the frame for {differ} of {groups.channels} channels" in text
                else:
                    assert "reads every channel in the group that computed it" in text
                for channel in (0, groups.channels // 2, groups.channels - 1):
                    sentence = describe_channel(model, point, channel)
                    origin, reader = int(groups.origin[channel]), int(groups.reader[channel])
                    assert ("dense" in sentence if origin == UNGROUPED else f"group {origin + 1}" in sentence), \
                        (name, point, sentence)
                    assert ("no group" in sentence if reader == UNGROUPED else f"group {reader + 1}" in sentence), \
                        (name, point, sentence)
                # Orders and pages.
                feature = captured[point]
                for ordering in ORDERINGS:
                    order = channel_order(feature, ordering)
                    values = feature[0].flatten(1).double()
                    key = {"index": torch.arange(values.shape[0]).double(),
                           "mean_abs": -values.abs().mean(1), "mean": -values.mean(1)}[ordering]
                    assert np.all(np.diff(key[order].numpy()) >= -1e-6), (name, point, ordering)
                    pages = [order[page_slice(p, order.size)] for p in range(1, page_count(order.size) + 1)]
                    assert np.array_equal(np.concatenate(pages), order)


def test_stride2_shortcut_channels_keep_the_group_they_came_from(models):
    """At every stride-2 output, the shortcut's channels are the pooled input's, in the origin they had there."""
    for name, (model, size) in models.items():
        names = layer_names(model)
        for layer in model.unit_names():
            unit = model.get_submodule(layer)
            if unit.stride != 2:
                continue
            x = torch.rand(1, unit.compress_conv.in_channels, 8, 8) + 0.1  # positive: the ReLU keeps the pool
            branch_zeroed = unit.expand_bn.register_forward_hook(lambda m, i, o: torch.zeros_like(o))
            try:
                with torch.no_grad():
                    out = unit(x)
            finally:
                branch_zeroed.remove()
            pooled = unit.shortcut(x)
            groups = channel_groups_at(model, f"{layer}.output")
            previous = channel_groups_at(model, point_name_of(names, layer))
            flat_out, flat_pooled = out[0].flatten(1), pooled[0].flatten(1)
            for k in range(pooled.shape[1]):  # find where input channel k landed, by its values
                (position,) = torch.nonzero((flat_out == flat_pooled[k]).all(dim=1)).flatten().tolist()
                assert groups.origin[position] == previous.origin[k], (name, layer, k)


def point_name_of(names: list[str], layer: str) -> str:
    previous = names[names.index(layer) - 1]
    return previous if previous == STEM else f"{previous}.output"


def _captum_windows_per_axis(size: int, window: int, stride: int) -> int:
    """Count the examples Captum's Occlusion evaluates on a 1-D input of this size (minus the unoccluded one)."""
    calls = []

    def forward(batch):
        calls.append(batch.shape[0])
        return batch.sum(dim=1, keepdim=True)

    Occlusion(forward).attribute(torch.ones(1, size), sliding_window_shapes=(window,), strides=(stride,),
                                 target=0, perturbations_per_eval=4096)
    return sum(calls) - 1


@pytest.mark.parametrize("size", [64, 224])
def test_occlusion_window_count_for_every_window_and_stride(size):
    for window in range(2, size // 2 + 1, 2):  # the page's slider: 2 .. size/2 in steps of 2
        for stride in range(1, window + 1):  # the stride slider: 1 .. window
            per_axis = _captum_windows_per_axis(size, window, stride)
            assert occlusion_windows(size, window, stride) == per_axis ** 2, (size, window, stride)
            text = describe_occlusion({"m": size}, window, stride)
            assert f"{per_axis} x {per_axis} = {per_axis ** 2:,} window positions" in text
    defaults = occlusion_defaults(size)
    assert occlusion_windows(size, defaults["window"], defaults["stride"]) == 225


def test_occlusion_evaluations_and_progress_match_captum_2d(models):
    model, size = models["cifar10_g3"]
    x = torch.randn(1, 3, size, size)
    for window, stride in ((8, 3), (8, 4), (6, 5), (32, 32)):
        fractions = []
        result = attribute(model, x, "occlusion", 0, window=window, stride=stride, progress=fractions.append)
        per_axis = _captum_windows_per_axis(size, window, stride)
        assert result.extras == {"windows": per_axis ** 2, "evaluations": per_axis ** 2 + 1}
        assert fractions[-2] == 1.0 and all(f <= 1.0 for f in fractions)  # the last batch ends the count exactly
        assert fractions == sorted(fractions)


def test_gradcam_every_unit_and_both_baselines_every_method(models):
    """Grad-CAM for every unit, every method with both baselines / bases: shapes as the unit's output says."""
    for name in ("cifar10_g1", "cifar10_g3", "official_g3"):
        model, size = models[name]
        x = torch.randn(1, 3, size, size)
        captured = capture_features(model, x)
        for unit in model.unit_names():
            result = attribute(model, x, "gradcam", 1, unit=unit)
            assert result.extras["unit_map"].shape == tuple(captured[f"{unit}.output"].shape[-2:])
            assert result.map.shape == (size, size) and result.map.min() >= 0
    model, size = models["cifar10_g3"]
    x = torch.randn(1, 3, size, size)
    for baseline in (None, black_baseline(Preprocessing.cifar(size))):
        ig = attribute(model, x, "integrated_gradients", 2, n_steps=10, baseline=baseline)
        reference = torch.zeros_like(x) if baseline is None else baseline
        with torch.no_grad():
            expected = float(model(x)[0, 2] - model(reference)[0, 2])
        assert ig.values.sum() - ig.convergence_delta == pytest.approx(expected, rel=1e-4, abs=1e-5)
        occ = attribute(model, x, "occlusion", 2, window=32, stride=32, baseline=baseline)
        assert occ.values.shape == (3, size, size)
    for base in ("saliency", "integrated_gradients"):
        sg = attribute(model, x, "smoothgrad", 2, base=base, nt_samples=4, n_steps=5)
        assert sg.signed == (base == "integrated_gradients")


def test_ig_steps_caption_for_every_slider_value():
    """The page's caption states relative_delta for every step count the slider offers (10 .. 1000); the formula
    does not depend on the network, so a small ReLU network keeps 50,500 steps fast."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.Conv2d(8, 8, 3),
                                torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                                torch.nn.Linear(8, 10)).eval()
    x = torch.randn(1, 3, 8, 8)
    with torch.no_grad():
        difference = float(model(x)[0, 3] - model(torch.zeros_like(x))[0, 3])
    for steps in range(10, 1001, 10):
        result = attribute(model, x, "integrated_gradients", 3, n_steps=steps, internal_batch_size=steps)
        assert result.options["n_steps"] == steps
        assert result.relative_delta == pytest.approx(abs(result.values.sum() - difference) / abs(difference),
                                                      rel=1e-3, abs=1e-6)


def _independent_shares(per_channel: np.ndarray, model, unit: str) -> dict[str, float]:
    """Shares of sum |attribution| by where channels came from, the groups rebuilt from the module tree."""
    block = model.get_submodule(unit)
    g = model.config.groups
    origin = np.empty(per_channel.size, dtype=np.int64)
    branch = np.arange(block.branch_channels) // (block.branch_channels // g)
    if block.stride == 1:
        origin[:] = branch
    else:
        origin[block.branch_slice()] = branch
        names = layer_names(model)
        previous = names[names.index(unit) - 1]
        origin[block.shortcut_slice()] = (UNGROUPED if previous == STEM
                                          else channel_groups_at(model, f"{previous}.output").origin)
    total = np.abs(per_channel).sum()
    return {label: np.abs(per_channel[origin == k]).sum() / total
            for k, label in [(k, f"group {k + 1}") for k in range(g)] + [(UNGROUPED, "ungrouped")]}


def test_group_shares_every_unit_both_models(models):
    """Every unit of the per-group selectbox: shares of sum |attribution| (ungrouped channels included) and the
    caption's numbers, against numpy on the raw per-channel attributions."""
    for name in ("cifar10_g1", "cifar10_g3", "official_g3"):
        model, size = models[name]
        torch.manual_seed(2)
        x = torch.randn(1, 3, size, size)
        for unit in model.unit_names():
            result = attribute_groups(model, x, unit, 1, n_steps=4)
            expected = _independent_shares(result.per_channel, model, unit)
            g = model.config.groups
            assert list(result.shares) == pytest.approx([expected[f"group {k + 1}"] for k in range(g)])
            assert (result.ungrouped_share or 0.0) == pytest.approx(expected["ungrouped"])
            assert sum(result.shares) + (result.ungrouped_share or 0.0) == pytest.approx(1.0)
            text = describe_groups(result)
            for k in range(g):
                assert f"group {k + 1} {expected[f'group {k + 1}']:.0%}" in text, (name, unit, text)
            if expected["ungrouped"] > 0:
                assert f"(no group) {expected['ungrouped']:.0%}" in text


def test_every_class_a_user_can_choose_is_explained(cifar_pair):
    """'A class I choose': every class name maps to the index the attribution explains."""
    loaded = cifar_pair[1]
    x = torch.randn(1, 3, 64, 64)
    for name in loaded.classes:
        target = loaded.classes.index(name)
        assert attribute(loaded.model, x, "saliency", target).target == target
