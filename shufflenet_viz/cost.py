"""The cost argument of the paper's section 3.2, and the widths it buys (Table 1).

For c input and output channels, m bottleneck channels and an h x w feature map, one bottleneck unit costs

    ResNet      hw(2cm + 9m^2)      1x1 conv, 3x3 conv, 1x1 conv
    ResNeXt     hw(2cm + 9m^2/g)    1x1 conv, 3x3 group conv, 1x1 conv
    ShuffleNet  hw(2cm/g + 9m)      1x1 group conv, 3x3 depthwise conv, 1x1 group conv

multiply-adds. ShuffleNet's unit is the cheapest, so at the same budget it affords more channels, and more as
g grows: that is how Table 1 picks its stage widths. The same counting as `flops.py` (a stride-1 unit's
multiply-adds there equal the ShuffleNet formula exactly).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .flops import FlopReport, flop_report
from .model import BOTTLENECK_RATIO, GROUPS, STAGE_NAMES, STAGE_OUT_CHANNELS

ARCHITECTURES: dict[str, str] = {
    "resnet": "ResNet: hw(2cm + 9m²)",
    "resnext": "ResNeXt: hw(2cm + 9m²/g)",
    "shufflenet": "ShuffleNet: hw(2cm/g + 9m)",
}
# Stage 2 of the paper's network at 224x224: a 28x28 map, the g=1 width as the budget.
STAGE2_SIDE = 28
LIMIT = 100_000  # largest c, m, h or w the page accepts: beyond it nothing is a plausible layer


def resnet_macs(c: int, m: int, h: int, w: int) -> int:
    """Multiply-adds of a ResNet bottleneck unit: 1x1 (c -> m), 3x3 (m -> m), 1x1 (m -> c)."""
    return h * w * (2 * c * m + 9 * m * m)


def resnext_macs(c: int, m: int, g: int, h: int, w: int) -> float:
    """Multiply-adds of a ResNeXt unit: the 3x3 convolution split into g groups."""
    return h * w * (2 * c * m * g + 9 * m * m) / g


def shufflenet_macs(c: int, m: int, g: int, h: int, w: int) -> float:
    """Multiply-adds of a ShuffleNet unit: both 1x1 convolutions in g groups, the 3x3 depthwise."""
    return h * w * (2 * c * m + 9 * m * g) / g


def unit_macs(c: int, m: int, g: int, h: int, w: int) -> dict[str, float]:
    """The three formulas for one setting, by the keys of ARCHITECTURES."""
    return {"resnet": resnet_macs(c, m, h, w), "resnext": resnext_macs(c, m, g, h, w),
            "shufflenet": shufflenet_macs(c, m, g, h, w)}


def format_count(value: float, million_digits: int = 2) -> str:
    """A count as a teacher reads it aloud, in the unit that reads right at its size: 208, 45.2 k, 1.23 M
    (`million_digits` after the point in millions)."""
    if value >= 1_000_000:
        return f"{value / 1e6:,.{million_digits}f} M"
    if value >= 10_000:
        return f"{value / 1e3:,.1f} k"
    return f"{value:,.0f}"


def format_macs(value: float) -> str:
    """Multiply-adds of the cost formulas: 208, 45.2 k, 3.174 M (three decimals in millions, so that the
    architectures compared at one setting differ visibly)."""
    return format_count(value, million_digits=3)


def pointwise_and_depthwise(c: int, m: int, g: int) -> tuple[int, int]:
    """Multiply-adds per pixel of a ShuffleNet unit's two 1x1 group convs together (2cm/g) and of its 3x3
    depthwise conv (9m), for a setting whose c and m split into g groups."""
    return 2 * c * m // g, 9 * m


def dominance_caption(c: int, m: int, g: int) -> str:
    """Which part of a ShuffleNet unit costs more per pixel at this setting, each clause chosen by the numbers:
    the bottleneck ratio when it is the paper's, and the side that dominates."""
    pointwise, depthwise = pointwise_and_depthwise(c, m, g)
    premise = f"With m = c/{BOTTLENECK_RATIO}" if m * BOTTLENECK_RATIO == c else f"With c = {c} and m = {m}"
    costs = (f"{premise} the 1x1 convolutions cost 2cm/g = {pointwise:,} multiply-adds per pixel and the depthwise "
             f"conv 9m = {depthwise:,}")
    # 2cm/g against 9m: m cancels, so the 1x1 convolutions cost more exactly when c > 4.5g, whatever m is.
    rule = f"the 1x1 convolutions cost more exactly when 2c/g > 9, that is c > 4.5g (here 4.5g = {4.5 * g:g})"
    if pointwise > depthwise:
        verb = "dominate" if pointwise >= 2 * depthwise else "cost more"
        return (f"{costs}: the 1x1 convolutions {verb} ({pointwise / depthwise:.1f} times the depthwise conv), "
                f"which is why ShuffleNet groups them, and the channel shuffle keeps the groups talking.")
    if pointwise == depthwise:
        return f"{costs}: the two cost the same here; {rule}."
    return f"{costs}: here the depthwise conv costs more; {rule}."


