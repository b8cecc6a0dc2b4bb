"""The model against the paper: literal parameter counts, Table 1 structure, channel shuffle."""

import pytest
import torch

from shufflenet_viz.copies import with_shuffle
from shufflenet_viz.model import (STAGE_OUT_CHANNELS, STAGE_REPEATS, ChannelShuffle, ShuffleNetConfig, build_model,
                                  channel_shuffle, count_parameters, inverse_permutation, shuffle_permutation)

# Parameter counts with a 1000-class head (the reference implementations' numbers).
PAPER_PARAMETERS = {
    (1, 1.0): 1_531_936, (2, 1.0): 1_733_848, (3, 1.0): 1_865_728, (4, 1.0): 1_968_344, (8, 1.0): 2_434_768,
    (1, 0.5): 534_484, (3, 0.5): 718_324, (1, 0.25): 209_746, (3, 0.25): 305_902,
}


@pytest.mark.parametrize("groups,width", list(PAPER_PARAMETERS))
def test_parameter_counts_match_reference(groups, width):
    assert count_parameters(build_model(groups, width, 1000)) == PAPER_PARAMETERS[(groups, width)]


def test_table1_as_data():
    assert STAGE_REPEATS == (4, 8, 4)
    assert STAGE_OUT_CHANNELS == {1: (144, 288, 576), 2: (200, 400, 800), 3: (240, 480, 960),
                                  4: (272, 544, 1088), 8: (384, 768, 1536)}


@pytest.mark.parametrize("groups", [1, 2, 3, 4, 8])
def test_unit_structure_follows_the_paper(groups):
    model = build_model(groups, 1.0)
    assert model.stem.conv.out_channels == 24 and model.stem.conv.stride == (2, 2)
    assert model.unit_names()[0] == "stage2.unit1" and model.unit_names()[-1] == "stage4.unit4"
    assert len(model.units()) == 16
    expected_outputs = [c for c, repeats in zip(STAGE_OUT_CHANNELS[groups], STAGE_REPEATS) for _ in range(repeats)]
    for name, unit, out_channels in zip(model.unit_names(), model.units(), expected_outputs):
        first = name.endswith("unit1")
        assert unit.stride == (2 if first else 1)
        assert unit.compress_conv.out_channels == out_channels // 4  # bottleneck = 1/4 of the output
        # Stage 2's first 1x1 is not grouped; every other 1x1 is.
        assert unit.compress_conv.groups == (1 if name == "stage2.unit1" else groups)
        assert unit.expand_conv.groups == groups
        assert unit.depthwise_conv.groups == unit.depthwise_conv.in_channels
        assert unit.shuffle.groups == groups
    x = torch.randn(1, 3, 224, 224)
    assert model.forward_features(x).shape == (1, STAGE_OUT_CHANNELS[groups][2], 7, 7)


@pytest.mark.parametrize("groups,width", [(g, w) for g in (1, 2, 3, 4, 8) for w in (0.25, 0.5, 1.0, 1.5, 2.0)])
def test_every_group_and_width_builds_and_runs(groups, width):
    model = build_model(groups, width, num_classes=7).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 64, 64)).shape == (1, 7)


def test_no_inplace_ops_and_no_shared_activation_modules():
    model = build_model(3, 1.0)
    relus = [m for m in model.modules() if isinstance(m, torch.nn.ReLU)]
    assert relus and not any(m.inplace for m in relus)
    assert len({id(m) for m in relus}) == len(relus) == 1 + 2 * 16  # one per use: stem + 2 per unit


def test_invalid_configuration_is_refused():
    with pytest.raises(ValueError, match="groups"):
        ShuffleNetConfig(groups=5)
    with pytest.raises(ValueError, match="width"):
        ShuffleNetConfig(width=0)


