"""Feature maps at every point of a ShuffleNet v1, captured in one forward pass, and the channel groups there.

Each unit is shown at five points, the tensors between its parts, in the unit's own forward order
(`ShuffleUnit.part_order`): after the first 1x1 group conv (+BN+ReLU), after the 3x3 depthwise conv (+BN), after
the channel shuffle (before the depthwise conv in the paper's layout, after it in the official code's), after
the second 1x1 group conv (+BN), and the unit's output. The stem's output is one more point.

Every channel has two groups (`ChannelGroups`): the group of the 1x1 GConv that computed it (`origin`) and the
group of the next 1x1 GConv that reads it (`reader`). They differ across a shuffle, at a stride-2 unit's output
(the pooled shortcut keeps where it came from, the next unit reads contiguous blocks) and around the dense
convolutions (the stem, stage2.unit1's first 1x1 conv in a grouped model, the classifier).

Hooks sit on the shared, read-only model only inside `forward_hooks`, which always removes them, and they
record only the forward pass of the thread that attached them: other sessions run the same model at the
same time and must neither feed this capture nor be touched by it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .model import ShuffleNetV1, ShuffleUnit, channel_group_index, inverse_permutation

STEM = "stem"
# The parts of a unit whose outputs are shown; "output" is the unit module itself. A unit shows them in its
# layout's forward order (`unit_points`).
UNIT_POINTS: tuple[str, ...] = ("compress_relu", "shuffle", "depthwise_bn", "expand_bn", "output")
POINT_LABELS: dict[str, str] = {
    STEM: "stem output (conv 3x3/2 + BN + ReLU + max pool)",
    "compress_relu": "after the first 1x1 GConv + BN + ReLU",
    "shuffle": "after the channel shuffle",
    "depthwise_bn": "after the 3x3 depthwise conv + BN",
    "expand_bn": "after the second 1x1 GConv + BN",
    "output": "unit output (after add/concat + ReLU)",
}
# Channels that belong to no channel group: made or read by a dense convolution (the stem, the ungrouped first
# 1x1 conv of stage2.unit1 in a grouped model, the classifier), and the pooled copies of such channels.
UNGROUPED = -1
ORDERINGS: dict[str, str] = {
    "index": "channel index",
    "mean_abs": "mean |activation| (strongest first)",
    "mean": "mean activation (highest first)",
}

ForwardObserver = Callable[[nn.Module, tuple, torch.Tensor], None]


def layer_names(model: ShuffleNetV1) -> list[str]:
    """The layers a user picks from: `stem`, then `stage2.unit1` ... `stage4.unit4`."""
    return [STEM, *model.unit_names()]


def point_name(layer: str, part: str) -> str:
    """The key of one capture point, e.g. `stage3.unit2.shuffle` or `stage3.unit2.output`; `stem` alone."""
    if layer == STEM:
        return STEM
    if part not in UNIT_POINTS:
        raise ValueError(f"unknown point {part!r} inside a unit; choose one of {list(UNIT_POINTS)}")
    return f"{layer}.{part}"


def split_point(point: str) -> tuple[str, str]:
    """(layer, part) of a point name; the stem's part is `stem`."""
    if point == STEM:
        return STEM, STEM
    layer, _, part = point.rpartition(".")
    if part not in UNIT_POINTS or not layer:
        raise ValueError(f"{point!r} is not a feature point (expected 'stem' or '<unit>.<part>')")
    return layer, part


def unit_points(unit: ShuffleUnit) -> tuple[str, ...]:
    """The unit's capture points in its forward order (the shuffle where its layout puts it), then "output"."""
    return (*(part for part in unit.part_order() if part in UNIT_POINTS), "output")


def shuffle_neighbour_points(unit: ShuffleUnit) -> tuple[str, str]:
    """(the point just before the channel shuffle, the shuffle's own point) in this unit's layout."""
    points = unit_points(unit)
    index = points.index("shuffle")
    return points[index - 1], points[index]


def feature_points(model: ShuffleNetV1) -> list[str]:
    """Every capture point in forward order."""
    return [STEM] + [point_name(name, part) for name, unit in zip(model.unit_names(), model.units())
                     for part in unit_points(unit)]


