"""The sentences of The unit, Cost arithmetic and the Lesson, swept through the library functions that write them,
each claim checked against a computation of this file: a unit's output with its shuffle module bypassed, the order
its modules run in, the channels a perturbation reaches, tensor shapes from a forward pass, multiply-adds from the
section 3.2 counts, and the paper's shuffle done by hand on one-hot channels. Models: every shipped one (the CIFAR
pair and the experiment models, the no-shuffle ones included) and the installed ImageNet models."""

from __future__ import annotations

import itertools
import re

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from shufflenet_viz import flow, weights
from shufflenet_viz.cost import (affordable_widths, affordable_widths_sentence, dominance_caption, format_macs,
                                 setting_problem, table1_setting, unit_macs, widths_against_table1)
from shufflenet_viz.figures.cost import formula_figure
from shufflenet_viz.figures.shuffle import layered_flow_figure
from shufflenet_viz.model import GROUPS, STAGE_OUT_CHANNELS, ShuffleUnit
from shufflenet_viz.runtime import configure_torch_threads
from shufflenet_viz.unit_diagram import (figure2_name, shuffle_place_sentence, stride2_arithmetic, unit_lesson_text,
                                         unit_of)

MAP_SIDE = 8  # a unit's input in these checks: (1, C, 8, 8) of random numbers


@pytest.fixture(scope="module", autouse=True)
def serving_threads():
    configure_torch_threads()


@pytest.fixture(scope="module")
def shipped_models():
    """Every model of weights/ (its own copies: the checks swap a unit's shuffle out for a moment)."""
    models, problems = weights.load_all(weights.WEIGHTS_DIR)
    assert not problems, problems
    assert {"cifar10_x0.5_g3_noshuffle_s0", "cifar10_x0.5_g8_noshuffle_s0", "cifar10_g1"} <= set(models)
    return {name: loaded.model for name, loaded in models.items()}


@pytest.fixture(scope="module", params=["shipped", "imagenet"])
def installed(request, shipped_models):
    """name -> model of one family of installed models."""
    if request.param == "shipped":
        return shipped_models
    return {name: loaded.model for name, loaded in request.getfixturevalue("imagenet_models").items()}


