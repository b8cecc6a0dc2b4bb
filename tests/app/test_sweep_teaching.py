"""The Unit, Cost arithmetic and Lesson pages show what their sentence builders say, and what they say holds:
each page rendered for the settings where a sentence changes (a model without shuffle, a g=1 model, the official
ImageNet layout, a unit too small for millions), with the claims checked against computations of this file
(a unit's output with its shuffle bypassed, multiply-adds counted by hooks on the real convolutions, the paper's
shuffle done by hand). The library sweep over every model and setting is tests/library/test_sentences_teaching.py."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from conftest import page_chart
from shufflenet_viz import weights
from shufflenet_viz.cost import dominance_caption
from shufflenet_viz.model import STAGE_OUT_CHANNELS, build_model
from shufflenet_viz.paper import TABLE1_MFLOPS
from shufflenet_viz.unit_diagram import figure2_name, shuffle_place_sentence, unit_lesson_text, unit_of

UNIT_PAGE, COST_PAGE, LESSON_PAGE = "pages/unit.py", "pages/cost.py", "pages/lesson.py"


@pytest.fixture(scope="module")
def shipped():
    models, problems = weights.load_all(weights.WEIGHTS_DIR)
    assert not problems, problems
    return models


def shuffle_runs(unit) -> bool:
    """Whether bypassing the unit's shuffle module changes its output on a random input."""
    x = torch.randn(1, unit.compress_conv.in_channels, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        kept = unit(x)
        shuffle, unit.shuffle = unit.shuffle, nn.Identity()
        try:
            bypassed = unit(x)
        finally:
            unit.shuffle = shuffle
    return not torch.equal(kept, bypassed)


def texts(at, kind: str) -> str:
    return " ".join(element.value for element in getattr(at, kind))


@pytest.mark.parametrize("name", ["cifar10_x0.5_g3_noshuffle_s0", "cifar10_x0.5_g1_s0"])
def test_unit_page_says_whether_and_where_the_shuffle_runs(app_with_link, sample_image_path, shipped, name):
    loaded = shipped[name]
    at = app_with_link(UNIT_PAGE, sample_image_path, {"model": loaded.label, "unit": "stage3.unit2"})
    assert not at.exception and at.selectbox(key="model").value == name
    unit = unit_of(loaded.model, "stage3.unit2")
    captions = texts(at, "caption")
    assert shuffle_place_sentence(unit) in captions
    assert not shuffle_runs(unit) and "This model shuffles" not in captions
    expected = "switched off" if unit.expand_conv.groups > 1 else "With g=1"
    assert expected in captions
    worked = texts(at, "markdown")
    assert "stage3.unit1 takes" in worked and "1 groups" not in worked
    groups = unit_of(loaded.model, "stage3.unit1").expand_conv.groups
    assert (f"{groups} groups)" if groups > 1 else "dense with g=1") in worked


def test_cost_page_reads_small_units_and_names_the_costlier_part(app_with_link, sample_image_path):
    at = app_with_link(COST_PAGE, sample_image_path, {"c": "16", "m": "16", "g": "8", "h": "1", "w": "1"})
    assert not at.exception and not at.error
    # Counted here: ResNet 1x1 + 3x3 + 1x1, ResNeXt with the 3x3 in 8 groups, ShuffleNet 1x1 GConvs + depthwise.
    resnet, resnext, shufflenet = 16 * 16 + 9 * 16 * 16 + 16 * 16, 16 * 16 + 9 * 16 * 2 + 16 * 16, 32 + 32 + 144
    assert {m.label: m.value for m in at.metric} == {"ResNet": f"{resnet:,}", "ResNeXt": f"{resnext:,}",
                                                     "ShuffleNet": f"{shufflenet:,}"}
    caption = texts(at, "caption")
    assert dominance_caption(16, 16, 8) in caption
    assert "2cm/g = 64 " in caption and "9m = 144" in caption and "the depthwise conv costs more" in caption
    assert "m = c/4" not in caption and "dominate" not in caption
    figure = page_chart(at, "cost_formulas")
    assert figure["layout"]["yaxis"]["title"]["text"] == "multiply-adds"
    assert figure["data"][0]["y"] == pytest.approx([resnet, resnext, shufflenet])


def _pointwise_share_by_hooks() -> float:
    """Share of the g=1 1x network's multiply-adds (224x224) in 1x1 convolutions, counted on its real layers."""
    model = build_model(1, 1.0, 1000).eval()
    counts = {"pointwise": 0, "all": 0}

    def count(module, _inputs, output):
        if isinstance(module, nn.Linear):
            counts["all"] += module.in_features * module.out_features
            return
        macs = output.numel() * module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
        counts["all"] += macs
        counts["pointwise"] += macs if module.kernel_size == (1, 1) else 0

    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            module.register_forward_hook(count)
    with torch.no_grad():
        model(torch.zeros(1, 3, 224, 224))
    return counts["pointwise"] / counts["all"]


def _toy_by_hand(channels: int, groups: int, shuffle: bool) -> int:
    """Outputs of two all-one 1x1 group convs (the paper's shuffle between them, or none) that hear every group."""
    per_group = channels // groups
    x = torch.eye(channels).reshape(channels, channels, 1, 1)
    weight = torch.ones(channels, per_group, 1, 1)
    x = F.conv2d(x, weight, groups=groups)
    if shuffle:
        x = x.reshape(channels, groups, per_group, 1, 1).transpose(1, 2).reshape(channels, channels, 1, 1)
    heard = F.conv2d(x, weight, groups=groups)[:, :, 0, 0] > 0
    return int(torch.stack([heard[g * per_group:(g + 1) * per_group].any(dim=0) for g in range(groups)])
               .all(dim=0).sum())


def _widths_by_search(budget_channels: int = 144, side: int = 28) -> list[int]:
    """For each g of Table 1, the widest c (its bottleneck c/4 split into g groups) whose ShuffleNet unit costs no
    more than the g=1 unit of `budget_channels` channels, found by trying every width."""
    def cost(c: int, g: int) -> float:
        m = c // 4
        return side * side * (2 * c * m / g + 9 * m)

    budget = cost(budget_channels, 1)
    return [max(c for c in range(4 * g, 2000, 4 * g) if cost(c, g) <= budget) for g in STAGE_OUT_CHANNELS]


def test_every_lesson_step_says_what_is_computed(app_with_link, sample_image_path, cifar_pair):
    at = app_with_link(LESSON_PAGE, sample_image_path, {"step": "1"})
    assert not at.exception
    assert f"**{_pointwise_share_by_hooks():.0%}**" in texts(at, "markdown")
    assert _pointwise_share_by_hooks() > 0.5  # the step's title: "1x1 convolutions dominate"
    at.button(key="lesson_next").click().run()
    dense, grouped = nn.Conv2d(12, 12, 1), nn.Conv2d(12, 12, 1, groups=3)
    assert grouped.weight.numel() * 3 == dense.weight.numel() and "costs a third" in texts(at, "markdown")
    at.button(key="lesson_next").click().run()
    assert {m.label: m.value for m in at.metric} == {"Output channels that hear every group": "0 of 12"}
    at.button(key="lesson_next").click().run()
    shuffled, without = _toy_by_hand(12, 3, True), _toy_by_hand(12, 3, False)
    step4 = texts(at, "markdown")
    assert f"{shuffled} of 12 output channels, against {without} without" in step4
    assert "In this toy (C = 12 channels in g = 3 groups of 4)" in step4 and "at least g channels" in step4
    at.segmented_control(key="lesson_shuffle_view").set_value("figure1").run()
    layout = page_chart(at, "lesson_figure1")["layout"]
    assert layout["yaxis"]["ticktext"][2] == "no shuffle" and layout["yaxis2"]["ticktext"][2] == "shuffle"
    at.button(key="lesson_next").click().run()
    unit = unit_of(cifar_pair[1].model, "stage2.unit2")
    assert shuffle_runs(unit)
    assert page_chart(at, "lesson_unit")["layout"]["title"]["text"].endswith(": the paper's Figure 2b")
    assert unit_lesson_text(unit) in texts(at, "markdown")
    at.button(key="lesson_next").click().run()
    step6 = texts(at, "markdown")
    widths = _widths_by_search()
    assert widths == sorted(widths) and ", ".join(f"g={g}: **{c}**" for g, c in zip(STAGE_OUT_CHANNELS, widths)) \
        in step6
    assert ", ".join(str(TABLE1_MFLOPS[g]) for g in STAGE_OUT_CHANNELS) in step6
    at.button(key="lesson_next").click().run()
    assert [s.value.split(":")[0] for s in at.subheader] == [m.label for m in cifar_pair]
    assert f"switching off the shuffle in the trained {cifar_pair[1].label}" in texts(at, "markdown")


def test_lesson_unit_step_without_shuffle(app_with_link, sample_image_path, shipped):
    right = "cifar10_x0.5_g3_noshuffle_s0"
    at = app_with_link(LESSON_PAGE, sample_image_path,
                       {"step": "5", "left_model": "cifar10_x0.5_g3_s0", "right_model": right})
    assert not at.exception
    unit = unit_of(shipped[right].model, "stage2.unit2")
    assert not shuffle_runs(unit)
    title = page_chart(at, "lesson_unit")["layout"]["title"]["text"]
    assert title.endswith(f": {figure2_name(unit)}") and title.endswith("with the shuffle switched off")
    text = texts(at, "markdown")
    assert unit_lesson_text(unit) in text and "This model shuffles" not in text


def test_lesson_unit_step_with_the_official_layout(with_imagenet, app_with_link, sample_image_path,
                                                   imagenet_models):
    right = "imagenet_official_g8_w0.5"
    at = app_with_link(LESSON_PAGE, sample_image_path,
                       {"step": "5", "left_model": "imagenet_official_g3_w0.5", "right_model": right})
    assert not at.exception
    unit = unit_of(imagenet_models[right].model, "stage2.unit2")
    ran = []
    handles = [getattr(unit, part).register_forward_hook(lambda *_, part=part: ran.append(part))
               for part in ("depthwise_bn", "shuffle")]
    try:
        assert shuffle_runs(unit)
    finally:
        for handle in handles:
            handle.remove()
    assert ran[:2] == ["depthwise_bn", "shuffle"]  # the shuffle runs right after the depthwise conv's BN
    title = page_chart(at, "lesson_unit")["layout"]["title"]["text"]
    assert "the paper's Figure 2b" not in title and title.endswith("official code's order: the shuffle after the "
                                                                   "depthwise conv")
    text = texts(at, "markdown")
    assert unit_lesson_text(unit) in text and "after the 3x3 depthwise conv" in text
