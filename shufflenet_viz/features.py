"""Feature maps at every point of a ShuffleNet v1, captured in one forward pass, and the channel groups there.

Each unit is shown at five points, the tensors between its parts: after the first 1x1 group conv (+BN+ReLU,
the tensor the shuffle receives), after the channel shuffle, after the 3x3 depthwise conv (+BN), after the
second 1x1 group conv (+BN), and the unit's output. The stem's output is one more point.

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

from .model import ShuffleNetV1, ShuffleUnit, shuffle_permutation

STEM = "stem"
# The parts of a unit whose outputs are shown, in forward order; "output" is the unit module itself.
UNIT_POINTS: tuple[str, ...] = ("compress_relu", "shuffle", "depthwise_bn", "expand_bn", "output")
POINT_LABELS: dict[str, str] = {
    STEM: "stem output (conv 3x3/2 + BN + ReLU + max pool)",
    "compress_relu": "after the first 1x1 GConv + BN + ReLU (before the shuffle)",
    "shuffle": "after the channel shuffle",
    "depthwise_bn": "after the 3x3 depthwise conv + BN",
    "expand_bn": "after the second 1x1 GConv + BN",
    "output": "unit output (after add/concat + ReLU)",
}
# Channels that belong to no channel group: the stem's (a dense conv) and their copies on a shortcut.
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


def feature_points(model: ShuffleNetV1) -> list[str]:
    """Every capture point in forward order."""
    return [STEM] + [point_name(unit, part) for unit in model.unit_names() for part in UNIT_POINTS]


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
    """The channel group of every channel at one point.

    `current`: the group the channel belongs to here (the group of the group conv that made or will read
    it). `origin`: the group of the first 1x1 GConv whose output the channel carries, and `source`: which
    channel of that output; they differ from `current` and the channel's own index only after the shuffle
    (and after the depthwise conv, which keeps channels apart), which is how the reordering shows.
    `UNGROUPED` (-1) marks channels from the stem's dense conv.
    """

    groups: int
    current: np.ndarray  # (C,) int
    origin: np.ndarray  # (C,) int
    source: np.ndarray  # (C,) int

    @property
    def channels(self) -> int:
        """How many channels the point has."""
        return int(self.current.size)

    @property
    def moved(self) -> bool:
        """Whether any channel here sits in another group than the one that computed it."""
        return not np.array_equal(self.origin, self.current)


def _contiguous_groups(channels: int, groups: int) -> np.ndarray:
    """Channels split into `groups` contiguous blocks, as a group convolution splits them."""
    return np.arange(channels) // (channels // groups)


def _unmoved(current: np.ndarray, groups: int) -> ChannelGroups:
    return ChannelGroups(groups, current, current, np.arange(current.size))


def _shuffle_sources(unit: ShuffleUnit, channels: int) -> np.ndarray:
    if not unit.shuffle.enabled or unit.shuffle.groups == 1:
        return np.arange(channels)
    return shuffle_permutation(channels, unit.shuffle.groups).numpy()


def _output_groups(model: ShuffleNetV1, layer: str) -> np.ndarray:
    if layer == STEM:
        return np.full(model.stem.bn.num_features, UNGROUPED)
    unit = _unit(model, layer)
    branch = _contiguous_groups(unit.expand_bn.num_features, unit.groups)
    if unit.stride == 1:
        return branch
    # A stride-2 unit appends its pooled input: those channels keep the groups they had one layer earlier.
    names = layer_names(model)
    previous = names[names.index(layer) - 1]
    return np.concatenate([branch, _output_groups(model, previous)])


def channel_groups(model: ShuffleNetV1, point: str) -> ChannelGroups:
    """The current group, origin group and source channel of every channel at `point`."""
    layer, part = split_point(point)
    groups = model.config.groups
    if layer == STEM or part == "output":
        return _unmoved(_output_groups(model, layer), groups)
    unit = _unit(model, layer)
    if part == "expand_bn":
        return _unmoved(_contiguous_groups(unit.expand_bn.num_features, unit.groups), groups)
    channels = unit.compress_bn.num_features
    current = _contiguous_groups(channels, unit.groups)
    if part == "compress_relu":
        return _unmoved(current, groups)
    sources = _shuffle_sources(unit, channels)
    return ChannelGroups(groups, current, current[sources], sources)


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
