"""ShuffleNet v1 (Zhang et al. 2017, arXiv 1707.01083), Table 1 as data.

One readable file: the table, the channel shuffle, the unit and the network. Module names follow the
paper (`stem`, `stage2.unit1` ... `stage4.unit4`, and inside a unit the parts by role) so that hooks,
feature extraction and attributions can address every point a teacher wants to show.

No activation module is reused and no op is in place: a hook on any module sees the true values.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

# Table 1 of the paper: units per stage (the first of each stage has stride 2).
STAGE_REPEATS: tuple[int, ...] = (4, 8, 4)
STAGE_NAMES: tuple[str, ...] = ("stage2", "stage3", "stage4")
STEM_CHANNELS = 24
# Output channels of Stage 2, 3 and 4 for each number of groups g (Table 1, complexity ~140 MFLOPs at 1x).
STAGE_OUT_CHANNELS: dict[int, tuple[int, int, int]] = {
    1: (144, 288, 576),
    2: (200, 400, 800),
    3: (240, 480, 960),
    4: (272, 544, 1088),
    8: (384, 768, 1536),
}
WIDTHS: tuple[float, ...] = (0.25, 0.5, 1.0, 1.5, 2.0)
GROUPS: tuple[int, ...] = tuple(STAGE_OUT_CHANNELS)
BOTTLENECK_RATIO = 4  # bottleneck channels = unit output channels / 4, in stride-2 units too (both layouts)


@dataclass(frozen=True)
class UnitLayout:
    """How a unit's parts are arranged; the network, its module names and its cost are the same in every layout.

    Two layouts exist in published code. Both are the paper's unit; they differ where the equivalence of the
    depthwise convolution with any channel permutation leaves room: the depthwise conv treats every channel
    alone, so shuffling before it or after it connects the same groups of the next 1x1 GConv.
    """

    name: str
    shuffle_after: str  # "compress" (before the depthwise conv, as drawn in the paper) or "depthwise"
    inverse_shuffle: bool  # True: the (C/g, g) reshape, the inverse of the paper's (g, C/g) index map
    shortcut_first: bool  # stride-2 output is cat(pooled shortcut, branch) rather than cat(branch, shortcut)
    classifier_bias: bool
    description: str


LAYOUTS: dict[str, UnitLayout] = {
    # The paper's Figure 2, also osmr/imgclsmob (pytorchcv) and this project's CIFAR-10 models.
    "paper": UnitLayout("paper", "compress", False, False, True,
                        "shuffle after the first 1x1 GConv, (g, C/g) index map, stride-2 output = "
                        "concat(branch, shortcut)"),
    # megvii-model/ShuffleNet-Series (ShuffleNetV1/blocks.py), the official pretrained checkpoints.
    "official": UnitLayout("official", "depthwise", True, True, False,
                           "shuffle after the 3x3 depthwise conv, (C/g, g) index map (the inverse of the paper's), "
                           "stride-2 output = concat(shortcut, branch), classifier without bias"),
}


def _round_to_multiple(value: int, divisor: int) -> int:
    """Nearest multiple of `divisor` (at least `divisor`); identity when `value` already divides."""
    return max(divisor, int(round(value / divisor)) * divisor)


@dataclass(frozen=True)
class ShuffleNetConfig:
    """Architecture of one ShuffleNet v1: groups, width multiplier, classes and the shuffle switch."""

    groups: int = 3
    width: float = 1.0
    num_classes: int = 1000
    shuffle: bool = True
    layout: str = "paper"

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {list(LAYOUTS)}, got {self.layout!r}")
        if self.groups not in STAGE_OUT_CHANNELS:
            raise ValueError(f"groups must be one of {list(GROUPS)}, got {self.groups}")
        if not (isinstance(self.width, (int, float)) and 0 < self.width <= 4):
            raise ValueError(f"width must be a multiplier in (0, 4], e.g. one of {list(WIDTHS)}; got {self.width}")
        if not (isinstance(self.num_classes, int) and self.num_classes >= 1):
            raise ValueError(f"num_classes must be a positive integer, got {self.num_classes}")

    @property
    def stem_channels(self) -> int:
        # int(c * s) as the reference implementations scale it; rounded to a multiple of g only where a
        # width would otherwise leave a grouped conv with a fractional group (never for the paper's settings).
        return _round_to_multiple(int(STEM_CHANNELS * self.width), self.groups)

    @property
    def stage_channels(self) -> tuple[int, int, int]:
        # Each unit's bottleneck (C/4) is split into g groups, hence the multiple of 4g where needed.
        multiple = BOTTLENECK_RATIO * self.groups
        return tuple(_round_to_multiple(int(c * self.width), multiple) for c in STAGE_OUT_CHANNELS[self.groups])

    @property
    def unit_layout(self) -> UnitLayout:
        return LAYOUTS[self.layout]

    @property
    def name(self) -> str:
        suffix = ("" if self.layout == "paper" else f"-{self.layout}") + ("" if self.shuffle else "-noshuffle")
        return f"shufflenet_v1_g{self.groups}_w{self.width:g}{suffix}"


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """Shuffle channels across `groups`: reshape to (g, C/g), transpose, flatten (paper, Sec. 3.1)."""
    n, c, h, w = x.shape
    if c % groups:
        raise ValueError(f"channel shuffle needs C divisible by g, got C={c} and g={groups}")
    return _transpose_channels(x, groups, c // groups)


def _transpose_channels(x: torch.Tensor, rows: int, columns: int) -> torch.Tensor:
    """Reshape the channels to (rows, columns), transpose, flatten, in the memory layout `x` already has."""
    n, c, h, w = x.shape
    if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        # Channels-last memory is (N, H, W, C): the same steps on its last axis keep that layout, so the
        # convolutions on either side need no conversion copies (twice as fast with gradients, at 224x224).
        nhwc = x.permute(0, 2, 3, 1)
        return nhwc.reshape(n, h, w, rows, columns).transpose(3, 4).reshape(n, h, w, c).permute(0, 3, 1, 2)
    return x.reshape(n, rows, columns, h, w).transpose(1, 2).reshape(n, c, h, w)


def shuffle_permutation(channels: int, groups: int, inverse: bool = False) -> torch.Tensor:
    """Index map of the shuffle: output channel i is input channel `perm[i]`.

    `inverse=True` gives the official code's map (reshape to (C/g, g)), which undoes the paper's.
    """
    if groups < 1 or channels % groups:
        raise ValueError(f"channel shuffle needs C divisible by g, got C={channels} and g={groups}")
    rows = channels // groups if inverse else groups
    # (rows, C/rows) grid of input indices, read column by column.
    return torch.arange(channels).reshape(rows, channels // rows).t().reshape(-1)


def channel_group_index(channels: int, groups: int) -> torch.Tensor:
    """Group index of each of `channels` channels cut into `groups` contiguous parts, as a group convolution
    splits them; the parts are equal when `groups` divides `channels` (a g=1 model's channels are cut the same
    way to compare it with a grouped one)."""
    if groups < 1:
        raise ValueError(f"need at least one group, got {groups}")
    return torch.arange(channels) * groups // max(channels, 1)


def inverse_permutation(perm: torch.Tensor) -> torch.Tensor:
    """The permutation that undoes `perm`: inverse[perm[i]] = i."""
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(perm.numel(), device=perm.device)
    return inverse


class ChannelShuffle(nn.Module):
    """Channel shuffle as a module, so hooks see it; `enabled=False` is the paper's Table 3 ablation.

    `inverse=True` is the official code's shuffle, the reshape to (C/g, g): the inverse permutation, which
    spreads every group over all groups just the same.
    """

    def __init__(self, groups: int, enabled: bool = True, inverse: bool = False):
        super().__init__()
        self.groups = groups
        self.enabled = enabled
        self.inverse = inverse

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.enabled or self.groups == 1:
            return x
        if self.inverse:
            # (N, C, H, W) -> (N, C/g, g, H, W) -> (N, g, C/g, H, W) -> (N, C, H, W)
            return _transpose_channels(x, x.shape[1] // self.groups, self.groups)
        # (N, C, H, W) -> (N, g, C/g, H, W) -> (N, C/g, g, H, W) -> (N, C, H, W)
        return channel_shuffle(x, self.groups)

    def permutation(self, channels: int) -> torch.Tensor:
        """What this module does to `channels` channels: output channel i is input channel perm[i]."""
        if not self.enabled or self.groups == 1:
            return torch.arange(channels)
        return shuffle_permutation(channels, self.groups, self.inverse)

    def extra_repr(self) -> str:
        return f"groups={self.groups}, enabled={self.enabled}, inverse={self.inverse}"


class ShuffleUnit(nn.Module):
    """One ShuffleNet unit (Fig. 2b for stride 1, Fig. 2c for stride 2)."""

    def __init__(self, in_channels: int, out_channels: int, groups: int, stride: int,
                 group_first_conv: bool = True, shuffle: bool = True, layout: UnitLayout = LAYOUTS["paper"]):
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {stride}")
        if stride == 1 and in_channels != out_channels:
            raise ValueError("a stride-1 unit adds the identity, so it needs in_channels == out_channels")
        self.stride = stride
        self.groups = groups
        self.layout = layout
        # Both published layouts take the bottleneck from the unit's output channels, stride-2 units included
        # (checkpoint shapes: osmr 0.25x g=3 stage 2 unit 1 has 15 = 60/4, megvii 0.5x g=3 has 30 = 120/4).
        mid_channels = out_channels // BOTTLENECK_RATIO
        # The stride-2 unit concatenates the pooled input, so its branch only makes the remaining channels.
        branch_channels = out_channels - in_channels if stride == 2 else out_channels
        first_groups = groups if group_first_conv else 1
        self.mid_channels = mid_channels
        self.branch_channels = branch_channels
        self.shortcut_channels = in_channels if stride == 2 else 0

        self.compress_conv = nn.Conv2d(in_channels, mid_channels, 1, groups=first_groups, bias=False)
        self.compress_bn = nn.BatchNorm2d(mid_channels)
        self.compress_relu = nn.ReLU()
        self.shuffle = ChannelShuffle(groups, enabled=shuffle, inverse=layout.inverse_shuffle)
        self.depthwise_conv = nn.Conv2d(mid_channels, mid_channels, 3, stride=stride, padding=1,
                                        groups=mid_channels, bias=False)
        self.depthwise_bn = nn.BatchNorm2d(mid_channels)  # no ReLU after the depthwise conv (paper, Sec. 3.2)
        self.expand_conv = nn.Conv2d(mid_channels, branch_channels, 1, groups=groups, bias=False)
        self.expand_bn = nn.BatchNorm2d(branch_channels)
        self.shortcut = nn.AvgPool2d(3, stride=2, padding=1) if stride == 2 else nn.Identity()
        self.out_relu = nn.ReLU()

    def part_order(self) -> tuple[str, ...]:
        """The branch's submodule names in forward order; the shuffle sits where this unit's layout puts it."""
        before = ("compress_conv", "compress_bn", "compress_relu")
        depthwise = ("depthwise_conv", "depthwise_bn")
        middle = ("shuffle", *depthwise) if self.layout.shuffle_after == "compress" else (*depthwise, "shuffle")
        return (*before, *middle, "expand_conv", "expand_bn")

    def branch_slice(self) -> slice:
        """Where the branch's channels sit in the unit's output."""
        if self.stride == 2 and self.layout.shortcut_first:
            return slice(self.shortcut_channels, self.shortcut_channels + self.branch_channels)
        return slice(0, self.branch_channels)

    def shortcut_slice(self) -> slice | None:
        """Where the pooled shortcut's channels sit in a stride-2 unit's output (None in a stride-1 unit)."""
        if self.stride == 1:
            return None
        if self.layout.shortcut_first:
            return slice(0, self.shortcut_channels)
        return slice(self.branch_channels, self.branch_channels + self.shortcut_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch = x  # (N, C_in, H, W) -> (N, C/4, H/s, W/s) -> (N, C or C - C_in, H/s, W/s)
        for part in self.part_order():
            branch = getattr(self, part)(branch)
        shortcut = self.shortcut(x)
        if self.stride == 1:
            merged = branch + shortcut
        else:
            merged = torch.cat((shortcut, branch) if self.layout.shortcut_first else (branch, shortcut), dim=1)
        return self.out_relu(merged)  # (N, C, H/s, W/s)


class Stem(nn.Module):
    """Conv 3x3/2 -> BN -> ReLU -> max pool 3x3/2 (Table 1, Conv1 and MaxPool)."""

    def __init__(self, out_channels: int, in_channels: int = 3):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, stride=2, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.relu(self.bn(self.conv(x))))  # (N, 3, H, W) -> (N, C, H/4, W/4)


class ShuffleNetV1(nn.Module):
    """ShuffleNet v1 for any input size: stem, Stages 2-4, global average pool, classifier."""

    def __init__(self, config: ShuffleNetConfig = ShuffleNetConfig()):
        super().__init__()
        self.config = config
        self.stem = Stem(config.stem_channels)
        in_channels = config.stem_channels
        for stage_index, (name, repeats, out_channels) in enumerate(
                zip(STAGE_NAMES, STAGE_REPEATS, config.stage_channels)):
            units = nn.Sequential()
            for unit_index in range(repeats):
                units.add_module(f"unit{unit_index + 1}", ShuffleUnit(
                    in_channels, out_channels, config.groups,
                    stride=2 if unit_index == 0 else 1,
                    # Stage 2's first 1x1 is not grouped: its input (the stem) has too few channels.
                    group_first_conv=not (stage_index == 0 and unit_index == 0),
                    shuffle=config.shuffle, layout=config.unit_layout))
                in_channels = out_channels
            self.add_module(name, units)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(in_channels, config.num_classes, bias=config.unit_layout.classifier_bias)
        self._init_weights()

    def _init_weights(self) -> None:
        if self.stem.conv.weight.is_meta:  # built for its structure only (a checkpoint fills it): nothing to draw
            return
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, 0, 0.01)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        # Zero the last BN of each residual branch so every unit starts near the identity (trains faster).
        for unit in self.units():
            if unit.stride == 1:
                nn.init.zeros_(unit.expand_bn.weight)

    def units(self) -> list[ShuffleUnit]:
        """The 16 ShuffleNet units in order."""
        return [unit for name in STAGE_NAMES for unit in getattr(self, name)]

    def unit_names(self) -> list[str]:
        """Qualified names of the units: `stage2.unit1` ... `stage4.unit4`."""
        return [f"{stage}.unit{i + 1}" for stage, repeats in zip(STAGE_NAMES, STAGE_REPEATS)
                for i in range(repeats)]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)  # (N, 24, H/4, W/4)
        x = self.stage2(x)  # (N, C2, H/8, W/8)
        x = self.stage3(x)  # (N, C3, H/16, W/16)
        return self.stage4(x)  # (N, C4, H/32, W/32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.forward_features(x)).flatten(1)  # (N, C4)
        return self.classifier(x)  # (N, classes)


def build_model(groups: int = 3, width: float = 1.0, num_classes: int = 1000, shuffle: bool = True,
                layout: str = "paper") -> ShuffleNetV1:
    """A randomly initialised ShuffleNet v1 with the given architecture."""
    return ShuffleNetV1(ShuffleNetConfig(groups=groups, width=width, num_classes=num_classes, shuffle=shuffle,
                                         layout=layout))


def count_parameters(model: nn.Module) -> int:
    """Number of learnable parameters."""
    return sum(p.numel() for p in model.parameters())