@pytest.mark.parametrize("groups", [1, 2, 3, 4, 8])
def test_channel_shuffle_equals_textbook_formulations(groups):
    n, c, h, w = 2, groups * 5, 3, 4
    x = torch.randn(n, c, h, w)
    transpose = x.view(n, groups, c // groups, h, w).transpose(1, 2).contiguous().view(n, c, h, w)
    permute = x.view(n, groups, c // groups, h, w).permute(0, 2, 1, 3, 4).contiguous().view(n, c, h, w)
    assert torch.equal(channel_shuffle(x, groups), transpose)
    assert torch.equal(channel_shuffle(x, groups), permute)
    assert torch.equal(ChannelShuffle(groups)(x), transpose)
    perm = shuffle_permutation(c, groups)
    assert torch.equal(x[:, perm], transpose)
    assert torch.equal(channel_shuffle(x, groups)[:, inverse_permutation(perm)], x)


@pytest.mark.parametrize("inverse", [False, True])
def test_shuffle_keeps_a_channels_last_layout_and_its_values(inverse):
    # Attributions run a channels-last copy of the model: the shuffle must give the same channels without
    # converting the layout (and so must its gradient).
    x = torch.randn(2, 24, 5, 7)
    shuffle = ChannelShuffle(8, inverse=inverse)
    last = x.contiguous(memory_format=torch.channels_last).requires_grad_()
    shuffled = shuffle(last)
    assert shuffled.is_contiguous(memory_format=torch.channels_last) and not shuffled.is_contiguous()
    assert torch.equal(shuffled, shuffle(x)) and torch.equal(shuffled, x[:, shuffle.permutation(24)])
    weights = torch.randn(2, 24, 5, 7)
    (shuffled * weights).sum().backward()
    assert torch.equal(last.grad, weights[:, inverse_permutation(shuffle.permutation(24))])


def test_shuffle_permutation_literal():
    # 6 channels in 3 groups [0 1 | 2 3 | 4 5] -> grid rows (0 1) (2 3) (4 5) -> read column-wise.
    assert shuffle_permutation(6, 3).tolist() == [0, 2, 4, 1, 3, 5]
    assert inverse_permutation(torch.tensor([0, 2, 4, 1, 3, 5])).tolist() == [0, 3, 1, 4, 2, 5]


def test_g1_shuffle_is_identity():
    x = torch.randn(1, 8, 2, 2)
    assert torch.equal(channel_shuffle(x, 1), x)
    assert shuffle_permutation(8, 1).tolist() == list(range(8))


def test_indivisible_channels_raise_value_error_naming_c_and_g():
    with pytest.raises(ValueError, match=r"C=10.*g=3"):
        channel_shuffle(torch.randn(1, 10, 2, 2), 3)
    with pytest.raises(ValueError, match=r"C=10.*g=3"):
        shuffle_permutation(10, 3)


def test_with_shuffle_returns_a_switched_copy():
    model = build_model(3, 0.25, 10).eval()
    off = with_shuffle(model, False)
    assert all(m.enabled for m in model.modules() if isinstance(m, ChannelShuffle))
    assert not any(m.enabled for m in off.modules() if isinstance(m, ChannelShuffle))
    assert off.config.shuffle is False and model.config.shuffle is True
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert not torch.allclose(model(x), off(x))


# --- the two unit layouts: the paper's figure (and osmr) and the official code ----------------------------------

def test_official_shuffle_is_the_inverse_index_map():
    # Official code: reshape to (C/g, g) = rows (0 1 2) (3 4 5), transpose, flatten -> [0 2 4 1 3 5] read back.
    assert shuffle_permutation(6, 3, inverse=True).tolist() == [0, 3, 1, 4, 2, 5]
    paper, official = shuffle_permutation(12, 3), shuffle_permutation(12, 3, inverse=True)
    assert torch.equal(official, inverse_permutation(paper))
    x = torch.randn(2, 12, 3, 3)
    assert torch.equal(ChannelShuffle(3, inverse=True)(ChannelShuffle(3)(x)), x)
    assert torch.equal(ChannelShuffle(3, inverse=True)(x), x[:, official])
    assert ChannelShuffle(3, enabled=False, inverse=True).permutation(12).tolist() == list(range(12))


def test_layouts_place_the_shuffle_and_the_shortcut_as_published():
    paper, official = build_model(3, 0.5, 1000), build_model(3, 0.5, 1000, layout="official")
    assert paper.stage2.unit1.part_order()[2:5] == ("compress_relu", "shuffle", "depthwise_conv")
    assert official.stage2.unit1.part_order()[3:7] == ("depthwise_conv", "depthwise_bn", "shuffle", "expand_conv")
    # 0.5x g=3 stage 2 unit 1: 12 stem channels pooled, 108 made by the branch, bottleneck 120/4 = 30.
    unit = official.stage2.unit1
    assert (unit.mid_channels, unit.branch_channels, unit.shortcut_channels) == (30, 108, 12)
    assert (unit.shortcut_slice(), unit.branch_slice()) == (slice(0, 12), slice(12, 120))
    assert (paper.stage2.unit1.branch_slice(), paper.stage2.unit1.shortcut_slice()) == (slice(0, 108),
                                                                                         slice(108, 120))
    assert official.stage2.unit2.shortcut_slice() is None and official.stage2.unit2.branch_slice() == slice(0, 120)
    assert official.classifier.bias is None and paper.classifier.bias is not None
    assert official.config.name == "shufflenet_v1_g3_w0.5-official"


def test_the_official_stride2_output_puts_the_pooled_input_first():
    unit = build_model(3, 0.5, 1000, layout="official").eval().stage2.unit1
    x = torch.rand(1, 12, 8, 8)
    with torch.no_grad():
        out = unit(x)
    assert torch.allclose(out[:, unit.shortcut_slice()], torch.nn.functional.avg_pool2d(x, 3, 2, 1))


def test_official_layout_ablation_switches_the_same_module():
    model = build_model(8, 0.5, 1000, layout="official").eval()
    off = with_shuffle(model, False)
    assert [name for name, m in off.named_modules() if isinstance(m, ChannelShuffle)][0] == "stage2.unit1.shuffle"
    assert all(not m.enabled and m.inverse for m in off.modules() if isinstance(m, ChannelShuffle))
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert not torch.allclose(model(x), off(x))


def test_unknown_layout_is_refused():
    with pytest.raises(ValueError, match="layout must be one of"):
        build_model(3, 1.0, 10, layout="megvii")
