"""How information moves between channel groups: the channel shuffle, its structure and its measured effect.

Three views of one question, "which input channels can an output channel hear from?":

- the shuffle itself as positions of channels in an animation (row -> g x C/g grid -> transpose -> row);
- structure: boolean channel-to-channel connectivity, read from the real modules (conv groups, the
  permutation a `ChannelShuffle` applies, identity / average-pool shortcuts, add or concatenate), and
  composed unit by unit;
- measurement on an image: |d mean(out_j) / d in_i| summed over space, from the Jacobian of a unit or
  a run of units taken on a detached copy of the activation (the shared model is never touched).

Connectivity matrices are (out_channels, in_channels): entry [j, i] is True when output channel j can
receive information from input channel i. Channel groups are contiguous equal blocks, as the grouped
1x1 convolutions split them.
"""

from __future__ import annotations

import time
from copy import deepcopy
from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np
import torch
from torch import nn
from torch.func import jacrev
from torch.nn.utils.fusion import fuse_conv_bn_eval

from .model import STAGE_NAMES, ChannelShuffle, ShuffleNetV1, ShuffleUnit, inverse_permutation, shuffle_permutation
from .weights import LoadedModel, freeze

# The animation of the shuffle stays legible on a projector up to this many channels.
MAX_ANIMATION_CHANNELS = 96
MAX_ANIMATION_GROUPS = 8
ANIMATION_STAGES: tuple[str, ...] = (
    "1. channels in a row",
    "2. reshape into g rows of C/g",
    "3. transpose: C/g rows of g",
    "4. flatten back: the shuffled row",
)
# Rows between the channel row (y = 0) and the top row of the grids, so the grids never cover the row.
_GRID_TOP = -2.0

# Zhang et al. 2017, Table 3: ImageNet top-1 error of ShuffleNet 1x (g=3), each variant trained on its own.
PAPER_TABLE3_G3 = {
    "model": "ShuffleNet 1x (g=3)",
    "error_with_shuffle": 0.326,
    "error_without_shuffle": 0.345,
    "source": "Zhang et al. 2017, Table 3: ImageNet top-1 error, each variant trained from scratch",
}


# ---------------------------------------------------------------------------------------------------
# The shuffle as an animation
# ---------------------------------------------------------------------------------------------------

def shuffle_setting_problem(channels: int, groups: int) -> str | None:
    """Why `channels` channels cannot be shown shuffled in `groups` groups, or None when they can."""
    if not 1 <= groups <= MAX_ANIMATION_GROUPS:
        return f"Pick between 1 and {MAX_ANIMATION_GROUPS} groups (got {groups})."
    if not groups <= channels <= MAX_ANIMATION_CHANNELS:
        return (f"Pick between {groups} and {MAX_ANIMATION_CHANNELS} channels (got {channels}); more would not "
                f"be legible.")
    if channels % groups:
        lower = channels - channels % groups
        upper = lower + groups
        options = " or ".join(str(c) for c in (lower, upper) if groups <= c <= MAX_ANIMATION_CHANNELS)
        return (f"{channels} channels cannot be split into {groups} equal groups: the shuffle reshapes them "
                f"into a {groups} x C/{groups} grid, so C must be a multiple of {groups} (e.g. {options}).")
    return None


@dataclass(frozen=True)
class ShuffleAnimation:
    """Positions of every channel in every frame of the shuffle animation.

    `positions[f][i]` is the (x, y) of input channel i in frame f; `key_frames[k]` is the frame index of
    stage k of `ANIMATION_STAGES`, and the frames between two key frames move the channels in between.
    """

    channels: int
    groups: int
    positions: tuple[np.ndarray, ...]
    key_frames: tuple[int, ...]
    permutation: torch.Tensor

    @property
    def group_of_channel(self) -> np.ndarray:
        """The input group of each channel (what colours it)."""
        return np.arange(self.channels) // (self.channels // self.groups)

    def stage_of_frame(self, frame: int) -> int:
        """The key stage a frame shows or is moving towards."""
        return next(k for k, key in enumerate(self.key_frames) if frame <= key)


def _key_positions(channels: int, groups: int) -> list[np.ndarray]:
    """(C, 2) positions of each channel at the four stages of `ANIMATION_STAGES`."""
    per_group = channels // groups
    index = np.arange(channels)
    row, column = index // per_group, index % per_group  # place in the g x C/g grid
    in_a_row = np.stack([index, np.zeros(channels)], axis=1)
    # Both grids are centred under the row of channels.
    grid = np.stack([column + (channels - per_group) / 2, _GRID_TOP - row], axis=1)
    transposed = np.stack([row + (channels - groups) / 2, _GRID_TOP - column], axis=1)
    slot = inverse_permutation(shuffle_permutation(channels, groups)).numpy()  # where channel i ends up
    shuffled = np.stack([slot, np.zeros(channels)], axis=1)
    return [in_a_row.astype(float), grid.astype(float), transposed.astype(float), shuffled.astype(float)]


def shuffle_animation(channels: int, groups: int, steps_between: int = 6) -> ShuffleAnimation:
    """The shuffle of `channels` channels in `groups` groups as frames: four key stages and
    `steps_between` in-between frames per move (eased, so each channel's path can be followed)."""
    problem = shuffle_setting_problem(channels, groups)
    if problem:
        raise ValueError(problem)
    keys = _key_positions(channels, groups)
    frames, key_frames = [keys[0]], [0]
    for start, end in zip(keys, keys[1:]):
        for step in range(1, steps_between + 1):
            t = step / (steps_between + 1)
            eased = t * t * (3 - 2 * t)  # smoothstep: channels start and stop gently
            frames.append(start + (end - start) * eased)
        frames.append(end)
        key_frames.append(len(frames) - 1)
    return ShuffleAnimation(channels, groups, tuple(frames), tuple(key_frames),
                            shuffle_permutation(channels, groups))


def describe_permutation(permutation: torch.Tensor, shown: int = 12) -> str:
    """The index map as text, `out[i] <- in[perm[i]]`, the first `shown` entries."""
    pairs = [f"out[{i}] \u2190 in[{int(p)}]" for i, p in enumerate(permutation[:shown])]
    more = ", \u2026" if permutation.numel() > shown else ""
    return ", ".join(pairs) + more


# ---------------------------------------------------------------------------------------------------
# Structure: boolean connectivity
# ---------------------------------------------------------------------------------------------------

def channel_groups(channels: int, groups: int) -> torch.Tensor:
    """Group index of each channel when `channels` are split into `groups` contiguous equal blocks."""
    if groups < 1 or channels % groups:
        raise ValueError(f"{channels} channels cannot be split into {groups} equal groups")
    return torch.arange(channels) // (channels // groups)


