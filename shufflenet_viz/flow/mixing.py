"""Where channels of different groups meet with every shuffle off, read from the module structure."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..model import ShuffleNetV1, channel_group_index
from .connectivity import is_block_diagonal, unit_connectivity
from .reachability import MixingPoint, unit_source_groups
from .sentences import straddling_groups_reason, ungrouped_conv_reason


def mixing_in_span(points: Sequence[MixingPoint], unit_names: Sequence[str]) -> list[MixingPoint]:
    """The mixing points that act within a span of units: an ungrouped conv inside it, or a straddled
    concatenation that some unit of the span reads."""
    names = list(unit_names)
    return [point for point in points if point.unit_name in names
            and (point.kind != "concatenation" or point.unit_name != names[-1])]


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
            points.append(MixingPoint(name, ungrouped_conv_reason(compress), "ungrouped"))
        elif unit.stride == 2:
            in_groups = channel_group_index(compress.in_channels, model_groups).numpy()
            labels = unit_source_groups(unit, in_groups, model_groups)
            next_groups = channel_group_index(len(labels), model_groups).numpy()
            read = [np.unique(labels[next_groups == k]) for k in range(model_groups)]
            straddling = [(k, sources) for k, sources in enumerate(read) if len(sources) > 1]
            if straddling:
                points.append(MixingPoint(name, straddling_groups_reason(unit, model_groups, straddling),
                                          "concatenation"))
        elif not is_block_diagonal(unit_connectivity(unit, shuffle=False), model_groups):
            points.append(MixingPoint(name, "its connectivity without shuffle crosses the groups"))
    return points