def _unit(model: ShuffleNetV1, layer: str) -> ShuffleUnit:
    unit = dict(model.named_modules()).get(layer)
    if not isinstance(unit, ShuffleUnit):
        raise ValueError(f"{layer!r} is not a unit of this model; units are {model.unit_names()}")
    return unit


def point_module(model: ShuffleNetV1, point: str) -> nn.Module:
    """The module whose output is the tensor at `point`."""
    layer, part = split_point(point)
    if layer == STEM:
        return model.stem
    unit = _unit(model, layer)
    return unit if part == "output" else getattr(unit, part)


@contextmanager
def forward_hooks(model: nn.Module, observers: Mapping[str, ForwardObserver]) -> Iterator[None]:
    """Attach observing forward hooks to the named submodules for the duration of the block.

    The hooks are always removed (also when the forward pass raises or the block is interrupted). They
    fire only for forward passes run by the thread that attached them, and whatever they return is
    dropped, so a concurrent forward pass on the same shared model is neither recorded nor changed.
    """
    modules = dict(model.named_modules())
    unknown = [name for name in observers if name not in modules]
    if unknown:
        raise ValueError(f"no module named {unknown} in {type(model).__name__}")
    owner = threading.get_ident()

    def only_for_owner(observe: ForwardObserver) -> Callable:
        def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
            if threading.get_ident() == owner:
                observe(module, inputs, output)
        return hook

    handles = []
    try:
        for name, observe in observers.items():
            handles.append(modules[name].register_forward_hook(only_for_owner(observe)))
        yield
    finally:
        for handle in handles:
            handle.remove()