def equal_parts(channels: int, groups: int) -> np.ndarray:
    """Part index of each of `channels` channels cut into `groups` contiguous parts, equal when `groups` divides
    `channels` (a g=1 model's channels are cut this way to compare it with a grouped one)."""
    return np.arange(channels) * groups // channels


def group_conv_connectivity(in_channels: int, out_channels: int, groups: int) -> torch.Tensor:
    """(out, in) connectivity of a convolution with `groups` groups: each output channel reads every
    input channel of its own group and no other."""
    return channel_groups(out_channels, groups)[:, None] == channel_groups(in_channels, groups)[None, :]


def permutation_connectivity(permutation: torch.Tensor) -> torch.Tensor:
    """(C, C) connectivity of a channel permutation: output channel i is input channel perm[i]."""
    channels = permutation.numel()
    connectivity = torch.zeros(channels, channels, dtype=torch.bool)
    connectivity[torch.arange(channels), permutation] = True
    return connectivity


def shuffle_connectivity(channels: int, groups: int, inverse: bool = False) -> torch.Tensor:
    """(C, C) connectivity of the channel shuffle of `channels` channels in `groups` groups (`inverse`: the
    official code's (C/g, g) index map)."""
    return permutation_connectivity(shuffle_permutation(channels, groups, inverse))


def compose(*layers: torch.Tensor) -> torch.Tensor:
    """Connectivity of layers applied one after another (first layer first): (out of last, in of first)."""
    result = layers[0]
    for layer in layers[1:]:
        # float32 uses BLAS (integer matmul does not) and counts paths exactly far beyond any channel count.
        result = (layer.to(torch.float32) @ result.to(torch.float32)) > 0
    return result


