"""Where the shuffle sits: the two published placements, before and after the depthwise conv, compute the same
function once the depthwise weights are permuted to match, and connect the same channels."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from ..copies import rebuilt
from ..model import ShuffleUnit, inverse_permutation
from .connectivity import applied_permutation, groups_read_after_shuffle, unit_connectivity
from .sentences import index_map_name


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
    place = "compress" if after_depthwise else "depthwise"
    layout = replace(unit.layout, shuffle_after=place, name=f"{unit.layout.name}, shuffle moved",
                     description=f"{unit.layout.description}; shuffle moved to the other side of the depthwise conv")
    # Shuffle after the DW: y_i = dw_{p[i]}(r_{p[i]}); moved before it: y_i = dw'_i(r_{p[i]}), so dw' = dw[p].
    # Shuffle before the DW: y_i = dw_i(r_{p[i]}); moved after it: y_i = dw'_{p[i]}(r_{p[i]}), so dw'[p] = dw.
    index = permutation if after_depthwise else inverse_permutation(permutation)
    permuted = {name: tensor[index] for name, tensor in unit.state_dict().items()
                if name.startswith(("depthwise_conv.", "depthwise_bn.")) and tensor.dim()
                and tensor.shape[0] == index.numel()}
    return rebuilt(unit, layout=layout, tensors=permuted)


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
