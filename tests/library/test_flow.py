"""flow: the shuffle animation's positions, structural connectivity read from real modules, the measured
channel-to-channel influence (exactly zero across groups without shuffle, everywhere after one shuffle),
and the shuffle ablation helpers."""

import copy

import numpy as np
import pytest
import torch

from shufflenet_viz import flow
from shufflenet_viz.copies import with_shuffle
from shufflenet_viz.model import (STAGE_NAMES, ChannelShuffle, build_model, channel_group_index, inverse_permutation,
                                  shuffle_permutation)
from shufflenet_viz.weights import freeze


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One intra-op thread: on a busy 2-core machine two threads wait on each other (several times slower)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def live_random_model(groups: int) -> torch.nn.Module:
    """A randomly initialised eval model whose residual branches are not zeroed (so they carry influence)."""
    torch.manual_seed(groups)
    model = build_model(groups, num_classes=10)
    for unit in model.units():
        torch.nn.init.normal_(unit.expand_bn.weight, 1.0, 0.2)
    return freeze(model)


@pytest.fixture(scope="module", params=["random", "shipped"])
def g3_model(request):
    """A g=3 model: randomly initialised, and the shipped trained one (skipped where it is not available)."""
    if request.param == "random":
        return live_random_model(3)
    return request.getfixturevalue("cifar_pair")[1].model


@pytest.fixture(scope="module")
def picture_input():
    torch.manual_seed(0)
    return torch.randn(1, 3, 64, 64)


# --- the animation ------------------------------------------------------------------------------------------