def group_level(matrix: torch.Tensor | np.ndarray, out_groups: int, in_groups: int) -> np.ndarray:
    """Sum of `matrix` over each (output group, input group) block of contiguous equal groups."""
    values = np.asarray(matrix, dtype=np.float64)
    rows, columns = values.shape
    blocks = values.reshape(out_groups, rows // out_groups, in_groups, columns // in_groups)
    return blocks.sum(axis=(1, 3))


def label_totals(matrix: torch.Tensor | np.ndarray, row_labels: np.ndarray, column_labels: np.ndarray,
                 groups: int) -> np.ndarray:
    """(groups, groups) sums of `matrix` by (row label, column label): rows grouped by any labelling."""
    values = np.asarray(matrix, dtype=np.float64)
    totals = np.zeros((groups, groups))
    np.add.at(totals, (np.asarray(row_labels)[:, None], np.asarray(column_labels)[None, :]), values)
    return totals


def groups_read_after_shuffle(permutation: torch.Tensor, groups: int) -> np.ndarray:
    """(groups, groups) counts: how many channels group k of the next group convolution (the k-th run of C/g
    consecutive channels after the permutation) takes from each input group."""
    return group_level(permutation_connectivity(permutation), groups, groups)


def reached_groups(connectivity: torch.Tensor, in_groups: int) -> torch.Tensor:
    """(out, in_groups) bool: the input groups each output channel can receive information from."""
    owner = torch.from_numpy(equal_parts(connectivity.shape[1], in_groups))
    return torch.stack([connectivity[:, owner == group].any(dim=1) for group in range(in_groups)], dim=1)


def is_block_diagonal(connectivity: torch.Tensor, groups: int) -> bool:
    """True when no output channel is connected to an input channel of another group."""
    crossing = ~group_conv_connectivity(connectivity.shape[1], connectivity.shape[0], groups)
    return not bool((connectivity & crossing).any())


@dataclass(frozen=True)
class LayeredFlow:
    """Stacked group convolutions (the paper's Figure 1) as layers of channels and the links between them.

    `links[k]` is the (C, C) connectivity from layer k to layer k + 1; `reach[k]` is (C, groups) bool:
    the groups of the input layer that each channel of layer k can receive information from.
    """

    layer_names: tuple[str, ...]
    links: tuple[torch.Tensor, ...]
    reach: tuple[torch.Tensor, ...]
    groups: int
    shuffle: bool

    @property
    def channels(self) -> int:
        return self.links[0].shape[0]

    @property
    def convolutions(self) -> int:
        return sum(name.startswith("GConv") for name in self.layer_names)

    @property
    def outputs_hearing_every_group(self) -> int:
        """How many channels of the last layer receive information from every input group."""
        return int(self.reach[-1].all(dim=1).sum())

    def groups_heard_after(self, convolution: int) -> torch.Tensor:
        """How many input groups each channel hears after the `convolution`-th group convolution (1-based)."""
        return self.reach[self.layer_names.index(f"GConv {convolution}")].sum(dim=1)

    def first_convolution_where_all_hear_all(self) -> int | None:
        """The first group convolution after which every channel hears every input group, if any."""
        return next((k for k in range(1, self.convolutions + 1)
                     if bool((self.groups_heard_after(k) == self.groups).all())), None)


def stacked_group_convs(channels: int, groups: int, layers: int, shuffle: bool) -> LayeredFlow:
    """`layers` group convolutions of `channels` channels in `groups` groups, with a channel shuffle
    (or, for comparison, a pass-through) between consecutive ones."""
    if layers < 1:
        raise ValueError(f"need at least one layer, got {layers}")
    conv = group_conv_connectivity(channels, channels, groups)
    between = shuffle_connectivity(channels, groups) if shuffle else torch.eye(channels, dtype=torch.bool)
    names, links = ["input"], []
    for layer in range(1, layers + 1):
        if layer > 1:
            names.append("shuffle" if shuffle else "no shuffle")
            links.append(between)
        names.append(f"GConv {layer}")
        links.append(conv)
    reach = [reached_groups(torch.eye(channels, dtype=torch.bool), groups)]
    total = torch.eye(channels, dtype=torch.bool)
    for link in links:
        total = compose(total, link)
        reach.append(reached_groups(total, groups))
    return LayeredFlow(tuple(names), tuple(links), tuple(reach), groups, shuffle)


def _count_range(values: np.ndarray | torch.Tensor) -> str:
    low, high = int(np.min(np.asarray(values))), int(np.max(np.asarray(values)))
    return str(low) if low == high else f"{low} to {high}"


def shuffle_mixing_caption(permutation: torch.Tensor, groups: int) -> str:
    """What one shuffle does for the next group convolution, computed from the permutation: how many input
    groups each of its groups (C/g consecutive shuffled channels) reads."""
    channels = permutation.numel()
    if groups == 1:
        return "With one group there is nothing to exchange: the shuffle leaves every channel where it is."
    if torch.equal(permutation, torch.arange(channels)):
        return "This permutation is the identity: every group of the next group convolution reads only itself."
    distinct = (groups_read_after_shuffle(permutation, groups) > 0).sum(axis=1)
    per_group = channels // groups
    run = (f"each run of C/g = {per_group} consecutive channels after the shuffle (what one group of the next "
           f"group convolution reads)")
    if np.all(distinct == groups):
        return f"Watch the colours: they start as solid blocks and end interleaved, and {run} holds channels from " \
               f"all {groups} groups."
    return (f"Watch the colours: they start as solid blocks and end interleaved, but {run} holds channels from only "
            f"{_count_range(distinct)} of the {groups} groups: one shuffle reaches every group only when there are "
            f"at least g = {groups} channels per group.")


def figure1_caption(without: LayeredFlow, shuffled: LayeredFlow) -> str:
    """The claims under Figure 1, each computed from the two stacks shown."""
    channels, groups, layers = shuffled.channels, shuffled.groups, shuffled.convolutions
    last = without.groups_heard_after(layers)
    own = without.reach[-1][torch.arange(channels), torch.from_numpy(equal_parts(channels, groups))]
    sentences = [f"Without shuffle, {without.outputs_hearing_every_group} of {channels} output channels hear every "
                 f"group" + (", each only its own, however many convolutions are stacked" if bool((last == 1).all())
                             and bool(own.all()) else "") + "."]
    if layers >= 2:
        heard = shuffled.groups_heard_after(2)
        sentence = ("With one shuffle between two group convolutions each output channel hears "
                    + (f"all {groups} groups" if bool((heard == groups).all()) else
                       f"{_count_range(heard)} of the {groups} groups"))
        if int(heard.min()) < groups:
            permutation = shuffle_permutation(channels, groups)
            distinct = (groups_read_after_shuffle(permutation, groups) > 0).sum(axis=1)
            sentence += (f": after the shuffle each group of the second convolution reads C/g = "
                         f"{channels // groups} channels, from {_count_range(distinct)} different groups, so one "
                         f"shuffle reaches every group only when there are at least g = {groups} channels per group")
        sentences.append(sentence + ".")
    full = shuffled.first_convolution_where_all_hear_all()
    if layers > 2:
        sentences.append(f"After all {layers} convolutions with shuffles, {shuffled.outputs_hearing_every_group} of "
                         f"{channels} hear every group" + (f" (every channel does from GConv {full} on)." if full
                                                           else "."))
    return " ".join(sentences)


def applied_permutation(shuffle: nn.Module, channels: int) -> torch.Tensor:
    """The permutation a shuffle module really applies to `channels` channels, read by running it on
    channel indices (so a disabled or g=1 shuffle shows as the identity)."""
    with torch.no_grad():
        marked = torch.arange(channels, dtype=torch.float64).view(1, channels, 1, 1)
        return shuffle(marked).flatten().round().to(torch.int64)


def conv_connectivity(conv: nn.Conv2d) -> torch.Tensor:
    """(out, in) connectivity of a convolution module, from its groups and channel counts."""
    return group_conv_connectivity(conv.in_channels, conv.out_channels, conv.groups)


def _channelwise(module: nn.Module) -> bool:
    """True for the parts that treat every channel alone and keep its index (batch norm, ReLU, identity)."""
    return isinstance(module, (nn.BatchNorm2d, nn.ReLU, nn.Identity))


def unit_connectivity(unit: ShuffleUnit, shuffle: bool = True) -> torch.Tensor:
    """(C_out, C_in) connectivity of a ShuffleNet unit as its modules are built, in the unit's own part order:
    each convolution's groups, the shuffle's actual permutation (the identity when `shuffle` is False, as
    `with_shuffle(model, False)` makes it), then the channel-by-channel shortcut added (stride 1) or placed where
    the unit's layout concatenates it (stride 2)."""
    if not isinstance(unit.shortcut, (nn.Identity, nn.AvgPool2d)):
        raise ValueError(f"unexpected shortcut {unit.shortcut!r}: only channel-wise shortcuts are understood")
    in_channels = unit.compress_conv.in_channels
    branch = torch.eye(in_channels, dtype=torch.bool)
    for part in unit.part_order():
        module = getattr(unit, part)
        if isinstance(module, nn.Conv2d):
            branch = compose(branch, conv_connectivity(module))
        elif isinstance(module, ChannelShuffle):
            channels = branch.shape[0]
            permutation = applied_permutation(module, channels) if shuffle else torch.arange(channels)
            branch = compose(branch, permutation_connectivity(permutation))
        elif not _channelwise(module):
            raise ValueError(f"unexpected part {part}: {module!r}")
    shortcut = torch.eye(in_channels, dtype=torch.bool)  # identity or average pool: channel by channel
    if unit.stride == 1:
        return branch | shortcut
    connectivity = torch.zeros(unit.branch_channels + unit.shortcut_channels, in_channels, dtype=torch.bool)
    connectivity[unit.branch_slice()] = branch
    connectivity[unit.shortcut_slice()] = shortcut
    return connectivity


def part_label(module: nn.Module) -> str:
    """A short name of a unit's part as a diagram shows it (1x1 GConv, 3x3 DWConv, BN, ReLU, shuffle)."""
    if isinstance(module, nn.Conv2d):
        k = module.kernel_size[0]
        kind = ("DWConv" if module.groups == module.in_channels == module.out_channels else
                "GConv" if module.groups > 1 else "conv")
        stride = f" stride {module.stride[0]}" if module.stride[0] > 1 else ""
        return f"{k}x{k} {kind}{stride}"
    if isinstance(module, ChannelShuffle):
        return "shuffle"
    if isinstance(module, nn.BatchNorm2d):
        return "BN"
    return type(module).__name__


def describe_unit_parts(unit: ShuffleUnit, mark: str = "**") -> str:
    """The unit's branch in forward order, the shuffle marked: e.g. '1x1 GConv -> BN -> ReLU -> **shuffle** -> ...'."""
    names = [part_label(getattr(unit, part)) for part in unit.part_order()]
    return " \u2192 ".join(f"{mark}{name}{mark}" if part == "shuffle" else name
                           for part, name in zip(unit.part_order(), names))


def shuffle_neighbours(unit: ShuffleUnit) -> tuple[str, str]:
    """The parts right before and right after the shuffle, as 'first 1x1 GConv + BN + ReLU' style text."""
    order = list(unit.part_order())
    at = order.index("shuffle")
    before = [part_label(getattr(unit, p)) for p in order[:at]]
    after = [part_label(getattr(unit, p)) for p in order[at + 1:]]
    # The nearest convolution on each side names the place; the channel-wise parts in between follow it.
    conv_before = max(i for i, p in enumerate(order[:at]) if isinstance(getattr(unit, p), nn.Conv2d))
    conv_after = min(i for i, p in enumerate(order[at + 1:]) if isinstance(getattr(unit, p), nn.Conv2d))
    return " + ".join(before[conv_before:]), " + ".join(after[:conv_after + 1])


def index_map_name(permutation: torch.Tensor, groups: int) -> str:
    """Which index map a permutation is: the paper's (g, C/g) reshape, its inverse, the identity, or another."""
    channels = permutation.numel()
    if torch.equal(permutation, torch.arange(channels)):
        return "the identity"
    if torch.equal(permutation, shuffle_permutation(channels, groups)):
        return "the paper's (g, C/g) index map"
    if torch.equal(permutation, shuffle_permutation(channels, groups, inverse=True)):
        return "the official code's (C/g, g) index map, the inverse of the paper's"
    return "a permutation that is neither the paper's index map nor its inverse"


def unit_shuffle_caption(permutation: torch.Tensor, groups: int, shuffle_enabled: bool) -> str:
    """What a real unit's shuffle does for its next 1x1 GConv, computed from the permutation it applies."""
    channels = permutation.numel()
    if torch.equal(permutation, torch.arange(channels)):
        why = "one group" if groups == 1 else ("the shuffle is switched off in this model" if not shuffle_enabled
                                               else "this permutation leaves every channel in place")
        return f"Identity ({why}): every line is straight, each channel stays where it is."
    counts = groups_read_after_shuffle(permutation, groups).astype(int)
    if (counts == counts[0]).all():
        reads = (f"each of the {groups} groups of the next 1x1 GConv reads "
                 f"{', '.join(str(n) for n in counts[0])} channels from groups 1 to {groups}")
    else:
        reads = (f"groups 1 to {groups} of the next 1x1 GConv read "
                 + " / ".join(", ".join(str(n) for n in row) for row in counts)
                 + f" channels from groups 1 to {groups}")
    every = bool((counts > 0).all())
    return (f"Shuffled with {index_map_name(permutation, groups)}: {reads}, so "
            + ("every group hears every group." if every else
               f"{int((counts > 0).all(axis=1).sum())} of {groups} groups hear every group."))


# ---------------------------------------------------------------------------------------------------
# Where the shuffle sits: the two published placements compute the same function
# ---------------------------------------------------------------------------------------------------

def moved_shuffle_unit(unit: ShuffleUnit) -> ShuffleUnit:
    """A copy of `unit` with its shuffle on the other side of the depthwise conv and batch norm, and their
    per-channel weights permuted to match, so that it computes the same function.

    The depthwise conv and its batch norm treat every channel alone, so a permutation P passes through them:
    DW_w(P r) = P DW_{w'}(r) with w' the filters reordered by P. This is why shuffling before the depthwise
    conv (the paper's figure) and after it (the official code) connect the same channels.
    """
    order = list(unit.part_order())
    at = order.index("shuffle")
    neighbours = order[at + 1:at + 3] if unit.layout.shuffle_after == "compress" else order[at - 2:at]
    if neighbours != ["depthwise_conv", "depthwise_bn"]:
        raise ValueError(f"the shuffle of this unit does not sit next to the depthwise conv: {order}")
    permutation = applied_permutation(unit.shuffle, unit.depthwise_conv.in_channels)
    after_depthwise = unit.layout.shuffle_after == "depthwise"
    moved = deepcopy(unit)
    place = "compress" if after_depthwise else "depthwise"
    moved.layout = replace(unit.layout, shuffle_after=place, name=f"{unit.layout.name}, shuffle moved",
                           description=f"{unit.layout.description}; shuffle moved to the other side of the "
                                       f"depthwise conv")
    # Shuffle after the DW: y_i = dw_{p[i]}(r_{p[i]}); moved before it: y_i = dw'_i(r_{p[i]}), so dw' = dw[p].
    # Shuffle before the DW: y_i = dw_i(r_{p[i]}); moved after it: y_i = dw'_{p[i]}(r_{p[i]}), so dw'[p] = dw.
    index = permutation if after_depthwise else inverse_permutation(permutation)
    with torch.no_grad():
        for source, target in ((unit.depthwise_conv, moved.depthwise_conv), (unit.depthwise_bn, moved.depthwise_bn)):
            for name, tensor in list(source.named_parameters()) + list(source.named_buffers()):
                if tensor.dim() and tensor.shape[0] == index.numel():
                    getattr(target, name).copy_(tensor[index])
    return moved


@dataclass(frozen=True)
class PlacementCheck:
    """A unit against the same unit with its shuffle moved across the depthwise conv, measured."""

    unit_name: str
    layout: str
    moved_to: str
    same_connectivity: bool
    max_output_difference: float
    output_scale: float
    index_map: str
    groups_read: np.ndarray  # (g, g) channels the next 1x1 GConv's groups take from each group


def placement_check(unit_name: str, unit: ShuffleUnit, activation: torch.Tensor) -> PlacementCheck:
    """Move the unit's shuffle to the other side of the depthwise conv (weights permuted to match) and measure
    what changes on one activation: the unit's output and its channel-to-channel connectivity."""
    moved = moved_shuffle_unit(unit)
    with torch.no_grad():
        original, other = unit(activation), moved(activation)
    permutation = applied_permutation(unit.shuffle, unit.mid_channels)
    return PlacementCheck(
        unit_name, unit.layout.name,
        "before the depthwise conv" if moved.layout.shuffle_after == "compress" else "after the depthwise conv",
        torch.equal(unit_connectivity(unit), unit_connectivity(moved)),
        float((original - other).abs().max()), float(original.abs().max()),
        index_map_name(permutation, unit.shuffle.groups),
        groups_read_after_shuffle(permutation, unit.shuffle.groups))


# ---------------------------------------------------------------------------------------------------
# Points in a stage and the units after them
# ---------------------------------------------------------------------------------------------------

def stage_units(model: ShuffleNetV1, stage: str) -> list[tuple[str, ShuffleUnit]]:
    """The (qualified name, unit) pairs of one stage."""
    if stage not in STAGE_NAMES:
        raise ValueError(f"unknown stage {stage!r}; choose one of {', '.join(STAGE_NAMES)}")
    return [(f"{stage}.{name}", unit) for name, unit in getattr(model, stage).named_children()]


def point_label(stage: str, after: int) -> str:
    """Name of the point `after` units into `stage` (0: the stage's input)."""
    return f"{stage} input" if after == 0 else f"output of {stage}.unit{after}"


def stage_points(model: ShuffleNetV1, stage: str) -> list[str]:
    """Labels of the points in a stage from which flow can be followed (all but the stage's output)."""
    return [point_label(stage, after) for after in range(len(stage_units(model, stage)))]


def activation_at(model: ShuffleNetV1, x: torch.Tensor, stage: str, after: int) -> torch.Tensor:
    """The activation `after` units into `stage` for model input x, detached (no graph, no hooks)."""
    units = model.units()
    first_of_stage = sum(len(stage_units(model, name)) for name in STAGE_NAMES[:STAGE_NAMES.index(stage)])
    with torch.no_grad():
        h = model.stem(x)
        for unit in units[:first_of_stage + after]:
            h = unit(h)
    return h.detach()


def unit_source_groups(unit: ShuffleUnit, in_labels: np.ndarray, groups: int) -> np.ndarray:
    """The start-point group each output channel of `unit` came from, given that of each input channel.

    Stride 1: output channel j continues input channel j (the identity shortcut, and the same lane of the
    grouped convolutions). Stride 2: a pooled channel comes from the input channel it pools; branch channels
    come in `groups` equal lanes, lane k made by the k-th group of the 1x1 GConvs (a g=1 branch is cut into the
    same number of parts for comparison). A stride-2 unit starts a stage, where the input's lanes are contiguous.
    """
    in_labels = np.asarray(in_labels)
    if unit.stride == 1:
        return in_labels.copy()
    labels = np.empty(unit.branch_channels + unit.shortcut_channels, dtype=np.int64)
    labels[unit.shortcut_slice()] = in_labels
    labels[unit.branch_slice()] = equal_parts(unit.branch_channels, groups)
    return labels


def span_source_groups(units: Sequence[ShuffleUnit], in_channels: int, groups: int) -> np.ndarray:
    """The start-point group each output channel of the last of `units` came from (see `unit_source_groups`)."""
    labels = equal_parts(in_channels, groups)
    for unit in units:
        labels = unit_source_groups(unit, labels, groups)
    return labels


def describe_source_groups(labels: np.ndarray) -> str:
    """Runs of equal labels as text, e.g. '1-80: group 1, 81-160: group 2, ...'."""
    labels = np.asarray(labels)
    starts = np.r_[0, np.flatnonzero(np.diff(labels)) + 1]
    ends = np.r_[starts[1:], len(labels)]
    return ", ".join(f"{s}-{e - 1}: group {labels[s] + 1}" for s, e in zip(starts, ends))


@dataclass(frozen=True)
class ReachStep:
    """Connectivity from the start point to the output of one later unit."""

    unit_name: str
    connectivity: torch.Tensor  # (C at this unit's output, C at the start point) bool
    source_groups: np.ndarray  # (C at this unit's output,) the start group each channel came from

    @property
    def connected_share(self) -> float:
        """Share of (output, input) channel pairs that are connected."""
        return float(self.connectivity.float().mean())


def stage_reachability(model: ShuffleNetV1, stage: str, after: int, groups: int | None = None) -> list[ReachStep]:
    """For each unit after the point `after` units into `stage`: which start channels reach its output, and
    where each output channel came from in `groups` groups (default: the model's)."""
    units = stage_units(model, stage)
    if not 0 <= after < len(units):
        raise ValueError(f"{stage} has {len(units)} units; start after 0 to {len(units) - 1} of them")
    groups = groups or model.config.groups
    steps, total, labels = [], None, None
    for name, unit in units[after:]:
        link = unit_connectivity(unit)
        total = link if total is None else compose(total, link)
        labels = unit_source_groups(unit, equal_parts(link.shape[1], groups) if labels is None else labels, groups)
        steps.append(ReachStep(name, total, labels))
    return steps


@dataclass(frozen=True)
class ReachCounts:
    """How many output channels hear what, from one connectivity matrix and the output channels' source groups."""

    outputs: int
    groups: int
    hear_every_channel: int
    hear_every_group: int
    hear_own_group_only: int
    hear_one_channel: int
    connected_share: float


def reach_counts(connectivity: torch.Tensor, source_groups: np.ndarray, groups: int) -> ReachCounts:
    """Count the output channels that hear every start channel, every group, only their own group, one channel."""
    heard = reached_groups(connectivity, groups).numpy()  # (out, groups)
    own = np.zeros_like(heard)
    own[np.arange(len(source_groups)), np.asarray(source_groups)] = True
    return ReachCounts(connectivity.shape[0], groups, int(connectivity.all(dim=1).sum()), int(heard.all(axis=1).sum()),
                       int((heard == own).all(axis=1).sum()), int((connectivity.sum(dim=1) == 1).sum()),
                       float(connectivity.float().mean()))


def reach_sentence(title: str, counts: ReachCounts) -> str:
    """One view's structural reach as a sentence built from its counts."""
    n, g = counts.outputs, counts.groups
    if counts.hear_every_channel == n:
        return f"{title}: all {n} output channels hear every start channel."
    parts = [f"{counts.hear_every_group} of {n} output channels hear all {g} groups"]
    if counts.hear_every_channel:
        parts.append(f"{counts.hear_every_channel} hear every start channel")
    if counts.hear_own_group_only:
        parts.append(f"{counts.hear_own_group_only} hear only the group they came from")
    if counts.hear_one_channel:
        parts.append(f"{counts.hear_one_channel} hear a single start channel")
    return f"{title}: " + ", ".join(parts) + f" ({counts.connected_share:.1%} of channel pairs connected)."


def structure_caption(views: Sequence[tuple[str, ReachCounts, ShuffleUnit]], off_title: str, first_unit_name: str,
                      step: int) -> str:
    """The sentences under the structure matrices, each built from the counts shown or chosen by them.

    `views`: (title, counts, the view model's unit right after the start point) of every panel; `off_title` names
    the shuffle-off panel; `step` is how many units after that unit the matrices are taken (0: its output).
    """
    sentences = [reach_sentence(title, counts) for title, counts, _ in views]
    if step == 0 and all(unit.stride == 2 for _, _, unit in views):
        ceilings, layouts = [], {}
        for title, _, unit in views:
            in_channels = unit.compress_conv.in_channels
            out_channels = unit.branch_channels + unit.shortcut_channels
            # Branch rows can hear every start channel; a pooled row hears exactly one.
            ceiling = (unit.branch_channels * in_channels + unit.shortcut_channels) / (out_channels * in_channels)
            ceilings.append(f"{ceiling:.1%} ({title})")
            layouts.setdefault(concatenation_text(unit), title)
        sentences.append(f"{first_unit_name} has stride 2: its output is the concatenation " + "; ".join(
            f"{text} ({title})" if len(layouts) > 1 else text for text, title in layouts.items()) +
            ", and each pooled channel copies one start channel, so at most " + ", ".join(ceilings) +
            " of the channel pairs can be connected here, whatever the convolutions and the shuffle do.")
    off = next(counts for title, counts, _ in views if title == off_title)
    if off.hear_own_group_only == off.outputs:
        sentences.append(f"{off_title}: every output channel hears only the group it came from.")
    else:
        sentences.append(f"{off_title}: {off.outputs - off.hear_own_group_only} of {off.outputs} output channels hear "
                         f"more than the group they came from (where and why: below).")
    return " ".join(sentences)


@dataclass(frozen=True)
class MixingPoint:
    """A unit whose structure mixes channel groups even with the shuffle switched off, and why; `kind` is
    "ungrouped" (its first 1x1 conv reads every channel) or "concatenation" (the next unit's groups straddle
    a stride-2 output)."""

    unit_name: str
    reason: str
    kind: str = "other"


def mixing_in_span(points: Sequence[MixingPoint], unit_names: Sequence[str]) -> list[MixingPoint]:
    """The mixing points that act within a span of units: an ungrouped conv inside it, or a straddled
    concatenation that some unit of the span reads."""
    names = list(unit_names)
    return [point for point in points if point.unit_name in names
            and (point.kind != "concatenation" or point.unit_name != names[-1])]


def _group_list(groups) -> str:
    names = [str(int(g) + 1) for g in groups]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def concatenation_text(unit: ShuffleUnit) -> str:
    """A stride-2 unit's output as its layout concatenates it, e.g. '[branch (216 ch) | pooled input (24 ch)]'."""
    parts = sorted([(unit.branch_slice().start, f"branch ({unit.branch_channels} ch)"),
                    (unit.shortcut_slice().start, f"pooled input ({unit.shortcut_channels} ch)")])
    return "[" + " | ".join(text for _, text in parts) + "]"


def mixing_without_shuffle(model: ShuffleNetV1) -> list[MixingPoint]:
    """Where channels of different groups meet with every shuffle off, read from the module structure: an
    ungrouped first 1x1 convolution, or a stride-2 concatenation whose channels the next unit's 1x1 GConv reads
    in groups that straddle the groups they came from."""
    model_groups = model.config.groups
    if model_groups == 1:
        return []
    points = []
    for name, unit in zip(model.unit_names(), model.units()):
        compress = unit.compress_conv
        if compress.groups != model_groups:
            points.append(MixingPoint(name, (
                f"its first 1x1 convolution is not grouped (groups={compress.groups}): each of the "
                f"{compress.out_channels} bottleneck channels reads all {compress.in_channels} input channels"),
                "ungrouped"))
        elif unit.stride == 2:
            labels = unit_source_groups(unit, equal_parts(compress.in_channels, model_groups), model_groups)
            next_groups = equal_parts(len(labels), model_groups)
            read = [np.unique(labels[next_groups == k]) for k in range(model_groups)]
            straddling = [(k, sources) for k, sources in enumerate(read) if len(sources) > 1]
            if straddling:
                heard = "; ".join(f"its group {k + 1} reads channels from input groups {_group_list(sources)}"
                                  for k, sources in straddling)
                points.append(MixingPoint(name, (
                    f"its output, the concatenation {concatenation_text(unit)}, keeps every channel in the group it "
                    f"came from, but the next unit's 1x1 GConv cuts these {len(labels)} channels into {model_groups} "
                    f"equal groups that straddle them: {heard}"), "concatenation"))
        elif not is_block_diagonal(unit_connectivity(unit, shuffle=False), model_groups):
            points.append(MixingPoint(name, "its connectivity without shuffle crosses the groups"))
    return points


# ---------------------------------------------------------------------------------------------------
# Measurement: gradient-based channel-to-channel influence on one image
# ---------------------------------------------------------------------------------------------------

def format_share(share: float) -> str:
    """A share as a percentage that never rounds a non-zero share to zero; NaN (no influence at all) as 'n/a'."""
    if np.isnan(share):
        return "n/a"
    if share == 0:
        return "0%"
    if share < 0.001:
        return f"{share * 100:.2g}%"
    return f"{share:.1%}"


def cross_group_share(matrix: np.ndarray, groups: int, output_groups: np.ndarray | None = None) -> float:
    """Share of the total of a non-negative (out, in) matrix that reaches an output channel from an input group
    other than the one it came from. Input channels are cut into `groups` contiguous parts; output channel j
    belongs to `output_groups[j]` (default: the same contiguous parts)."""
    values = np.asarray(matrix, dtype=np.float64)
    total = float(values.sum())
    if total == 0:
        return float("nan")
    rows, columns = values.shape
    row_labels = equal_parts(rows, groups) if output_groups is None else np.asarray(output_groups)
    crossing = row_labels[:, None] != equal_parts(columns, groups)[None, :]
    # Summing the crossing entries themselves (not total minus the rest) keeps "nothing crosses" exactly 0.
    return float(values[crossing].sum() / total)


@dataclass(frozen=True)
class Influence:
    """Channel-to-channel influence measured on one input, and the groups it is judged against.

    `matrix[j, i]` is the sum over positions of |d mean(out_j) / d in_i|; input channels are cut into `groups`
    contiguous parts, output channel j belongs to the group it came from, `output_groups[j]` (default: the same
    contiguous parts).
    """

    matrix: np.ndarray
    groups: int
    start: str
    end: str
    seconds: float
    output_groups: np.ndarray | None = None

    @property
    def row_groups(self) -> np.ndarray:
        if self.output_groups is None:
            return equal_parts(self.matrix.shape[0], self.groups)
        return np.asarray(self.output_groups)

    @property
    def cross_group_share(self) -> float:
        return cross_group_share(self.matrix, self.groups, self.row_groups)

    @property
    def group_totals(self) -> np.ndarray:
        """(groups, groups) summed influence: output group (where the channel came from) by input group."""
        return label_totals(self.matrix, self.row_groups, equal_parts(self.matrix.shape[1], self.groups),
                            self.groups)


# Elements of one batched backward tensor (output channels x activation size): ~128 MB of float32 at most.
_JACOBIAN_CHUNK_ELEMENTS = 1 << 25
# Elements of one block of per-position gradients in the one-unit computation: ~16 MB of float32.
_UNIT_CHUNK_ELEMENTS = 1 << 22


def _measurement_copy(module: nn.Module) -> nn.Module:
    """A ShuffleUnit as a copy with each batch norm folded into its convolution (the same function in eval
    mode, and batch-norm backward is the slowest step of the Jacobian); other modules as they are."""
    if not isinstance(module, ShuffleUnit):
        return module
    folded = deepcopy(module)
    for part in ("compress", "depthwise", "expand"):
        setattr(folded, f"{part}_conv", fuse_conv_bn_eval(getattr(folded, f"{part}_conv"),
                                                          getattr(folded, f"{part}_bn")))
        setattr(folded, f"{part}_bn", nn.Identity())
    return folded


def jacobian_influence(units: Sequence[nn.Module], activation: torch.Tensor) -> np.ndarray:
    """(C_out, C_in): sum over positions of |d mean(out_j) / d in_i| for `units` run in order, from the full
    Jacobian (torch.func.jacrev) through copies of the units with batch norm folded into the convolutions."""
    copies = [_measurement_copy(unit) for unit in units]

    def spatial_means(x: torch.Tensor) -> torch.Tensor:
        for unit in copies:
            x = unit(x)
        return x.mean(dim=(2, 3))[0]  # (C_out,)

    chunk_size = max(1, _JACOBIAN_CHUNK_ELEMENTS // (4 * activation.numel()))  # intermediates up to 4x wider
    with torch.enable_grad():
        jacobian = jacrev(spatial_means, chunk_size=chunk_size)(activation.detach().clone())
    return jacobian.abs().sum(dim=(-2, -1))[:, 0].double().numpy()  # (C_out, 1, C_in, H, W) -> (C_out, C_in)


def _is_pointwise(module: nn.Module) -> bool:
    return (isinstance(module, nn.Conv2d) and module.kernel_size == (1, 1) and module.stride == (1, 1)
            and module.padding == (0, 0))


def unit_influence(unit: ShuffleUnit, activation: torch.Tensor) -> np.ndarray | None:
    """`jacobian_influence([unit], activation)` computed from the unit's structure, or None for a unit this does
    not understand (the caller then takes the Jacobian).

    Output channel j's gradient flows back through one row of the last 1x1 GConv, so only the C/g channels of
    one group carry it until the first 1x1 GConv; each part between (batch norm, ReLU, shuffle, depthwise conv)
    works channel by channel, so the gradient is followed on those channels alone, for every j at once. The
    unit is run part by part in its own `part_order()` and the result is checked against the unit's forward.
    """
    parts = [(name, getattr(unit, name)) for name in unit.part_order()]
    if not (_is_pointwise(parts[0][1]) and isinstance(unit.shortcut, (nn.Identity, nn.AvgPool2d))):
        return None
    x = activation.detach()
    with torch.no_grad():
        inputs, h = [], x
        for _, module in parts:
            inputs.append(h[0])
            h = module(h)
        shortcut = unit.shortcut(x)
        if unit.stride == 1:
            merged = h + shortcut
        else:
            merged = torch.empty(1, unit.branch_channels + unit.shortcut_channels, *h.shape[2:], dtype=h.dtype)
            merged[:, unit.branch_slice()] = h
            merged[:, unit.shortcut_slice()] = shortcut
        if not torch.equal(unit.out_relu(merged), unit(x)):
            return None
    # d mean(out_j) / d merged_j: the output ReLU's mask over the number of positions.
    upstream = (merged[0] > 0).to(x.dtype) / (merged.shape[2] * merged.shape[3])
    branch_rows = unit.branch_slice()
    shortcut_rows = branch_rows if unit.stride == 1 else unit.shortcut_slice()
    with torch.enable_grad():  # the shortcut is channel-wise: one backward gives every channel's own gradient
        leaf = x.clone().requires_grad_(True)
        through_shortcut, = torch.autograd.grad(unit.shortcut(leaf), leaf, upstream[shortcut_rows][None])
    through_shortcut = through_shortcut[0]  # (C_in, H, W)

    # Until the last 1x1 GConv, row j's gradient sits on branch channel j alone: (rows, H, W).
    upstream_branch = upstream[branch_rows]
    index, gradient = None, None  # then (rows, slots): the channel of each slot; (rows, slots, H, W): its gradient
    with torch.no_grad():
        for position in range(len(parts) - 1, 0, -1):
            module, seen = parts[position][1], inputs[position]
            if index is None:
                if isinstance(module, (nn.BatchNorm2d, nn.ReLU, nn.Identity)):
                    upstream_branch = _channelwise_backward(module, upstream_branch, None, seen)
                    continue
                if not _is_pointwise(module):
                    return None
                per = module.in_channels // module.groups
                group_of_row = torch.arange(module.out_channels) // (module.out_channels // module.groups)
                index = group_of_row[:, None] * per + torch.arange(per)[None, :]
                gradient = module.weight[:, :, 0, 0, None, None] * upstream_branch[:, None]
            elif isinstance(module, ChannelShuffle):
                index = applied_permutation(module, seen.shape[0])[index]
            elif isinstance(module, (nn.BatchNorm2d, nn.ReLU, nn.Identity)):
                gradient = _channelwise_backward(module, gradient, index, seen)
            elif isinstance(module, nn.Conv2d) and module.groups == module.in_channels == module.out_channels:
                rows, slots = index.shape
                flat = gradient.reshape(1, rows * slots, *gradient.shape[2:])
                gradient = torch.nn.grad.conv2d_input(
                    (1, rows * slots, *seen.shape[1:]), module.weight[index.reshape(-1)], flat, module.stride,
                    module.padding, module.dilation, rows * slots).reshape(rows, slots, *seen.shape[1:])
            else:
                return None
        if index is None:
            return None
        first = parts[0][1]  # the first 1x1 (G)Conv: its groups keep the last product small
        mid, in_channels, positions = first.out_channels, x.shape[1], x.shape[2] * x.shape[3]
        mid_per, in_per = mid // first.groups, in_channels // first.groups
        rows = index.shape[0]
        result = np.zeros((merged.shape[1], in_channels))
        chunk = max(1, _UNIT_CHUNK_ELEMENTS // (max(in_channels, mid) * positions))
        for start in range(0, rows, chunk):
            block = slice(start, min(rows, start + chunk))
            count = block.stop - block.start
            # The slots back on all mid channels, then per group of the first 1x1 GConv one matrix product
            # for every row and position at once.
            spread = torch.zeros(count, mid, positions, dtype=gradient.dtype)
            spread.scatter_add_(1, index[block, :, None].expand(-1, -1, positions), gradient[block].flatten(2))
            per_position = torch.empty(count, in_channels, positions, dtype=gradient.dtype)  # at the unit's input
            for group in range(first.groups):
                mids, ins = slice(group * mid_per, (group + 1) * mid_per), slice(group * in_per, (group + 1) * in_per)
                product = first.weight[mids, :, 0, 0].t() @ spread[:, mids].transpose(0, 1).reshape(mid_per, -1)
                per_position[:, ins] = product.reshape(in_per, count, positions).transpose(0, 1)
            if unit.stride == 1:  # the identity adds channel j's own gradient to row j
                own = torch.arange(block.start, block.stop)
                per_position[torch.arange(len(own)), own] += through_shortcut[own].flatten(1)
            result[branch_rows.start + block.start:branch_rows.start + block.stop] = (
                per_position.abs().sum(dim=-1).double().numpy())
        if unit.stride == 2:
            pooled = through_shortcut.abs().sum(dim=(1, 2)).double().numpy()
            rows_of_shortcut = np.arange(shortcut_rows.start, shortcut_rows.stop)
            result[rows_of_shortcut, np.arange(unit.shortcut_channels)] = pooled
    return result


def _channelwise_backward(module: nn.Module, gradient: torch.Tensor, index: torch.Tensor | None,
                          seen: torch.Tensor) -> torch.Tensor:
    """Backward through a channel-wise part (eval batch norm, ReLU, identity) for gradients on the channels
    `index` (rows, slots) of its input `seen` (C, H, W); index None: gradient is (C, H, W) on every channel."""
    pick = (lambda per_channel: per_channel) if index is None else (lambda per_channel: per_channel[index])
    if isinstance(module, nn.BatchNorm2d):
        scale = torch.rsqrt(module.running_var + module.eps)
        if module.weight is not None:
            scale = scale * module.weight
        return gradient * pick(scale)[..., None, None]
    if isinstance(module, nn.ReLU):
        return gradient * pick(seen > 0)
    return gradient


def influence_matrix(units: Sequence[nn.Module], activation: torch.Tensor) -> np.ndarray:
    """(C_out, C_in): sum over positions of |d mean(out_j) / d in_i| for `units` run in order on a
    (1, C_in, H, W) activation.

    One ShuffleUnit is followed through its structure (`unit_influence`, exact and many times faster); longer
    spans take the Jacobian with torch.func on a detached copy of the activation, through copies of the units
    with batch norm folded into the convolutions. Either way the modules themselves are not touched and no hook
    is registered. Modules must be in eval mode.
    """
    if activation.shape[0] != 1:
        raise ValueError(f"measure one input at a time, got a batch of {activation.shape[0]}")
    if any(module.training for unit in units for module in unit.modules()):
        raise ValueError("influence is measured on eval-mode modules; batch-norm statistics would otherwise "
                         "couple the channels")
    if len(units) == 1 and isinstance(units[0], ShuffleUnit):
        result = unit_influence(units[0], activation)
        if result is not None:
            return result
    return jacobian_influence(units, activation)


def measure_influence(model: ShuffleNetV1, x: torch.Tensor, stage: str, after: int, units: int | None = None,
                      groups: int | None = None) -> Influence:
    """Influence from the point `after` units into `stage` across the next `units` units (all the rest
    of the stage when None), for model input x; judged against `groups` groups (default: the model's), with
    every output channel in the group it came from (`span_source_groups`)."""
    remaining = stage_units(model, stage)[after:]
    if not remaining:
        raise ValueError(f"no unit of {stage} follows {point_label(stage, after)}")
    span = remaining[:units] if units is not None else remaining
    groups = groups or model.config.groups
    started = time.perf_counter()
    activation = activation_at(model, x, stage, after)
    matrix = influence_matrix([unit for _, unit in span], activation)
    seconds = time.perf_counter() - started
    labels = span_source_groups([unit for _, unit in span], activation.shape[1], groups)
    return Influence(matrix, groups, point_label(stage, after), f"output of {span[-1][0]}", seconds, labels)


def influence_caption(off_title: str, off: Influence, on_title: str, on: Influence,
                      mixing: Sequence[MixingPoint]) -> str:
    """What the crossing shares on screen say, chosen by their values and the span's structure."""
    sentences = [f"Share of all influence that reaches an output channel from a start group other than the one "
                 f"the channel came from ({off.start} to the {off.end}; the rows are grouped by where each channel "
                 f"came from, so a stride-2 output's pooled channels count with the group they pool)."]
    off_share, on_share = off.cross_group_share, on.cross_group_share
    if off_share == 0:
        sentences.append(f"{off_title}: exactly {format_share(off_share)}: no output channel hears a group other "
                         f"than its own.")
    elif not np.isnan(off_share):
        reasons = "; ".join(f"{point.unit_name}: {point.reason}" for point in mixing)
        sentences.append(f"{off_title}: {format_share(off_share)} crosses even without the shuffle"
                         + (f", because {reasons}." if reasons else "."))
    if on_share > 0 and off_share == 0:
        sentences.append(f"{on_title}: {format_share(on_share)}: the shuffle alone lets influence cross.")
    elif on_share > 0:
        sentences.append(f"{on_title}: {format_share(on_share)}.")
    return " ".join(sentences)


# ---------------------------------------------------------------------------------------------------
# The shuffle ablation
# ---------------------------------------------------------------------------------------------------

def without_shuffle(loaded: LoadedModel) -> LoadedModel:
    """A copy of a loaded model with every channel shuffle off (the shared model is not touched). The copy shares
    the frozen, read-only weight tensors with the model: only the modules are new, which saves time and memory."""
    model = loaded.model
    shared = {id(tensor): tensor for tensor in (*model.parameters(), *model.buffers())}
    copy = deepcopy(model, shared)
    copy.config = replace(model.config, shuffle=False)
    for module in copy.modules():
        if isinstance(module, ChannelShuffle):
            module.enabled = False
    return replace(loaded, model=freeze(copy))


@dataclass(frozen=True)
class AblationAccuracy:
    """Accuracy of one model's weights with and without the shuffle, and where the numbers come from."""

    images: str
    with_shuffle: float
    without_shuffle: float
    source: str


def manifest_ablation(loaded: LoadedModel) -> AblationAccuracy | None:
    """The ablation numbers the training command stored in the manifest, or None when it has none."""
    ablation = loaded.entry.get("metrics", {}).get("ablation")
    try:
        return AblationAccuracy(str(ablation["images"]), float(ablation["accuracy_with_shuffle"]),
                                float(ablation["accuracy_without_shuffle"]),
                                "stored in the weights manifest by the training command when the weights were made")
    except (TypeError, KeyError, ValueError):
        return None
