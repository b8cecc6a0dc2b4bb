"""flow.py: the shuffle animation's positions, structural connectivity read from real modules, the measured
channel-to-channel influence (exactly zero across groups without shuffle, everywhere after one shuffle),
and the shuffle ablation helpers."""

import numpy as np
import pytest
import torch

from shufflenet_viz import flow
from shufflenet_viz.data import CIFAR10_CLASSES, ImageSet
from shufflenet_viz.model import (STAGE_NAMES, ChannelShuffle, build_model, inverse_permutation, shuffle_permutation,
                                  with_shuffle)
from shufflenet_viz.preprocess import Preprocessing, to_model_input
from shufflenet_viz.weights import LoadedModel, freeze


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
    assert "output group 1 gets input groups 1 and 2" in mixing[1].reason
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


def test_measure_ablation_counts_correct_predictions():
    model = live_random_model(3)
    loaded = LoadedModel("random_g3", model, Preprocessing.cifar(64), CIFAR10_CLASSES, {})
    generator = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (40, 3, 32, 32), dtype=torch.uint8, generator=generator)
    data = ImageSet(images, torch.arange(40) % 10)
    result = flow.measure_ablation(loaded, data, count=20)
    subset = data.subset(20, seed=0)
    for model_, accuracy in ((model, result.with_shuffle), (with_shuffle(model, False), result.without_shuffle)):
        with torch.no_grad():
            predicted = model_(to_model_input(subset.images, loaded.preprocessing)).argmax(1)
        assert accuracy == pytest.approx(float((predicted == subset.labels).float().mean()), abs=1e-4)
    assert result.images.startswith("20 CIFAR-10 test images")
