"""The sentences under the information-flow figures, each built from the numbers and structure it speaks of."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn

from ..model import ChannelShuffle, ShuffleUnit, channel_group_index, shuffle_permutation
from .animation import LayeredFlow
from .connectivity import groups_read_after_shuffle
from .influence import Influence
from .reachability import MixingPoint, ReachCounts


def describe_permutation(permutation: torch.Tensor, shown: int = 12) -> str:
    """The index map as text, `out[i] <- in[perm[i]]`, the first `shown` entries."""
    pairs = [f"out[{i}] \u2190 in[{int(p)}]" for i, p in enumerate(permutation[:shown])]
    more = ", \u2026" if permutation.numel() > shown else ""
    return ", ".join(pairs) + more


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
    own = without.reach[-1][torch.arange(channels), channel_group_index(channels, groups)]
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


def toy_shuffle_sentence(without: LayeredFlow, shuffled: LayeredFlow) -> str:
    """What one shuffle between two group convolutions does in the toy shown, said for that toy, and the
    condition under which one shuffle reaches every group for any C and g."""
    channels, groups = shuffled.channels, shuffled.groups
    per_group = channels // groups
    heard, heard_without = shuffled.outputs_hearing_every_group, without.outputs_hearing_every_group
    toy = f"In this toy (C = {channels} channels in g = {groups} groups of {per_group})"
    if heard == channels:
        result = (f"{toy}, after one shuffle every group hears every group: {heard} of {channels} output channels, "
                  f"against {heard_without} without.")
    else:
        result = (f"{toy}, one shuffle is not enough for every group to hear every group: {heard} of {channels} "
                  f"output channels, against {heard_without} without.")
    relation = "\u2265" if per_group >= groups else "<"
    return (f"{result} One shuffle reaches every group only when each group has at least g channels "
            f"(here C/g = {per_group} {relation} g = {groups}); a real unit's bottleneck can have fewer per group, and "
            f"the Channel shuffle page counts the groups each model's shuffle reaches.")


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


def shuffle_neighbour_labels(unit: ShuffleUnit) -> tuple[str, str]:
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


def describe_source_groups(labels: np.ndarray) -> str:
    """Runs of equal labels as text, e.g. '1-80: group 1, 81-160: group 2, ...'."""
    labels = np.asarray(labels)
    starts = np.r_[0, np.flatnonzero(np.diff(labels)) + 1]
    ends = np.r_[starts[1:], len(labels)]
    return ", ".join(f"{s}-{e - 1}: group {labels[s] + 1}" for s, e in zip(starts, ends))


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


def _group_list(groups) -> str:
    names = [str(int(g) + 1) for g in groups]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def ungrouped_conv_reason(conv: nn.Conv2d) -> str:
    """Why an ungrouped first 1x1 convolution mixes the groups even with the shuffle off."""
    return (f"its first 1x1 convolution is not grouped (groups={conv.groups}): each of the {conv.out_channels} "
            f"bottleneck channels reads all {conv.in_channels} input channels")


def straddling_groups_reason(unit: ShuffleUnit, groups: int, straddling: Sequence[tuple[int, np.ndarray]]) -> str:
    """Why a stride-2 unit's concatenation mixes the groups for the next unit: `straddling` holds each group k of
    the next 1x1 GConv that reads channels from several input groups, with those groups."""
    heard = "; ".join(f"its group {k + 1} reads channels from input groups {_group_list(sources)}"
                      for k, sources in straddling)
    channels = unit.branch_channels + unit.shortcut_channels
    return (f"its output, the concatenation {concatenation_text(unit)}, keeps every channel in the group it came "
            f"from, but the next unit's 1x1 GConv cuts these {channels} channels into {groups} equal groups that "
            f"straddle them: {heard}")


def concatenation_text(unit: ShuffleUnit) -> str:
    """A stride-2 unit's output as its layout concatenates it, e.g. '[branch (216 ch) | pooled input (24 ch)]'."""
    parts = sorted([(unit.branch_slice().start, f"branch ({unit.branch_channels} ch)"),
                    (unit.shortcut_slice().start, f"pooled input ({unit.shortcut_channels} ch)")])
    return "[" + " | ".join(text for _, text in parts) + "]"


def format_share(share: float) -> str:
    """A share as a percentage that never rounds a non-zero share to zero; NaN (no influence at all) as 'n/a'."""
    if np.isnan(share):
        return "n/a"
    if share == 0:
        return "0%"
    if share < 0.001:
        return f"{share * 100:.2g}%"
    return f"{share:.1%}"


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
