"""Measured channel-to-channel influence on one image: |d mean(out_j) / d in_i| summed over space, from the
Jacobian of a unit or a run of units, taken on a detached copy of the activation through copies of the units (the
shared model is never touched and no hook is registered).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import nn
from torch.func import jacrev

from ..copies import folded_copy
from ..model import ChannelShuffle, ShuffleNetV1, ShuffleUnit, channel_group_index
from .connectivity import applied_permutation, is_channelwise, label_totals
from .reachability import activation_at, point_label, span_source_groups, stage_units


def cross_group_share(matrix: np.ndarray, groups: int, output_groups: np.ndarray | None = None) -> float:
    """Share of the total of a non-negative (out, in) matrix that reaches an output channel from an input group
    other than the one it came from. Input channels are cut into `groups` contiguous parts; output channel j
    belongs to `output_groups[j]` (default: the same contiguous parts)."""
    values = np.asarray(matrix, dtype=np.float64)
    total = float(values.sum())
    if total == 0:
        return float("nan")
    rows, columns = values.shape
    row_labels = channel_group_index(rows, groups).numpy() if output_groups is None else np.asarray(output_groups)
    crossing = row_labels[:, None] != channel_group_index(columns, groups).numpy()[None, :]
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
            return channel_group_index(self.matrix.shape[0], self.groups).numpy()
        return np.asarray(self.output_groups)

    @property
    def cross_group_share(self) -> float:
        return cross_group_share(self.matrix, self.groups, self.row_groups)

    @property
    def group_totals(self) -> np.ndarray:
        """(groups, groups) summed influence: output group (where the channel came from) by input group."""
        in_groups = channel_group_index(self.matrix.shape[1], self.groups).numpy()
        return label_totals(self.matrix, self.row_groups, in_groups, self.groups)


# Elements of one batched backward tensor (output channels x activation size): ~128 MB of float32 at most.
_JACOBIAN_CHUNK_ELEMENTS = 1 << 25
# Elements of one block of per-position gradients in the one-unit computation: ~16 MB of float32.
_UNIT_CHUNK_ELEMENTS = 1 << 22


def _measurement_copy(module: nn.Module) -> nn.Module:
    """A ShuffleUnit as a copy with each batch norm folded into its convolution (the same function in eval
    mode, and batch-norm backward is the slowest step of the Jacobian); other modules as they are."""
    return folded_copy(module) if isinstance(module, ShuffleUnit) else module


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
                if is_channelwise(module):
                    upstream_branch = _channelwise_backward(module, upstream_branch, None, seen)
                    continue
                if not _is_pointwise(module):
                    return None
                per = module.in_channels // module.groups
                first_of_group = channel_group_index(module.out_channels, module.groups)[:, None] * per
                index = first_of_group + torch.arange(per)[None, :]
                gradient = module.weight[:, :, 0, 0, None, None] * upstream_branch[:, None]
            elif isinstance(module, ChannelShuffle):
                index = applied_permutation(module, seen.shape[0])[index]
            elif is_channelwise(module):
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
