"""The points of a stage, the units after them, and how far information can travel from one point: the start
channels each later output reaches, and the start group each output channel came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from ..model import STAGE_NAMES, ShuffleNetV1, ShuffleUnit, channel_group_index
from .connectivity import compose, reached_groups, unit_connectivity


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
    labels[unit.branch_slice()] = channel_group_index(unit.branch_channels, groups).numpy()
    return labels


def span_source_groups(units: Sequence[ShuffleUnit], in_channels: int, groups: int) -> np.ndarray:
    """The start-point group each output channel of the last of `units` came from (see `unit_source_groups`)."""
    labels = channel_group_index(in_channels, groups).numpy()
    for unit in units:
        labels = unit_source_groups(unit, labels, groups)
    return labels


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
    steps, total = [], None
    labels = channel_group_index(units[after][1].compress_conv.in_channels, groups).numpy()
    for name, unit in units[after:]:
        link = unit_connectivity(unit)
        total = link if total is None else compose(total, link)
        labels = unit_source_groups(unit, labels, groups)
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


@dataclass(frozen=True)
class MixingPoint:
    """A unit whose structure mixes channel groups even with the shuffle switched off, and why; `kind` is
    "ungrouped" (its first 1x1 conv reads every channel) or "concatenation" (the next unit's groups straddle
    a stride-2 output)."""

    unit_name: str
    reason: str
    kind: str = "other"
