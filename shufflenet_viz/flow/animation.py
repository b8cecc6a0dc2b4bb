"""The channel shuffle shown: positions of every channel in an animation (row -> g x C/g grid -> transpose ->
row), and the paper's Figure 1, stacked group convolutions with or without a shuffle between them, as layers of
channels and the links between them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..model import channel_group_index, inverse_permutation, shuffle_permutation
from .connectivity import compose, group_conv_connectivity, reached_groups, shuffle_connectivity


# The animation of the shuffle stays legible on a projector up to this many channels.
MAX_ANIMATION_CHANNELS = 96
MAX_ANIMATION_GROUPS = 8
# A speaking pace, the same in the browser and in the exports: each stage takes about 3 s, the channels moving
# for 0.8 s and then held still while the teacher says what happened.
STAGE_HOLD_MS = 2200
MOVE_FRAME_MS = 130
ANIMATION_STAGES: tuple[str, ...] = (
    "1. channels in a row",
    "2. reshape into g rows of C/g",
    "3. transpose: C/g rows of g",
    "4. flatten back: the shuffled row",
)
# Rows between the channel row (y = 0) and the top row of the grids, so the grids never cover the row.
_GRID_TOP = -2.0


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
        return channel_group_index(self.channels, self.groups).numpy()

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
