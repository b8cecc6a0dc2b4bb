"""Which input channels can an output channel hear from? Boolean channel-to-channel connectivity, read from the
real modules: each convolution's groups, the permutation a `ChannelShuffle` really applies, identity or
average-pool shortcuts, added or concatenated, composed part by part and unit by unit.

Matrices are (out_channels, in_channels): entry [j, i] is True when output channel j can receive information from
input channel i. Channel groups are contiguous equal blocks, as the grouped 1x1 convolutions split them.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..model import ChannelShuffle, ShuffleUnit, channel_group_index, shuffle_permutation


def group_conv_connectivity(in_channels: int, out_channels: int, groups: int) -> torch.Tensor:
    """(out, in) connectivity of a convolution with `groups` groups: each output channel reads every
    input channel of its own group and no other."""
    return channel_group_index(out_channels, groups)[:, None] == channel_group_index(in_channels, groups)[None, :]


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
    owner = channel_group_index(connectivity.shape[1], in_groups)
    return torch.stack([connectivity[:, owner == group].any(dim=1) for group in range(in_groups)], dim=1)


def is_block_diagonal(connectivity: torch.Tensor, groups: int) -> bool:
    """True when no output channel is connected to an input channel of another group."""
    crossing = ~group_conv_connectivity(connectivity.shape[1], connectivity.shape[0], groups)
    return not bool((connectivity & crossing).any())


def applied_permutation(shuffle: nn.Module, channels: int) -> torch.Tensor:
    """The permutation a shuffle module really applies to `channels` channels, read by running it on
    channel indices (so a disabled or g=1 shuffle shows as the identity)."""
    with torch.no_grad():
        marked = torch.arange(channels, dtype=torch.float64).view(1, channels, 1, 1)
        return shuffle(marked).flatten().round().to(torch.int64)


def conv_connectivity(conv: nn.Conv2d) -> torch.Tensor:
    """(out, in) connectivity of a convolution module, from its groups and channel counts."""
    return group_conv_connectivity(conv.in_channels, conv.out_channels, conv.groups)


def is_channelwise(module: nn.Module) -> bool:
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
        elif not is_channelwise(module):
            raise ValueError(f"unexpected part {part}: {module!r}")
    shortcut = torch.eye(in_channels, dtype=torch.bool)  # identity or average pool: channel by channel
    if unit.stride == 1:
        return branch | shortcut
    connectivity = torch.zeros(unit.branch_channels + unit.shortcut_channels, in_channels, dtype=torch.bool)
    connectivity[unit.branch_slice()] = branch
    connectivity[unit.shortcut_slice()] = shortcut
    return connectivity