def test_animation_frames_and_final_positions_equal_the_permutation():
    animation = flow.shuffle_animation(60, 3, steps_between=6)
    assert len(animation.positions) == 4 + 3 * 6
    assert animation.key_frames == (0, 7, 14, 21)
    permutation = shuffle_permutation(60, 3)
    assert torch.equal(animation.permutation, permutation)
    first, grid, transposed, last = (animation.positions[k] for k in animation.key_frames)
    assert np.array_equal(first, np.stack([np.arange(60), np.zeros(60)], axis=1))
    # Output slot k holds input channel perm[k]: in the last frame that channel sits at x = k on the row.
    for slot, channel in enumerate(permutation.tolist()):
        assert tuple(last[channel]) == (slot, 0)
    # Grid: channel i in row i // 20, column i % 20; transposed: row and column swap.
    assert np.array_equal(grid[:, 1], -2 - np.arange(60) // 20)
    assert np.array_equal(np.diff(grid[:20, 0]), np.ones(19))
    assert np.array_equal(transposed[:, 1], -2 - np.arange(60) % 20)
    assert np.array_equal(transposed[:, 0] - transposed[0, 0], np.arange(60) // 20)
    # In-between frames move each channel steadily from one key position to the next.
    xs = np.array([p[1, 0] for p in animation.positions[14:22]])  # channel 1: from x = 28.5 to slot 3
    assert xs[0] == 28.5 and xs[-1] == 3 and np.all(np.diff(xs) < 0)
    assert [animation.stage_of_frame(f) for f in (0, 1, 7, 8, 21)] == [0, 1, 1, 2, 3]
    assert list(animation.group_of_channel[[0, 19, 20, 59]]) == [0, 0, 1, 2]


@pytest.mark.parametrize("channels, groups", [(12, 3), (96, 8), (10, 1), (8, 8)])
def test_animation_ends_in_the_shuffle_order_for_other_settings(channels, groups):
    animation = flow.shuffle_animation(channels, groups, steps_between=2)
    assert len(animation.positions) == 4 + 3 * 2
    slots = animation.positions[-1][:, 0].astype(int)
    assert torch.equal(torch.from_numpy(slots), inverse_permutation(shuffle_permutation(channels, groups)))


def test_impossible_settings_give_a_message_not_an_exception():
    message = flow.shuffle_setting_problem(61, 3)
    assert message.startswith("61 channels cannot be split into 3 equal groups")
    assert "60 or 63" in message
    assert "between 1 and 8 groups" in flow.shuffle_setting_problem(24, 9)
    assert "between 1 and 96 channels (got 97)" in flow.shuffle_setting_problem(97, 1)
    assert flow.shuffle_setting_problem(95, 7).endswith("(e.g. 91).")  # 98 would exceed the limit
    assert flow.shuffle_setting_problem(60, 3) is None and flow.shuffle_setting_problem(96, 8) is None
    with pytest.raises(ValueError, match="61 channels cannot be split"):
        flow.shuffle_animation(61, 3)


def test_permutation_text():
    text = flow.describe_permutation(shuffle_permutation(60, 3), shown=4)
    assert text == "out[0] \u2190 in[0], out[1] \u2190 in[20], out[2] \u2190 in[40], out[3] \u2190 in[1], \u2026"
    assert flow.describe_permutation(torch.arange(3)).endswith("out[2] \u2190 in[2]")


# --- connectivity as pure functions -------------------------------------------------------------------------

def test_group_conv_shuffle_and_composition():
    conv = flow.group_conv_connectivity(6, 3, 3)  # in 6 (pairs), out 3 (one per group)
    assert conv.tolist() == [[True, True, False, False, False, False],
                             [False, False, True, True, False, False],
                             [False, False, False, False, True, True]]
    shuffle = flow.shuffle_connectivity(6, 2)  # perm = 0, 3, 1, 4, 2, 5
    assert [row.nonzero().item() for row in shuffle] == [0, 3, 1, 4, 2, 5]
    two_convs = flow.compose(flow.group_conv_connectivity(6, 6, 2), flow.group_conv_connectivity(6, 6, 2))
    assert flow.is_block_diagonal(two_convs, 2) and int(two_convs.sum()) == 18
    with_shuffle_between = flow.compose(flow.group_conv_connectivity(6, 6, 2), shuffle,
                                        flow.group_conv_connectivity(6, 6, 2))
    assert bool(with_shuffle_between.all())
    # compose applies the first layer first: (out of last, in of first)
    assert flow.compose(torch.ones(4, 6, dtype=torch.bool), torch.ones(2, 4, dtype=torch.bool)).shape == (2, 6)
    assert flow.group_level(conv, 3, 3).tolist() == [[2, 0, 0], [0, 2, 0], [0, 0, 2]]
    assert flow.reached_groups(conv, 3).tolist() == [[True, False, False], [False, True, False], [False, False, True]]


@pytest.mark.parametrize("layers", [2, 3, 4])
def test_stacked_group_convs_figure1(layers):
    without = flow.stacked_group_convs(12, 3, layers, shuffle=False)
    shuffled = flow.stacked_group_convs(12, 3, layers, shuffle=True)
    assert len(without.layer_names) == 2 * layers == len(without.reach)
    assert shuffled.layer_names[:4] == ("input", "GConv 1", "shuffle", "GConv 2")
    assert without.layer_names[2] == "no shuffle"
    own_group = torch.arange(12) // 4
    assert torch.equal(without.reach[-1], torch.nn.functional.one_hot(own_group, 3).bool())
    assert without.outputs_hearing_every_group == 0
    assert shuffled.outputs_hearing_every_group == 12
    # Right after the first shuffle each channel still carries one group: the second conv mixes them.
    assert int(shuffled.reach[2].sum()) == 12


def test_applied_permutation_is_what_the_module_does():
    assert torch.equal(flow.applied_permutation(ChannelShuffle(3), 60), shuffle_permutation(60, 3))
    assert torch.equal(flow.applied_permutation(ChannelShuffle(3, enabled=False), 60), torch.arange(60))
    assert torch.equal(flow.applied_permutation(ChannelShuffle(1), 36), torch.arange(36))


# --- structure of the real network --------------------------------------------------------------------------

def test_structure_block_diagonal_without_shuffle_and_full_after_one_shuffle(g3_model):
    unshuffled = with_shuffle(g3_model, False)
    for stage in STAGE_NAMES:
        stride1 = [step.connectivity for step in flow.stage_reachability(unshuffled, stage, 1)]
        assert len(stride1) == len(flow.stage_units(g3_model, stage)) - 1
        assert all(flow.is_block_diagonal(c, 3) for c in stride1)
        assert all(int(c.sum()) == c.numel() // 3 for c in stride1)  # exactly the three diagonal blocks
        shuffled = flow.stage_reachability(g3_model, stage, 1)
        assert bool(shuffled[0].connectivity.all())  # one unit, one shuffle: every channel reaches every channel
        assert [s.connected_share for s in shuffled] == [1.0] * len(shuffled)


def test_stride2_concatenation_straddles_groups(g3_model):
    unshuffled = with_shuffle(g3_model, False)
    first = flow.stage_reachability(unshuffled, "stage3", 0)[0].connectivity  # (480, 240)
    assert first.shape == (480, 240)
    # branch channel 100 (branch group 2), pooled input channels 10 and 160 (input groups 1 and 3)
    assert flow.reached_groups(first, 3)[[100, 250, 400]].tolist() == [[False, True, False], [True, False, False],
                                                                       [False, False, True]]
    assert (flow.group_level(first, 3, 3) > 0).tolist() == [[True, True, False], [True, False, True],
                                                           [False, True, True]]
    mixing = flow.mixing_without_shuffle(g3_model)
    assert [m.unit_name for m in mixing] == ["stage2.unit1", "stage3.unit1", "stage4.unit1"]
    assert "not grouped (groups=1)" in mixing[0].reason and "reads all 24 input channels" in mixing[0].reason
    assert "concatenation" in mixing[1].reason
    # The stride-2 output keeps every channel in its source group; the next unit's 1x1 GConv groups straddle them.
    assert "its group 1 reads channels from input groups 1 and 2" in mixing[1].reason
    assert "[branch (240 ch) | pooled input (240 ch)]" in mixing[1].reason
    assert [m.kind for m in mixing] == ["ungrouped", "concatenation", "concatenation"]
    assert flow.mixing_without_shuffle(live_random_model(1)) == []


def test_g1_is_full_from_the_first_unit():
    model = live_random_model(1)
    for stage in STAGE_NAMES:
        assert all(bool(s.connectivity.all()) for s in flow.stage_reachability(model, stage, 1))
    assert flow.stage_points(model, "stage2") == ["stage2 input", "output of stage2.unit1", "output of stage2.unit2",
                                                  "output of stage2.unit3"]


def test_measured_influence_never_exceeds_the_structure(picture_input):
    model = with_shuffle(live_random_model(3), False)
    influence = flow.measure_influence(model, picture_input, "stage3", 0, units=2)
    structure = flow.stage_reachability(model, "stage3", 0)[1].connectivity
    assert influence.matrix.shape == (480, 240) == tuple(structure.shape)
    assert not np.any((influence.matrix > 0) & ~structure.numpy())
    assert influence.start == "stage3 input" and influence.end == "output of stage3.unit2"


# --- measured influence ---------------------------------------------------------------------------------

@pytest.mark.parametrize("stage", ["stage2", "stage4"])
def test_influence_is_exactly_zero_across_groups_without_shuffle(g3_model, picture_input, stage):
    unshuffled = with_shuffle(g3_model, False)
    for units in (1, None):  # one unit, and all the stride-1 units of the stage
        influence = flow.measure_influence(unshuffled, picture_input, stage, 1, units)
        totals = influence.group_totals
        assert influence.cross_group_share == 0.0
        assert np.all(totals[~np.eye(3, dtype=bool)] == 0.0)
        assert np.all(np.diag(totals) > 0)


@pytest.mark.parametrize("stage", ["stage2", "stage4"])
def test_influence_reaches_every_group_after_one_shuffled_unit(g3_model, picture_input, stage):
    influence = flow.measure_influence(g3_model, picture_input, stage, 1, 1)
    assert np.all(influence.group_totals > 0)
    assert 0 < influence.cross_group_share < 1
    assert influence.end == f"output of {stage}.unit2"


def test_influence_matrix_matches_one_backward_per_output_channel(picture_input):
    model = live_random_model(3)
    unit = model.stage4.unit2
    activation = flow.activation_at(model, picture_input, "stage4", 1)
    matrix = flow.influence_matrix([unit], activation)
    for out_channel in (0, 321, 959):
        x = activation.clone().requires_grad_(True)
        grad, = torch.autograd.grad(unit(x)[0, out_channel].mean(), x)
        # The measurement folds batch norm into the convolutions: equal up to float32 rounding.
        expected = grad.abs().sum(dim=(-2, -1))[0].double().numpy()
        assert np.allclose(matrix[out_channel], expected, rtol=1e-4, atol=1e-6 * expected.max())
        assert np.array_equal(matrix[out_channel] == 0, expected == 0)


def test_measurement_leaves_the_shared_model_as_it_was(g3_model, picture_input):
    before = {k: v.clone() for k, v in g3_model.state_dict().items()}
    with torch.no_grad():  # a caller inside no_grad still gets gradients
        flow.measure_influence(g3_model, picture_input, "stage2", 1, 1)
    assert all(torch.equal(before[k], v) for k, v in g3_model.state_dict().items())
    assert not any(p.requires_grad for p in g3_model.parameters())
    assert not g3_model.training and g3_model.config.shuffle
    assert all(m.enabled for m in g3_model.modules() if isinstance(m, ChannelShuffle))
    assert not any(m._forward_hooks or m._forward_pre_hooks or m._backward_hooks for m in g3_model.modules())
    with pytest.raises(ValueError, match="eval-mode"):
        flow.influence_matrix([torch.nn.BatchNorm2d(3).train()], torch.randn(1, 3, 2, 2))


def test_activation_at_equals_the_forward_pass(picture_input):
    model = live_random_model(3)
    with torch.no_grad():
        expected = model.stage3(model.stage2(model.stem(picture_input)))
    assert torch.equal(flow.activation_at(model, picture_input, "stage4", 0), expected)
    assert not flow.activation_at(model, picture_input, "stage4", 0).requires_grad


def test_cross_group_share_and_its_text():
    matrix = np.array([[1.0, 0, 3], [0, 2, 0], [0, 0, 4]])
    assert flow.cross_group_share(matrix, 3) == pytest.approx(3 / 10)
    assert np.isnan(flow.cross_group_share(np.zeros((3, 3)), 3))
    assert [flow.format_share(s) for s in (0.0, 0.00026, 0.3, float("nan"))] == ["0%", "0.026%", "30.0%", "n/a"]


# --- the shuffle ablation ----------------------------------------------------------------------------------

def test_without_shuffle_is_a_copy(cifar_pair):
    g3 = cifar_pair[1]
    off = flow.without_shuffle(g3)
    assert off.model is not g3.model and not off.model.config.shuffle and g3.model.config.shuffle
    assert all(not m.enabled for m in off.model.modules() if isinstance(m, ChannelShuffle))
    assert off.label.endswith("shuffle off)") and off.classes == g3.classes


def test_manifest_ablation_reads_the_training_numbers(cifar_pair):
    g3 = cifar_pair[1]
    stored = g3.entry["metrics"]["ablation"]
    numbers = flow.manifest_ablation(g3)
    assert (numbers.with_shuffle, numbers.without_shuffle) == (stored["accuracy_with_shuffle"],
                                                               stored["accuracy_without_shuffle"])
    assert numbers.images == stored["images"]
    assert flow.manifest_ablation(type(g3)(g3.name, g3.model, g3.preprocessing, g3.classes, {"metrics": {}})) is None


# --- both unit layouts --------------------------------------------------------------------------------------

def live_official_model(groups: int) -> torch.nn.Module:
    """A random official-layout ImageNet-shaped model (0.5x) with live residual branches."""
    torch.manual_seed(10 + groups)
    model = build_model(groups, 0.5, 1000, layout="official")
    for unit in model.units():
        torch.nn.init.normal_(unit.expand_bn.weight, 1.0, 0.2)
    return freeze(model)


def probe_connectivity(unit: torch.nn.Module, size: int = 2) -> np.ndarray:
    """(C_out, C_in) connectivity found by running the unit, independently of `flow.unit_connectivity`: a copy with
    positive weights, batch norm and ReLU as identities gets one input per channel (1 on that channel only); an
    output channel is connected to it when it comes out positive. The unit's own forward decides the order of its
    parts, where the shuffle sits and how a stride-2 output is concatenated."""
    probe = copy.deepcopy(unit)
    for name, module in list(probe.named_children()):
        if isinstance(module, (torch.nn.BatchNorm2d, torch.nn.ReLU)):
            setattr(probe, name, torch.nn.Identity())
        elif isinstance(module, torch.nn.Conv2d):
            module.weight.data = module.weight.data.abs() + 0.1
    channels = unit.compress_conv.in_channels
    with torch.no_grad():
        out = probe(torch.eye(channels)[:, :, None, None].expand(channels, channels, size, size).contiguous())
    return (out.sum(dim=(2, 3)) > 0).T.numpy()


def probe_span(units, probed: dict | None = None) -> list[np.ndarray]:
    """The probed connectivity from the first unit's input to each unit's output, composed with numpy; `probed`
    keeps each unit's probe (by id) for the next span."""
    probed = {} if probed is None else probed
    total, steps = None, []
    for unit in units:
        if id(unit) not in probed:
            probed[id(unit)] = probe_connectivity(unit).astype(np.float32)  # float: numpy multiplies it with BLAS
        link = probed[id(unit)]
        total = link if total is None else ((link @ total) > 0).astype(np.float32)
        steps.append(total.astype(bool))
    return steps


def independent_source_groups(first_unit, pattern_off: np.ndarray, groups: int, steps: int) -> np.ndarray:
    """Where each output channel came from, derived from the probed shuffle-off pattern of the first unit alone:
    a channel that hears one start channel (a pooled copy) belongs to that channel's group; any other channel of
    a stride-2 output belongs to its lane, the branch's channels cut into `groups` equal runs in the order they
    appear; a stride-1 output keeps its input's groups (the identity shortcut), as do the units after it."""
    rows, columns = pattern_off.shape
    column_groups = np.arange(columns) * groups // columns
    if first_unit.stride == 1:
        return np.arange(rows) * groups // rows
    labels = np.empty(rows, dtype=np.int64)
    single = pattern_off.sum(axis=1) == 1
    labels[single] = column_groups[pattern_off[single].argmax(axis=1)]
    branch = np.flatnonzero(~single)
    labels[branch] = np.arange(len(branch)) * groups // len(branch)
    return labels


@pytest.mark.parametrize("groups", [3, 8])
def test_official_layout_connectivity_equals_the_probed_forward(groups):
    model = live_official_model(groups)
    for name, unit in zip(model.unit_names(), model.units()):
        assert np.array_equal(flow.unit_connectivity(unit).numpy(), probe_connectivity(unit)), name
        moved = flow.moved_shuffle_unit(unit)
        assert moved.part_order().index("shuffle") < moved.part_order().index("depthwise_conv")
        assert np.array_equal(probe_connectivity(moved), probe_connectivity(unit)), name
    # The official stride-2 output puts the pooled input first: its first channels are copies of start channels.
    first = flow.unit_connectivity(model.stage3.unit1)
    assert first[:model.stage3.unit1.shortcut_channels].sum(dim=1).eq(1).all()


@pytest.mark.parametrize("layout", ["paper", "official"])
def test_moving_the_shuffle_across_the_depthwise_conv_keeps_the_function(layout):
    torch.manual_seed(0)
    model = freeze(build_model(3, 0.5, 1000, layout=layout))
    x = torch.randn(1, 3, 64, 64)
    for stage, after in (("stage2", 0), ("stage3", 0), ("stage3", 4), ("stage4", 3)):
        name, unit = flow.stage_units(model, stage)[after]
        check = flow.placement_check(name, unit, flow.activation_at(model, x, stage, after))
        assert check.same_connectivity and check.layout == layout
        assert check.max_output_difference <= 1e-5 * max(1.0, check.output_scale)
        assert check.moved_to == ("after the depthwise conv" if layout == "paper" else "before the depthwise conv")
        expected_map = "inverse" if layout == "official" else "the paper's (g, C/g)"
        assert expected_map in check.index_map and (check.groups_read > 0).all()
        assert flow.moved_shuffle_unit(flow.moved_shuffle_unit(unit)).part_order() == unit.part_order()


@pytest.mark.parametrize("layout, groups, stage, after", [
    ("paper", 3, "stage2", 0), ("paper", 3, "stage3", 0), ("paper", 3, "stage4", 2), ("paper", 1, "stage3", 0),
    ("official", 3, "stage2", 1), ("official", 3, "stage3", 0), ("official", 8, "stage4", 0),
    ("official", 8, "stage2", 0)])
def test_one_unit_influence_equals_the_full_jacobian(layout, groups, stage, after):
    torch.manual_seed(groups)
    model = build_model(groups, 0.5 if layout == "official" else 1.0, 10, layout=layout)
    for unit in model.units():
        torch.nn.init.normal_(unit.expand_bn.weight, 1.0, 0.2)
    model = freeze(model)
    for shuffled in (model, with_shuffle(model, False)):
        activation = flow.activation_at(shuffled, torch.randn(1, 3, 64, 64), stage, after)
        unit = flow.stage_units(shuffled, stage)[after][1]
        fast = flow.unit_influence(unit, activation)
        exact = flow.jacobian_influence([unit], activation)
        assert fast is not None and fast.shape == exact.shape
        assert np.allclose(fast, exact, rtol=1e-4, atol=1e-6 * exact.max())
        assert np.array_equal(fast == 0, exact == 0)


# --- issue 14, finding 1: flow from a stage's input, grouped by where channels came from --------------------

@pytest.mark.parametrize("stage", ["stage3", "stage4"])
def test_from_a_stage_input_the_shuffle_off_unit_crosses_no_group(g3_model, picture_input, stage):
    # Before: output channels were cut into 3 equal runs, which straddle [branch | pooled input]; the shipped
    # g=3 model on the cat showed 70.3% crossing with the shuffle off from the stage3 input. Now every output
    # channel is judged against the group it came from: with the shuffle off nothing crosses.
    unshuffled = with_shuffle(g3_model, False)
    off = flow.measure_influence(unshuffled, picture_input, stage, 0, 1)
    assert off.cross_group_share == 0.0
    on = flow.measure_influence(g3_model, picture_input, stage, 0, 1)
    assert 0 < on.cross_group_share < 1
    unit = flow.stage_units(g3_model, stage)[0][1]
    labels = independent_source_groups(unit, probe_connectivity(flow.stage_units(unshuffled, stage)[0][1]), 3, 1)
    assert np.array_equal(off.row_groups, labels)
    totals = off.group_totals
    assert np.all(totals[~np.eye(3, dtype=bool)] == 0) and np.all(np.diag(totals) > 0)


def test_source_groups_follow_the_layout():
    for layout in ("paper", "official"):
        model = build_model(3, 0.5, 1000, layout=layout)
        unit = model.stage3.unit1  # 120 in, 240 out: branch 120, pooled 120
        labels = flow.unit_source_groups(unit, channel_group_index(120, 3).numpy(), 3)
        pooled = np.repeat([0, 1, 2], 40)
        expected = np.r_[pooled, pooled] if layout == "official" else np.r_[np.repeat([0, 1, 2], 40), pooled]
        assert np.array_equal(labels, expected)
        assert flow.describe_source_groups(labels).startswith("0-39: group 1, 40-79: group 2")
    assert flow.cross_group_share(np.ones((2, 3)), 3, np.array([0, 2])) == pytest.approx(4 / 6)


# --- the settings grid: every option of every control on the Channel shuffle and Information flow pages ------

def paper_map(channels: int, groups: int) -> np.ndarray:
    """The paper's index map written out with numpy: a (g, C/g) grid read column by column."""
    return np.arange(channels).reshape(groups, channels // groups).T.ravel()


def test_channel_shuffle_grid_every_channel_and_group_count():
    """Section 1: every C in 1..96 and g in 1..8 the number inputs accept."""
    for channels in range(1, flow.MAX_ANIMATION_CHANNELS + 1):
        for groups in range(1, flow.MAX_ANIMATION_GROUPS + 1):
            problem = flow.shuffle_setting_problem(channels, groups)
            assert (problem is None) == (groups <= channels and channels % groups == 0), (channels, groups)
            if problem:
                continue
            expected = paper_map(channels, groups)
            permutation = shuffle_permutation(channels, groups)
            assert np.array_equal(permutation.numpy(), expected)
            final = flow.shuffle_animation(channels, groups, steps_between=1).positions[-1][:, 0].astype(int)
            assert np.array_equal(expected[final], np.arange(channels))  # channel perm[i] ends at slot i
            per_group = channels // groups
            distinct = [len({int(c) // per_group for c in expected[k * per_group:(k + 1) * per_group]})
                        for k in range(groups)]
            caption = flow.shuffle_mixing_caption(permutation, groups)
            if groups == 1:
                assert "nothing to exchange" in caption
            elif np.array_equal(expected, np.arange(channels)):  # C = g: one channel per group stays in place
                assert "is the identity" in caption and per_group == 1 and max(distinct) == 1
            elif min(distinct) == groups:
                assert f"from all {groups} groups" in caption and "only" not in caption
                assert per_group >= groups
            else:
                assert per_group < groups and min(distinct) == per_group
                low, high = min(distinct), max(distinct)
                assert f"from only {low if low == high else f'{low} to {high}'} of the {groups} groups" in caption


@pytest.mark.parametrize("layers", [2, 3, 4])
@pytest.mark.parametrize("groups", [2, 3, 4])
@pytest.mark.parametrize("per_group", [2, 3, 4])
def test_figure1_grid_every_slider_setting(layers, groups, per_group):
    """Section 2: every setting of the three sliders; the metrics and every sentence of the caption against sets
    of groups propagated channel by channel."""
    channels = groups * per_group
    own = [c // per_group for c in range(channels)]
    order = paper_map(channels, groups)

    def propagate(shuffle: bool) -> list[list[set]]:
        reach, after_conv = [{own[c]} for c in range(channels)], []
        for layer in range(layers):
            if layer and shuffle:
                reach = [reach[order[i]] for i in range(channels)]
            reach = [set().union(*(reach[i] for i in range(channels) if own[i] == own[j])) for j in range(channels)]
            after_conv.append(reach)
        return after_conv

    stacks = [flow.stacked_group_convs(channels, groups, layers, shuffle) for shuffle in (False, True)]
    caption = flow.figure1_caption(*stacks)
    plain, shuffled = propagate(False), propagate(True)
    every = [sum(len(r) == groups for r in result[-1]) for result in (plain, shuffled)]
    assert [s.outputs_hearing_every_group for s in stacks] == every
    assert caption.startswith(f"Without shuffle, {every[0]} of {channels} output channels hear every group, each "
                              f"only its own")
    heard = [len(r) for r in shuffled[1]]
    if min(heard) == groups:
        assert f"each output channel hears all {groups} groups." in caption
        assert "only when" not in caption
    else:
        assert f"each output channel hears {min(heard)} of the {groups} groups" in caption  # uniform here
        assert f"reads C/g = {per_group} channels" in caption and per_group < groups
        assert "every output channel hears all groups" not in caption
    if layers > 2:
        first_full = next((k + 1 for k, r in enumerate(shuffled) if all(len(s) == groups for s in r)), None)
        assert f"After all {layers} convolutions with shuffles, {every[1]} of {channels} hear every group" in caption
        assert (f"from GConv {first_full} on" in caption) == (first_full is not None)


def unit_models(cifar_models, imagenet):
    return list(cifar_models) + list(imagenet.values())


def test_channel_shuffle_grid_every_unit_of_every_model(cifar_pair, imagenet_models):
    """Section 3: every unit the selectbox offers, for every model the app loads (both layouts)."""
    for loaded in unit_models(cifar_pair, imagenet_models):
        groups, official = loaded.groups, loaded.model.config.layout == "official"
        for name, unit in zip(loaded.model.unit_names(), loaded.model.units()):
            channels = unit.mid_channels
            permutation = flow.applied_permutation(unit.shuffle, channels)
            if groups == 1:
                expected = np.arange(channels)
            elif official:  # (C/g, g) grid read column by column: the inverse of the paper's map
                expected = np.arange(channels).reshape(channels // groups, groups).T.ravel()
            else:
                expected = paper_map(channels, groups)
            assert np.array_equal(permutation.numpy(), expected), (loaded.name, name)
            parts = flow.describe_unit_parts(unit, mark="")
            assert ("3x3 DWConv" in parts.split("shuffle")[0]) == official, parts
            caption = flow.unit_shuffle_caption(permutation, groups, unit.shuffle.enabled)
            if groups == 1:
                assert caption.startswith("Identity (one group)")
                continue
            counts = np.zeros((groups, groups), dtype=int)
            for slot, source in enumerate(expected):
                counts[slot // (channels // groups), source // (channels // groups)] += 1
            rows = [", ".join(str(n) for n in row) for row in counts]
            assert (rows[0] in caption) and all(row in caption for row in rows)
            assert ("inverse" in caption) == official
            assert caption.endswith("every group hears every group.") == bool((counts > 0).all())


@pytest.fixture(scope="module", params=["cifar10", "imagenet"])
def grid_pair(request):
    """The model pairs the Information flow page is built for: CIFAR-10 g=1 / g=3 (shipped) and the official
    ImageNet g=3 / g=8 (from the mirror); inputs of 32 px keep the sweep fast (no claim depends on the size)."""
    if request.param == "cifar10":
        return request.getfixturevalue("cifar_pair")
    models = request.getfixturevalue("imagenet_models")
    return models["imagenet_official_g3_w0.5"], models["imagenet_official_g8_w0.5"]


def flow_views(pair):
    from ui import information_flow as ui_flow

    return ui_flow.flow_views(pair)


def test_information_flow_grid_every_stage_start_unit_and_span(grid_pair):
    """Every stage, every start point, every unit of the structure slider and both spans, for every view of the
    pair: the matrices, the counts and every claim of the captions against the probed forward passes."""
    views = flow_views(grid_pair)
    off_view = views[-1]
    models = {view.title: (next(m for m in grid_pair if m.name == view.name).model if view.shuffle else
                           with_shuffle(next(m for m in grid_pair if m.name == view.name).model, False))
              for view in views}
    unshuffled = {title: with_shuffle(model, False) for title, model in models.items()}
    torch.manual_seed(0)
    x = torch.randn(1, 3, 32, 32)
    grouped = models[off_view.title]
    probe_cache = {}
    mixing = flow.mixing_without_shuffle(grouped)
    for stage in STAGE_NAMES:
        for after, _ in enumerate(flow.stage_points(grouped, stage)):
            counts_by_step, probes = {}, {}
            for view in views:
                model, g = models[view.title], view.groups
                units = [unit for _, unit in flow.stage_units(model, stage)[after:]]
                steps = flow.stage_reachability(model, stage, after, g)
                probes[view.title] = probe_span(units, probe_cache)
                first_off = probe_span([getattr(unshuffled[view.title], stage)[after]], probe_cache)[0]
                labels = independent_source_groups(units[0], first_off, g, len(units))
                columns = np.arange(steps[0].connectivity.shape[1]) * g // steps[0].connectivity.shape[1]
                for index, (step, probed) in enumerate(zip(steps, probes[view.title])):
                    assert np.array_equal(step.connectivity.numpy(), probed), (view.title, stage, after, index)
                    assert np.array_equal(step.source_groups, labels)
                    heard = np.stack([probed[:, columns == k].any(axis=1) for k in range(g)], axis=1)
                    own_only = sum(heard[j].sum() == 1 and heard[j, labels[j]] for j in range(len(labels)))
                    counts = flow.reach_counts(step.connectivity, step.source_groups, g)
                    assert (counts.hear_every_group, counts.hear_own_group_only, counts.hear_one_channel,
                            counts.hear_every_channel) == (int(heard.all(axis=1).sum()), own_only,
                                                           int((probed.sum(axis=1) == 1).sum()),
                                                           int(probed.all(axis=1).sum()))
                    counts_by_step.setdefault(index, []).append((view.title, counts, units[0]))
            first_name, first_unit = flow.stage_units(grouped, stage)[after]
            for index, view_counts in counts_by_step.items():
                caption = flow.structure_caption(view_counts, off_view.title, first_name, index)
                for title, counts, _ in view_counts:
                    share = probes[title][index].mean()
                    if counts.hear_every_channel == counts.outputs:
                        assert f"{title}: all {counts.outputs} output channels hear every start channel." in caption
                    else:
                        assert (f"{title}: {counts.hear_every_group} of {counts.outputs} output channels hear all "
                                f"{counts.groups} groups") in caption
                        assert f"({share:.1%} of channel pairs connected)" in caption
                if index == 0 and first_unit.stride == 2:
                    for title, _, _ in view_counts:
                        pattern = probes[title][0]
                        single = pattern.sum(axis=1) == 1  # pooled copies: one start channel each
                        ceiling = (~single).sum() / len(pattern) + single.sum() / pattern.size
                        assert f"{ceiling:.1%} ({title})" in caption and pattern.mean() <= ceiling + 1e-12
                off = next(counts for title, counts, _ in view_counts if title == off_view.title)
                assert (f"{off_view.title}: every output channel hears only the group it came from." in caption) == (
                    off.hear_own_group_only == off.outputs)
            for units in (1, None):
                measured = {view.title: flow.measure_influence(models[view.title], x, stage, after, units,
                                                               view.groups) for view in views}
                for view in views:
                    result = measured[view.title]
                    structure = probes[view.title][-1 if units is None else 0]
                    assert not np.any((result.matrix > 0) & ~structure)
                    labels = result.row_groups
                    columns = np.arange(result.matrix.shape[1]) * view.groups // result.matrix.shape[1]
                    crossing = result.matrix[labels[:, None] != columns[None, :]].sum() / result.matrix.sum()
                    assert result.cross_group_share == pytest.approx(crossing, abs=1e-12)
                names = [name for name, _ in flow.stage_units(grouped, stage)[after:]][:units]
                on_title = next(v.title for v in views[:-1] if v.name == off_view.name)
                caption = flow.influence_caption(off_view.title, measured[off_view.title], on_title,
                                                 measured[on_title], flow.mixing_in_span(mixing, names))
                off_share = measured[off_view.title].cross_group_share
                assert (f"{off_view.title}: exactly 0%" in caption) == (off_share == 0)
                if off_share > 0:
                    assert f"{off_view.title}: {flow.format_share(off_share)} crosses even without the shuffle" \
                        in caption
                    # Something in the span must mix groups with the shuffle off: the probe says where.
                    assert flow.mixing_in_span(mixing, names), (stage, after, units)
