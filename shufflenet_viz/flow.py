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

from .data import ImageSet
from .model import STAGE_NAMES, ShuffleNetV1, ShuffleUnit, inverse_permutation, shuffle_permutation, with_shuffle
from .train import ABLATION_SUBSET, evaluate
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


def shuffle_connectivity(channels: int, groups: int) -> torch.Tensor:
    """(C, C) connectivity of the channel shuffle of `channels` channels in `groups` groups."""
    return permutation_connectivity(shuffle_permutation(channels, groups))


def compose(*layers: torch.Tensor) -> torch.Tensor:
    """Connectivity of layers applied one after another (first layer first): (out of last, in of first)."""
    result = layers[0]
    for layer in layers[1:]:
        # float32 uses BLAS (integer matmul does not) and counts paths exactly far beyond any channel count.
        result = (layer.to(torch.float32) @ result.to(torch.float32)) > 0
    return result


def group_level(matrix: torch.Tensor | np.ndarray, out_groups: int, in_groups: int) -> np.ndarray:
    """Sum of `matrix` over each (output group, input group) block: (out_groups, in_groups)."""
    values = np.asarray(matrix, dtype=np.float64)
    rows, columns = values.shape
    blocks = values.reshape(out_groups, rows // out_groups, in_groups, columns // in_groups)
    return blocks.sum(axis=(1, 3))


def reached_groups(connectivity: torch.Tensor, in_groups: int) -> torch.Tensor:
    """(out, in_groups) bool: the input groups each output channel can receive information from."""
    owner = channel_groups(connectivity.shape[1], in_groups)
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
    def outputs_hearing_every_group(self) -> int:
        """How many channels of the last layer receive information from every input group."""
        return int(self.reach[-1].all(dim=1).sum())


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


def applied_permutation(shuffle: nn.Module, channels: int) -> torch.Tensor:
    """The permutation a shuffle module really applies to `channels` channels, read by running it on
    channel indices (so a disabled or g=1 shuffle shows as the identity)."""
    with torch.no_grad():
        marked = torch.arange(channels, dtype=torch.float64).view(1, channels, 1, 1)
        return shuffle(marked).flatten().round().to(torch.int64)


def conv_connectivity(conv: nn.Conv2d) -> torch.Tensor:
    """(out, in) connectivity of a convolution module, from its groups and channel counts."""
    return group_conv_connectivity(conv.in_channels, conv.out_channels, conv.groups)


def unit_connectivity(unit: ShuffleUnit, shuffle: bool = True) -> torch.Tensor:
    """(C_out, C_in) connectivity of a ShuffleNet unit as its modules are built: 1x1 GConv, the shuffle's
    actual permutation (the identity when `shuffle` is False, as `with_shuffle(model, False)` makes it),
    depthwise conv, 1x1 GConv, then add (stride 1) or concatenate (stride 2) the channel-by-channel shortcut."""
    if not isinstance(unit.shortcut, (nn.Identity, nn.AvgPool2d)):
        raise ValueError(f"unexpected shortcut {unit.shortcut!r}: only channel-wise shortcuts are understood")
    bottleneck = unit.compress_conv.out_channels
    permutation = applied_permutation(unit.shuffle, bottleneck) if shuffle else torch.arange(bottleneck)
    branch = compose(conv_connectivity(unit.compress_conv),
                     permutation_connectivity(permutation),
                     conv_connectivity(unit.depthwise_conv),
                     conv_connectivity(unit.expand_conv))
    shortcut = torch.eye(unit.compress_conv.in_channels, dtype=torch.bool)  # identity or average pool
    if unit.stride == 2:
        return torch.cat((branch, shortcut), dim=0)  # branch channels first, as in the forward pass
    return branch | shortcut


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


@dataclass(frozen=True)
class ReachStep:
    """Connectivity from the start point to the output of one later unit."""

    unit_name: str
    connectivity: torch.Tensor  # (C at this unit's output, C at the start point) bool

    @property
    def connected_share(self) -> float:
        """Share of (output, input) channel pairs that are connected."""
        return float(self.connectivity.float().mean())


def stage_reachability(model: ShuffleNetV1, stage: str, after: int) -> list[ReachStep]:
    """For each unit after the point `after` units into `stage`: which start channels reach its output."""
    units = stage_units(model, stage)
    if not 0 <= after < len(units):
        raise ValueError(f"{stage} has {len(units)} units; start after 0 to {len(units) - 1} of them")
    steps, total = [], None
    for name, unit in units[after:]:
        link = unit_connectivity(unit)
        total = link if total is None else compose(total, link)
        steps.append(ReachStep(name, total))
    return steps


@dataclass(frozen=True)
class MixingPoint:
    """A unit whose structure mixes channel groups even with the shuffle switched off, and why."""

    unit_name: str
    reason: str


def _group_list(groups: np.ndarray) -> str:
    names = [str(g + 1) for g in np.flatnonzero(groups)]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def mixing_without_shuffle(model: ShuffleNetV1) -> list[MixingPoint]:
    """Where channels cross group boundaries with every shuffle off, read from the module structure."""
    model_groups = model.config.groups
    if model_groups == 1:
        return []
    points = []
    for name, unit in zip(model.unit_names(), model.units()):
        connectivity = unit_connectivity(unit, shuffle=False)
        if is_block_diagonal(connectivity, model_groups):
            continue
        compress = unit.compress_conv
        if compress.groups != model_groups:
            reason = (f"its first 1x1 convolution is not grouped (groups={compress.groups}): each of the "
                      f"{compress.out_channels} bottleneck channels reads all {compress.in_channels} input "
                      f"channels")
        else:
            blocks = group_level(connectivity, model_groups, model_groups) > 0
            heard = "; ".join(f"output group {g + 1} gets input groups {_group_list(row)}"
                              for g, row in enumerate(blocks) if row.sum() > 1)
            reason = (f"the concatenation [branch ({unit.expand_conv.out_channels} ch) | pooled input "
                      f"({compress.in_channels} ch)] makes {connectivity.shape[0]} channels whose "
                      f"{model_groups} groups straddle the input groups: {heard}")
        points.append(MixingPoint(name, reason))
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


def cross_group_share(matrix: np.ndarray, groups: int) -> float:
    """Share of the total of a non-negative (out, in) matrix that lies outside the same-group blocks."""
    total = float(np.sum(matrix))
    if total == 0:
        return float("nan")
    blocks = group_level(matrix, groups, groups)
    # Summing the off-diagonal blocks themselves (not total minus diagonal) keeps "nothing crosses" exactly 0.
    return float(blocks[~np.eye(groups, dtype=bool)].sum() / total)


@dataclass(frozen=True)
class Influence:
    """Channel-to-channel influence measured on one input, and the groups it is judged against.

    `matrix[j, i]` is the sum over positions of |d mean(out_j) / d in_i|; `groups` splits both axes into
    contiguous equal blocks for the boundaries and the cross-group share.
    """

    matrix: np.ndarray
    groups: int
    start: str
    end: str
    seconds: float

    @property
    def cross_group_share(self) -> float:
        return cross_group_share(self.matrix, self.groups)

    @property
    def group_totals(self) -> np.ndarray:
        """(groups, groups) summed influence: output group by input group."""
        return group_level(self.matrix, self.groups, self.groups)


# Elements of one batched backward tensor (output channels x activation size): ~128 MB of float32 at most.
_JACOBIAN_CHUNK_ELEMENTS = 1 << 25


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


def influence_matrix(units: Sequence[nn.Module], activation: torch.Tensor) -> np.ndarray:
    """(C_out, C_in): sum over positions of |d mean(out_j) / d in_i| for `units` run in order on a
    (1, C_in, H, W) activation.

    The Jacobian is taken with torch.func on a detached copy of the activation, through copies of the
    units with batch norm folded into the convolutions: the modules themselves are not touched and no
    hook is registered. Modules must be in eval mode.
    """
    if activation.shape[0] != 1:
        raise ValueError(f"measure one input at a time, got a batch of {activation.shape[0]}")
    if any(module.training for module in units):
        raise ValueError("influence is measured on eval-mode modules; batch-norm statistics would otherwise "
                         "couple the channels")
    copies = [_measurement_copy(unit) for unit in units]

    def spatial_means(x: torch.Tensor) -> torch.Tensor:
        for unit in copies:
            x = unit(x)
        return x.mean(dim=(2, 3))[0]  # (C_out,)

    chunk_size = max(1, _JACOBIAN_CHUNK_ELEMENTS // (4 * activation.numel()))  # intermediates up to 4x wider
    with torch.enable_grad():
        jacobian = jacrev(spatial_means, chunk_size=chunk_size)(activation.detach().clone())
    return jacobian.abs().sum(dim=(-2, -1))[:, 0].double().numpy()  # (C_out, 1, C_in, H, W) -> (C_out, C_in)


def measure_influence(model: ShuffleNetV1, x: torch.Tensor, stage: str, after: int, units: int | None = None,
                      groups: int | None = None) -> Influence:
    """Influence from the point `after` units into `stage` across the next `units` units (all the rest
    of the stage when None), for model input x; judged against `groups` groups (default: the model's)."""
    remaining = stage_units(model, stage)[after:]
    if not remaining:
        raise ValueError(f"no unit of {stage} follows {point_label(stage, after)}")
    span = remaining[:units] if units is not None else remaining
    started = time.perf_counter()
    matrix = influence_matrix([unit for _, unit in span], activation_at(model, x, stage, after))
    seconds = time.perf_counter() - started
    return Influence(matrix, groups or model.config.groups, point_label(stage, after), f"output of {span[-1][0]}",
                     seconds)


# ---------------------------------------------------------------------------------------------------
# The shuffle ablation
# ---------------------------------------------------------------------------------------------------

def without_shuffle(loaded: LoadedModel) -> LoadedModel:
    """A copy of a loaded model with every channel shuffle off (the shared model is not touched)."""
    return replace(loaded, model=freeze(with_shuffle(loaded.model, False)))


@dataclass(frozen=True)
class AblationAccuracy:
    """Accuracy of one model's weights with and without the shuffle, and where the numbers come from."""

    images: str
    with_shuffle: float
    without_shuffle: float
    source: str


def measure_ablation(loaded: LoadedModel, data: ImageSet, count: int = ABLATION_SUBSET) -> AblationAccuracy:
    """Accuracy with and without shuffle on `count` images of `data` (ImageSet.subset(count, seed=0)),
    the same images the training command measures."""
    subset = data.subset(count, seed=0)
    device = torch.device("cpu")
    with_accuracy = evaluate(loaded.model, subset, loaded.preprocessing, device)["test_accuracy"]
    without_accuracy = evaluate(without_shuffle(loaded).model, subset, loaded.preprocessing, device)["test_accuracy"]
    return AblationAccuracy(f"{len(subset):,} CIFAR-10 test images (ImageSet.subset({count}, seed=0))",
                            with_accuracy, without_accuracy, "measured now on this machine")


def manifest_ablation(loaded: LoadedModel) -> AblationAccuracy | None:
    """The ablation numbers the training command stored in the manifest, or None when it has none."""
    ablation = loaded.entry.get("metrics", {}).get("ablation")
    try:
        return AblationAccuracy(str(ablation["images"]), float(ablation["accuracy_with_shuffle"]),
                                float(ablation["accuracy_without_shuffle"]),
                                "stored in the weights manifest by the training command")
    except (TypeError, KeyError, ValueError):
        return None