def capture_features(model: ShuffleNetV1, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every point's tensor (see `feature_points`) from ONE forward pass of `x`, detached, on the CPU."""
    captured: dict[str, torch.Tensor] = {}
    names = {id(module): name for name, module in model.named_modules()}

    def recorder(point: str) -> ForwardObserver:
        def record(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
            captured[point] = output.detach().cpu()
        return record

    observers = {names[id(point_module(model, point))]: recorder(point) for point in feature_points(model)}
    with forward_hooks(model, observers), torch.no_grad():
        model(x)
    return {point: captured[point] for point in feature_points(model)}


@dataclass(frozen=True)
class ChannelGroups:
    """The two channel groups of every channel at one point, and where it came from.

    `origin`: the group of the 1x1 GConv that computed the channel: for a stride-2 unit's pooled shortcut,
    the origin the channel had at the unit's input; for a stride-1 unit's output, the group of the branch
    (the identity adds the input channel of the same index). `reader`: the group of the next 1x1 GConv that
    reads the channel (through the shuffle, where one comes first; the next unit's first 1x1 GConv for a unit's
    output). `source`: which channel of the first 1x1 conv's output the channel carries (the shuffle moves it;
    elsewhere its own index). `UNGROUPED` (-1): computed or read by a dense convolution.
    """

    groups: int
    origin: np.ndarray  # (C,) int
    reader: np.ndarray  # (C,) int
    source: np.ndarray  # (C,) int

    @property
    def channels(self) -> int:
        """How many channels the point has."""
        return int(self.origin.size)

    @property
    def moved(self) -> bool:
        """Whether any channel here is read by another group than the one it came from."""
        return not np.array_equal(self.origin, self.reader)


def _conv_groups(conv: nn.Conv2d, model_groups: int, side: str) -> np.ndarray:
    """The group of each output (side "out") or input ("in") channel of a 1x1 conv of a unit; UNGROUPED for a
    dense conv in a grouped model (in a g=1 model every 1x1 conv is its one group)."""
    channels = conv.out_channels if side == "out" else conv.in_channels
    if conv.groups == 1 and model_groups > 1:
        return np.full(channels, UNGROUPED)
    return channel_group_index(channels, conv.groups).numpy()


def _layer_reader(model: ShuffleNetV1, layer: str) -> np.ndarray:
    """Who reads a layer's output: the next unit's first 1x1 conv, or the dense classifier after the last unit."""
    names = layer_names(model)
    following = names[names.index(layer) + 1:]
    if not following:
        return np.full(model.classifier.in_features, UNGROUPED)
    return _conv_groups(_unit(model, following[0]).compress_conv, model.config.groups, "in")


def _layer_origin(model: ShuffleNetV1, layer: str) -> np.ndarray:
    """Where each channel of a layer's output came from (see `ChannelGroups.origin`)."""
    if layer == STEM:
        return np.full(model.stem.bn.num_features, UNGROUPED)
    unit = _unit(model, layer)
    branch = _conv_groups(unit.expand_conv, model.config.groups, "out")
    if unit.stride == 1:
        return branch
    names = layer_names(model)
    origin = np.empty(unit.branch_channels + unit.shortcut_channels, dtype=np.int64)
    origin[unit.branch_slice()] = branch
    origin[unit.shortcut_slice()] = _layer_origin(model, names[names.index(layer) - 1])
    return origin


def channel_groups_at(model: ShuffleNetV1, point: str) -> ChannelGroups:
    """The origin group, reader group and source channel of every channel at `point`."""
    layer, part = split_point(point)
    groups = model.config.groups
    if layer == STEM or part == "output":
        origin = _layer_origin(model, layer)
        return ChannelGroups(groups, origin, _layer_reader(model, layer), np.arange(origin.size))
    unit = _unit(model, layer)
    if part == "expand_bn":
        reader = _layer_reader(model, layer)[unit.branch_slice()]
        origin = _conv_groups(unit.expand_conv, groups, "out")
        return ChannelGroups(groups, origin, reader, np.arange(origin.size))
    made = _conv_groups(unit.compress_conv, groups, "out")
    read = _conv_groups(unit.expand_conv, groups, "in")
    permutation = unit.shuffle.permutation(made.size).numpy()  # shuffled channel i is channel permutation[i]
    if unit.part_order().index(part) < unit.part_order().index("shuffle"):
        # Not shuffled yet: channel j will sit at position inverse[j] when the second 1x1 GConv reads it.
        return ChannelGroups(groups, made, read[inverse_permutation(torch.from_numpy(permutation)).numpy()],
                             np.arange(made.size))
    return ChannelGroups(groups, made[permutation], read, permutation)


def channel_strength(feature: torch.Tensor, by: str) -> np.ndarray:
    """One number per channel of a (1, C, H, W) or (C, H, W) feature: its mean |activation| or mean."""
    if feature.dim() == 4:
        feature = feature[0]
    values = feature.detach().float().flatten(1)  # (C, H*W)
    if by == "mean_abs":
        return values.abs().mean(dim=1).numpy()
    if by == "mean":
        return values.mean(dim=1).numpy()
    raise ValueError(f"no strength {by!r}; choose 'mean_abs' or 'mean'")


def channel_order(feature: torch.Tensor, by: str = "index") -> np.ndarray:
    """Channel indices in display order: by index, or strongest first (ties keep index order)."""
    if by not in ORDERINGS:
        raise ValueError(f"unknown ordering {by!r}; choose one of {list(ORDERINGS)}")
    channels = feature.shape[-3]
    if by == "index":
        return np.arange(channels)
    return np.argsort(-channel_strength(feature, by), kind="stable")


def group_name(group: int) -> str:
    """'group k' (1-based) or 'no group' for UNGROUPED."""
    return "no group" if group == UNGROUPED else f"group {group + 1}"


def _reader_name(model: ShuffleNetV1, point: str) -> str:
    """Which convolution reads the channels at `point` next."""
    layer, part = split_point(point)
    if layer != STEM and part not in ("expand_bn", "output"):
        return f"the second 1x1 GConv of {layer}"
    names = layer_names(model)
    following = names[names.index(layer) + 1:]
    if not following:
        return "the fully connected classifier (after global pooling)"
    dense = _unit(model, following[0]).compress_conv.groups == 1 and model.config.groups > 1
    return f"the first 1x1 {'conv (dense)' if dense else 'GConv'} of {following[0]}"


def describe_point_groups(model: ShuffleNetV1, point: str) -> str:
    """What the frame and bar colours at `point` mean here, with the counts they show (a page caption)."""
    groups = channel_groups_at(model, point)
    layer, part = split_point(point)
    dense_origin = int((groups.origin == UNGROUPED).sum())
    if dense_origin == groups.channels:
        frame = "Frames are grey (no group): every channel here comes from a dense convolution"
    else:
        frame = "Frame: where the channel came from, the group of the 1x1 GConv that computed it"
        if layer != STEM and part == "output" and _unit(model, layer).stride == 2:
            frame += " (the pooled shortcut's channels keep the group they had at the unit's input)"
        elif layer != STEM and part == "output":
            frame += " (the branch's; the identity adds the unit's input channel of the same index)"
        if dense_origin:
            frame += f"; grey: {dense_origin} channels from a dense convolution"
    reader = _reader_name(model, point)
    differ = int((groups.origin != groups.reader).sum())
    if (groups.reader == UNGROUPED).all():
        read = f"{reader} reads all {groups.channels} channels together (no groups" + ("; grey bars)" if differ else ")")
    elif not differ:
        read = (f"{reader} reads every channel in the group that computed it, so it mixes only channels of one "
                f"frame colour")
    else:
        read = (f"Bar under a tile: the group of {reader} that reads the channel; it differs from the frame for "
                f"{differ} of {groups.channels} channels, and that convolution mixes only channels with the same "
                f"bar colour")
    return f"{frame}. {read[0].upper()}{read[1:]}."


def describe_channel(model: ShuffleNetV1, point: str, channel: int) -> str:
    """Where one channel at `point` came from and which group reads it next, in a sentence."""
    groups = channel_groups_at(model, point)
    layer, part = split_point(point)
    origin, reader, source = (int(a[channel]) for a in (groups.origin, groups.reader, groups.source))
    made = "the first (dense) 1x1 conv's output" if origin == UNGROUPED else \
        f"the first 1x1 GConv's output ({group_name(origin)})"
    if layer != STEM and part in ("compress_relu", "shuffle", "depthwise_bn"):
        unit = _unit(model, layer)
        order = unit.part_order()
        if order.index(part) >= order.index("shuffle"):
            moved = "the shuffle moved it here" if source != channel else "the shuffle left it in place"
            return (f"It carries channel {source} of {made}; {moved}, and {group_name(reader)} of the second 1x1 "
                    f"GConv reads it.")
        position = int(inverse_permutation(unit.shuffle.permutation(groups.channels))[channel])
        return (f"It is channel {channel} of {made}; the shuffle will move it to position {position}, where "
                f"{group_name(reader)} of the second 1x1 GConv reads it.")
    came = "a dense convolution" if origin == UNGROUPED else group_name(origin)
    reader_text = "no group" if reader == UNGROUPED else group_name(reader)
    return f"It came from {came}; {_reader_name(model, point)} reads it as {reader_text}."


def describe_shuffle(model: ShuffleNetV1, layer: str) -> str:
    """Where this unit shuffles and how many groups of its first 1x1 conv each group of its second one hears."""
    unit = _unit(model, layer)
    before, _ = shuffle_neighbour_points(unit)
    groups = channel_groups_at(model, point_name(layer, "shuffle"))
    heard = [len(set(groups.origin[groups.reader == k].tolist())) for k in sorted(set(groups.reader.tolist()))]
    where = POINT_LABELS[before].removeprefix("after ")
    text = (f"This model shuffles after {where} ({unit.layout.name} layout); the 3x3 depthwise conv treats every "
            f"channel alone, so its place before or after the shuffle does not change which groups meet.")
    if (groups.origin == UNGROUPED).all():
        return text + " Here the first 1x1 conv is dense, so every channel already mixes all inputs."
    if len(heard) == 1 and heard[0] == 1:
        return text + " With one group there is nothing to mix."
    low, high = min(heard), max(heard)
    count = f"{low}" if low == high else f"{low} to {high}"
    return text + (f" After it, each of the {len(heard)} groups of the second 1x1 GConv reads channels from "
                   f"{count} of the {model.config.groups} groups of the first.")