def setting_problem(c: int, m: int, g: int, h: int, w: int) -> str | None:
    """Why this setting describes no real unit (None when it does)."""
    for name, value in (("c", c), ("m", m), ("g", g), ("h", h), ("w", w)):
        if not isinstance(value, int) or not 1 <= value <= LIMIT:
            return f"{name} must be a whole number from 1 to {LIMIT:,}, got {value}."
    if c % g or m % g:
        return (f"A group convolution splits its channels into g equal groups: c = {c} and m = {m} must both be "
                f"multiples of g = {g}.")
    return None


def affordable_width(budget: float, g: int, h: int, w: int, ratio: int = BOTTLENECK_RATIO) -> float:
    """The channel count c whose ShuffleNet unit (m = c / ratio) costs exactly `budget` multiply-adds.

    hw(2c(c/ratio)/g + 9c/ratio) = budget is a quadratic in c; this is its positive root.
    """
    if budget <= 0 or g < 1 or h < 1 or w < 1:
        raise ValueError("the budget, g, h and w must be positive")
    a = 2 * h * w / (ratio * g)
    b = 9 * h * w / ratio
    return (-b + math.sqrt(b * b + 4 * a * budget)) / (2 * a)


def round_to_groups(c: float, g: int, ratio: int = BOTTLENECK_RATIO) -> int:
    """The largest width at most c whose bottleneck (c / ratio) splits into g equal groups."""
    step = ratio * g
    return max(step, int(c // step) * step)


@dataclass(frozen=True)
class WidthRow:
    """What one g affords at the budget of the g=1 unit, against Table 1."""

    groups: int
    exact: float  # the c that spends the budget exactly
    affordable: int  # rounded down so that the bottleneck splits into g groups
    stage_widths: tuple[int, int, int]  # affordable, doubled per stage (the network halves h and w each stage)
    table1: tuple[int, int, int]  # model.STAGE_OUT_CHANNELS[g]

    @property
    def matches_table1(self) -> bool:
        return self.stage_widths == self.table1


def affordable_widths(budget_channels: int = STAGE_OUT_CHANNELS[1][0],
                      side: int = STAGE2_SIDE) -> tuple[float, list[WidthRow]]:
    """The budget (multiply-adds of one g=1 unit with `budget_channels` channels on a side x side map) and, for
    each g of Table 1, the width it affords. With the defaults (Stage 2 of the g=1 network: 144 channels,
    28x28) the rounded widths are Table 1's."""
    budget = shufflenet_macs(budget_channels, budget_channels // BOTTLENECK_RATIO, 1, side, side)
    rows = []
    for g in GROUPS:
        exact = affordable_width(budget, g, side, side)
        affordable = round_to_groups(exact, g)
        rows.append(WidthRow(g, exact, affordable, tuple(affordable * 2 ** i for i in range(len(STAGE_NAMES))),
                             STAGE_OUT_CHANNELS[g]))
    return budget, rows


def widths_against_table1(rows: list[WidthRow]) -> str:
    """How the widths a budget affords compare with Table 1's, as computed: 'exactly Table 1's widths' or the
    groups where they differ."""
    differ = [row for row in rows if not row.matches_table1]
    if not differ:
        return "exactly Table 1's widths"
    return ("not Table 1's widths: " if len(differ) == len(rows) else "Table 1's widths except ") + ", ".join(
        f"g={row.groups} ({' / '.join(map(str, row.stage_widths))} against "
        f"{' / '.join(map(str, row.table1))})" for row in differ)


def affordable_widths_sentence(rows: list[WidthRow]) -> str:
    """The Lesson's sentence on the widths the g=1 unit's budget affords, each clause chosen by the rows."""
    widths = [row.affordable for row in rows]
    trend = "larger g affords more channels" if all(a < b for a, b in zip(widths, widths[1:])) else \
        "the groups afford these widths"
    listed = ", ".join(f"g={row.groups}: **{row.affordable}**" for row in rows)
    return f"At the budget of the g=1 unit, {trend}: {listed}; with each later stage doubled, " \
           f"{widths_against_table1(rows)}."


def network_mflops(g: int, report: FlopReport | None = None) -> float:
    """flops.py's complexity of the whole 1x network with Table 1's widths (224x224, 1000 classes)."""
    return (report or flop_report(g, 1.0, 224, 1000)).total_macs / 1e6


def table1_setting(g: int, stage: int = 0, size: int = 224) -> tuple[int, int, int, int, int]:
    """(c, m, g, h, w) of a stride-1 unit of Table 1's network: stage 0 is Stage 2 (h = w = size / 8)."""
    c = STAGE_OUT_CHANNELS[g][stage]
    side = size // (8 * 2 ** stage)
    return c, c // BOTTLENECK_RATIO, g, side, side


@dataclass(frozen=True)
class UnitSetting:
    """c, m, g, h, w of a real stride-1 unit, and its multiply-adds as flops.py counts them."""

    unit: str
    c: int
    m: int
    g: int
    h: int
    w: int
    flops_macs: int


def stride1_settings(report: FlopReport) -> list[UnitSetting]:
    """The setting of every stride-1 unit of a flops.py report (stride-2 units change c and h, w midway)."""
    settings = []
    for unit in report.units:
        ops = {op.op: op for op in unit.ops}
        if "compress_conv" not in ops or unit.input_shape != unit.output_shape:
            continue
        c, h, w = unit.input_shape
        m = ops["compress_conv"].output_shape[0]
        settings.append(UnitSetting(unit.name, c, m, report.groups, h, w, unit.macs))
    return settings