class UnitFacts:
    """What one unit does, measured: its modules' run order, shapes, and whether bypassing its shuffle changes
    its output."""

    def __init__(self, unit: ShuffleUnit, seed: int = 0):
        generator = torch.Generator().manual_seed(seed)
        self.unit = unit
        self.x = torch.randn(1, unit.compress_conv.in_channels, MAP_SIDE, MAP_SIDE, generator=generator)
        order, shapes = [], {}

        def record(name):
            def hook(_module, _inputs, output):
                order.append(name)
                shapes[name] = tuple(output.shape)
            return hook

        handles = [module.register_forward_hook(record(name)) for name, module in unit.named_children()]
        try:
            with torch.no_grad():
                self.y = unit(self.x)
        finally:
            for handle in handles:
                handle.remove()
        self.order, self.shapes = order, shapes
        self.runs_before_shuffle = order[order.index("shuffle") - 1]
        shuffle = unit.shuffle
        unit.shuffle = nn.Identity()
        try:
            with torch.no_grad():
                bypassed = unit(self.x)
        finally:
            unit.shuffle = shuffle
        self.shuffle_changes_output = not torch.equal(bypassed, self.y)
        self.groups = unit.expand_conv.groups
        self.stride1 = self.y.shape[-1] == self.x.shape[-1]

    def output_groups_reached_from(self, group: int) -> set[int]:
        """The groups of the unit's output that change when the input's channels of `group` change."""
        channels = self.x.shape[1]
        per_group = channels // self.groups
        nudged = self.x.clone()
        nudged[:, group * per_group:(group + 1) * per_group] += 1.0
        with torch.no_grad():
            changed = (self.unit(nudged) - self.y).abs().amax(dim=(0, 2, 3)) > 0
        return {int(channel) // (self.y.shape[1] // self.groups) for channel in torch.nonzero(changed).flatten()}


def every_unit(models: dict) -> list[tuple[str, str, ShuffleUnit]]:
    return [(name, unit_name, unit_of(model, unit_name)) for name, model in models.items()
            for unit_name in model.unit_names()]


def test_shuffle_place_sentence_of_every_unit_of_every_installed_model(installed):
    seen = set()
    for name, unit_name, unit in every_unit(installed):
        facts, sentence = UnitFacts(unit), shuffle_place_sentence(unit)
        where = f"{name} {unit_name}: {sentence}"
        assert ("This model shuffles" in sentence) == facts.shuffle_changes_output, where
        if facts.shuffle_changes_output:
            assert ("as the paper draws it" in sentence) == (facts.runs_before_shuffle == "compress_relu"), where
            assert ("after the 3x3 depthwise conv" in sentence) == (facts.runs_before_shuffle == "depthwise_bn"), where
            if facts.runs_before_shuffle == "compress_relu":
                grouped = unit.compress_conv.groups > 1
                assert ("after the first 1x1 GConv" if grouped else "after the first dense 1x1 conv") in sentence, where
        else:
            assert ("With g=1" in sentence) == (facts.groups == 1), where
            assert ("switched off" in sentence) == (facts.groups > 1), where
        claims_own_group = "hears only the same group of its input" in sentence
        if claims_own_group or (facts.stride1 and facts.groups > 1):
            local = all(facts.output_groups_reached_from(group) <= {group} for group in range(facts.groups))
            assert claims_own_group == local, where
        assert "1 groups" not in sentence
        seen.add((facts.shuffle_changes_output, facts.runs_before_shuffle, facts.groups > 1))
    assert (True, "compress_relu", True) in seen  # the sweep met the paper's layout shuffling


def test_no_shuffle_models_are_met_and_named_switched_off(shipped_models):
    for name in ("cifar10_x0.5_g3_noshuffle_s0", "cifar10_x0.5_g3_noshuffle_s1", "cifar10_x0.5_g8_noshuffle_s0"):
        if name not in shipped_models:
            continue
        unit = unit_of(shipped_models[name], "stage3.unit2")
        assert not UnitFacts(unit).shuffle_changes_output
        assert "shuffles after" not in shuffle_place_sentence(unit)
        assert figure2_name(unit).endswith("with the shuffle switched off")


def test_figure2_name_and_lesson_text_of_every_unit(installed):
    for name, unit_name, unit in every_unit(installed):
        facts = UnitFacts(unit)
        title, text = figure2_name(unit), unit_lesson_text(unit)
        where = f"{name} {unit_name}: {title} / {text}"
        as_drawn = facts.shuffle_changes_output and facts.runs_before_shuffle == "compress_relu"
        assert (title in ("the paper's Figure 2b", "the paper's Figure 2c")) == as_drawn, where
        assert ("Figure 2b" in title) == facts.stride1 and ("Figure 2c" in title) == (not facts.stride1), where
        assert ("official code's order" in title) == (facts.shuffle_changes_output and
                                                      facts.runs_before_shuffle == "depthwise_bn"), where
        assert ("switched off" in title) == (not facts.shuffle_changes_output and facts.groups > 1), where
        compress, expand = facts.shapes["compress_conv"][1], facts.shapes["expand_conv"][1]
        assert f"maps {facts.x.shape[1]} channels to {compress}," in text, where
        assert f"makes {expand} channels" in text, where
        if facts.stride1:
            assert facts.y.shape == facts.x.shape and "the input is added to them" in text, where
        else:
            assert f"concatenated to them: {facts.y.shape[1]} channels" in text, where
            assert facts.y.shape[1] == expand + facts.x.shape[1], where
        assert text.endswith(shuffle_place_sentence(unit)), where


def test_stride2_worked_example_of_every_installed_model(installed):
    for name, model in installed.items():
        for unit_name in [n for n in model.unit_names() if n.endswith("unit1")]:
            unit = unit_of(model, unit_name)
            facts = UnitFacts(unit)
            example = stride2_arithmetic(model, unit_name)
            lines, note = example.lines(), example.bottleneck_note()
            inputs, outputs = facts.x.shape[1], facts.y.shape[1]
            bottleneck, branch = facts.shapes["compress_conv"][1], facts.shapes["expand_conv"][1]
            pooled = F.relu(F.avg_pool2d(facts.x, 3, stride=2, padding=1))
            shortcut_first = torch.allclose(facts.y[:, :inputs], pooled, atol=1e-6)
            assert shortcut_first or torch.allclose(facts.y[:, -inputs:], pooled, atol=1e-6)
            where = f"{name} {unit_name}: {lines} {note}"
            assert lines[0] == f"{unit_name} takes {inputs} channels to {outputs}.", where
            assert f"keeps the {inputs} input channels: {inputs} of the output" in lines[1], where
            assert f"{outputs} - {inputs} = {branch} channels" in lines[2], where
            groups = unit.expand_conv.groups
            assert (f"1x1 GConv, {groups} groups" if groups > 1 else "dense with g=1") in lines[2], where
            quarter = bottleneck * 4 == outputs
            assert (f"{outputs} / 4 = {bottleneck} channels" in lines[3]) == quarter, where
            assert f"{bottleneck} channels" in lines[3], where
            assert ("the pooled shortcut first" in lines[4]) == shortcut_first, where
            assert ("(and this model) takes a quarter of the whole unit's output" in note) == quarter, where
            assert f"not of the branch's {branch} ({branch / 4:g})" in note or not quarter, where
            assert not any("1 groups" in line for line in [*lines, note]), where


# c, m, g, h, w: the paper's units, small and odd ones, m other than c/4, a 1x1 map, and the page's bounds.
COST_GRID = sorted({*(table1_setting(g, stage) for g in GROUPS for stage in range(3)),
                    *itertools.product((7, 16, 18, 36, 64, 240, 960), (7, 9, 16, 18, 32, 60, 240), (1, 2, 3, 7, 8),
                                       (1, 7, 28), (1, 28)),
                    (16, 16, 8, 1, 1), (7, 7, 7, 1, 1), (64, 32, 8, 28, 28), (100_000, 100_000, 1, 100_000, 100_000)})


def _read_count(text: str) -> float:
    """A formatted count back as a number: '208', '45.2 k', '3.174 M'."""
    match = re.fullmatch(r"([\d,]+(?:\.\d+)?)(?: ([kM]))?", text)
    assert match, text
    return float(match.group(1).replace(",", "")) * {None: 1, "k": 1e3, "M": 1e6}[match.group(2)]


def test_cost_sentences_over_a_grid_of_settings():
    checked = 0
    for c, m, g, h, w in COST_GRID:
        if setting_problem(c, m, g, h, w):
            continue
        checked += 1
        # Per pixel: the first 1x1 GConv gives m outputs from c/g inputs each, the second c outputs from m/g each,
        # the depthwise 3x3 one output from 9 inputs per channel.
        pointwise, depthwise = m * (c // g) + c * (m // g), m * 9
        caption = dominance_caption(c, m, g)
        where = f"c={c} m={m} g={g}: {caption}"
        assert f"2cm/g = {pointwise:,} " in caption and f"9m = {depthwise:,}" in caption, where
        assert ("m = c/4" in caption) == (4 * m == c), where
        assert ("the 1x1 convolutions dominate" in caption) == (pointwise >= 2 * depthwise), where
        assert ("the 1x1 convolutions cost more (" in caption) == (depthwise < pointwise < 2 * depthwise), where
        assert ("the depthwise conv costs more" in caption) == (depthwise > pointwise), where
        assert ("the two cost the same" in caption) == (depthwise == pointwise), where
        assert ("which is why ShuffleNet groups them" in caption) == (pointwise > depthwise), where
        if pointwise > depthwise:
            assert f"({pointwise / depthwise:.1f} times the depthwise conv)" in caption, where
        resnet = h * w * (c * m + 9 * m * m + m * c)
        counts = {"resnet": resnet, "resnext": h * w * (c * m + 9 * m * (m // g) + m * c),
                  "shufflenet": h * w * (pointwise + depthwise)}
        assert unit_macs(c, m, g, h, w) == pytest.approx(counts)
        figure = formula_figure(unit_macs(c, m, g, h, w))
        divisor = {"millions of multiply-adds": 1e6, "thousands of multiply-adds": 1e3,
                   "multiply-adds": 1}[figure.layout.yaxis.title.text]
        assert [y * divisor for y in figure.data[0].y] == pytest.approx(list(counts.values())), where
        for key, value in counts.items():
            shown = format_macs(value)
            assert _read_count(shown) == pytest.approx(value, rel=5e-3, abs=0.5), (key, value, shown)
            assert _read_count(shown) > 0, (key, value, shown)
        for text, value in zip(figure.data[0].text, counts.values()):
            share = float(re.search(r"\(([\d.]+)%\)$", text).group(1)) / 100
            assert text.startswith(f"{format_macs(value)} (") and share > 0, text
            assert share == pytest.approx(value / resnet, abs=0.0051), text
    assert checked > 300


def test_small_units_read_in_whole_multiply_adds():
    """The issue's example: c = m = 16, g = 8 on a 1x1 map costs 208 multiply-adds as a ShuffleNet unit."""
    assert format_macs(unit_macs(16, 16, 8, 1, 1)["shufflenet"]) == "208"
    assert "the depthwise conv costs more" in dominance_caption(16, 16, 8)
    assert "the depthwise conv costs more" in dominance_caption(7, 7, 7)
    assert "m = c/4" not in dominance_caption(64, 32, 8)


@pytest.mark.parametrize("budget_channels,side", [(144, 28), (200, 28), (144, 14), (72, 56)])
def test_widths_sentences_against_a_search_of_every_width(budget_channels, side):
    def cost(c: int, g: int) -> float:  # one ShuffleNet unit of width c, bottleneck c/4, on a side x side map
        return side * side * (2 * c * (c // 4) / g + 9 * (c // 4))

    budget = cost(budget_channels, 1)
    widths = {g: max(c for c in range(4 * g, 4000, 4 * g) if cost(c, g) <= budget) for g in GROUPS}
    _, rows = affordable_widths(budget_channels, side)
    sentence, verdict = affordable_widths_sentence(rows), widths_against_table1(rows)
    assert ", ".join(f"g={g}: **{c}**" for g, c in widths.items()) in sentence
    increasing = all(widths[a] < widths[b] for a, b in zip(GROUPS, GROUPS[1:]))
    assert ("larger g affords more channels" in sentence) == increasing
    same = {g: tuple(widths[g] * 2 ** k for k in range(3)) == STAGE_OUT_CHANNELS[g] for g in GROUPS}
    assert (verdict == "exactly Table 1's widths") == all(same.values())
    assert verdict in sentence
    for g in GROUPS:
        assert (f"g={g} (" in verdict) == (not same[g])
    assert all(same.values()) == (budget_channels == 144)  # hw scales both sides: only the budget's width counts


def _hears_every_group_by_hand(channels: int, groups: int, layers: int, shuffle: bool) -> int:
    """Output channels that hear every input group after `layers` 1x1 group convs with all-one weights, with the
    paper's shuffle (reshape to (g, C/g), transpose, flatten) between them: one-hot channels run through real
    convolutions, so an output hears input channel i when its response to the i-th one-hot is non-zero."""
    per_group = channels // groups
    x = torch.eye(channels).reshape(channels, channels, 1, 1)  # batch item i: only channel i is on
    weight = torch.ones(channels, per_group, 1, 1)
    for layer in range(layers):
        if layer and shuffle:
            x = x.reshape(channels, groups, per_group, 1, 1).transpose(1, 2).reshape(channels, channels, 1, 1)
        x = F.conv2d(x, weight, groups=groups)
    heard = x[:, :, 0, 0] > 0  # (input channel, output channel)
    heard_groups = torch.stack([heard[g * per_group:(g + 1) * per_group].any(dim=0) for g in range(groups)])
    return int(heard_groups.all(dim=0).sum())


@pytest.mark.parametrize("groups", [2, 3, 4, 8])
@pytest.mark.parametrize("per_group", [1, 2, 3, 4, 6, 8])
def test_toy_shuffle_sentence_for_every_toy(groups, per_group):
    channels = groups * per_group
    stacks = [flow.stacked_group_convs(channels, groups, 2, on) for on in (False, True)]
    sentence = flow.toy_shuffle_sentence(*stacks)
    with_shuffle = _hears_every_group_by_hand(channels, groups, 2, True)
    without = _hears_every_group_by_hand(channels, groups, 2, False)
    assert ("every group hears every group" in sentence) == (with_shuffle == channels)
    assert ("not enough" in sentence) == (with_shuffle < channels)
    assert f"C = {channels} channels in g = {groups} groups of {per_group}" in sentence
    assert f"{with_shuffle} of {channels} output channels, against {without} without" in sentence
    # The condition the sentence states, against the count by hand.
    assert (with_shuffle == channels) == (per_group >= groups)
    assert f"C/g = {per_group} {'≥' if per_group >= groups else '<'} g = {groups}" in sentence


def test_lesson_toy_stacks_never_cross_groups_without_a_shuffle():
    for layers in range(1, 6):
        assert _hears_every_group_by_hand(12, 3, layers, False) == 0
        assert flow.stacked_group_convs(12, 3, layers, False).outputs_hearing_every_group == 0


@pytest.mark.parametrize("groups,per_group,layers", [(3, 4, 2), (3, 4, 3), (2, 2, 4), (8, 1, 2)])
def test_figure1_panels_each_label_their_own_rows(groups, per_group, layers):
    panels = (False, True)
    stacks = [flow.stacked_group_convs(groups * per_group, groups, layers, on) for on in panels]
    figure = layered_flow_figure(stacks, ["without shuffle", "with shuffle"]).to_plotly_json()["layout"]
    for index, on in enumerate(panels, start=1):
        axis = figure["yaxis" if index == 1 else f"yaxis{index}"]
        rows = ["input", "GConv 1"]
        for k in range(2, layers + 1):
            rows += ["shuffle" if on else "no shuffle", f"GConv {k}"]
        assert list(axis["ticktext"]) == rows, (index, axis)
        assert axis.get("showticklabels", True) is not False
