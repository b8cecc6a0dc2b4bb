"""Cost of ShuffleNet v1 per unit and per op: multiply-adds, other operations, parameters, measured time.

Counting rules, stated once:
- `macs`: multiply-adds of convolutions and the classifier, the quantity the paper's Table 1 reports as
  "complexity (MFLOPs)". A conv output value costs (input channels / groups) x kernel area multiply-adds.
- `other_ops`: the work the paper leaves out, one operation per value: batch norm (a scale and shift at
  inference), ReLU, the residual add; pools cost one operation per window element (9 for 3x3). Channel
  shuffle and concatenation only move data: zero operations.
- `params`: learnable parameters (BN's scale and shift counted with the elementwise row).
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from .model import ShuffleNetConfig, ShuffleNetV1, ShuffleUnit
from .paper import TABLE1_MFLOPS

Shape = tuple[int, int, int]  # (C, H, W) of one image

# Op roles inside a unit, in forward order, with the labels figures and tables use.
OP_LABELS: dict[str, str] = {
    "stem_conv": "3x3 conv (stem)",
    "compress_conv": "1x1 GConv (compress)",
    "shuffle": "channel shuffle",
    "depthwise_conv": "3x3 depthwise conv",
    "expand_conv": "1x1 GConv (expand)",
    "shortcut": "shortcut",
    "max_pool": "3x3 max pool",
    "elementwise": "elementwise (BN, ReLU, add)",
    "global_pool": "global average pool",
    "classifier": "fully connected",
}


@dataclass(frozen=True)
class OpCost:
    """One op: what it is, the shape it produces, and what it costs."""

    op: str  # a key of OP_LABELS
    detail: str  # e.g. "24 -> 60, groups 1, stride 1"
    output_shape: Shape
    macs: int = 0
    other_ops: int = 0
    params: int = 0

    @property
    def label(self) -> str:
        return OP_LABELS[self.op]


@dataclass(frozen=True)
class UnitCost:
    """A unit (or the stem, or the classifier) and its ops."""

    name: str
    input_shape: Shape
    output_shape: Shape
    ops: tuple[OpCost, ...]

    @property
    def macs(self) -> int:
        return sum(op.macs for op in self.ops)

    @property
    def other_ops(self) -> int:
        return sum(op.other_ops for op in self.ops)

    @property
    def params(self) -> int:
        return sum(op.params for op in self.ops)


@dataclass(frozen=True)
class FlopReport:
    """Every unit's cost for one architecture at one input size."""

    groups: int
    width: float
    size: int
    num_classes: int
    units: tuple[UnitCost, ...] = field(default_factory=tuple)

    @property
    def total_macs(self) -> int:
        return sum(u.macs for u in self.units)

    @property
    def total_other_ops(self) -> int:
        return sum(u.other_ops for u in self.units)

    @property
    def total_params(self) -> int:
        return sum(u.params for u in self.units)

    @property
    def paper_mflops(self) -> int | None:
        """Table 1's complexity for this architecture, where the paper gives one (1x, 224x224, 1000 classes)."""
        if self.width == 1.0 and self.size == 224 and self.num_classes == 1000:
            return TABLE1_MFLOPS.get(self.groups)
        return None

    def rows(self) -> list[dict]:
        """One flat row per op, for tables and CSV."""
        return [{"unit": u.name, "op": op.label, "detail": op.detail,
                 "output": "x".join(map(str, op.output_shape)), "macs": op.macs,
                 "other_ops": op.other_ops, "params": op.params}
                for u in self.units for op in u.ops]

    def to_dict(self) -> dict:
        """JSON-ready: the architecture, a `units` list with op rows, and the totals."""
        return {
            "architecture": {"groups": self.groups, "width": self.width, "size": self.size,
                             "num_classes": self.num_classes},
            "units": [{"name": u.name, "input_shape": list(u.input_shape), "output_shape": list(u.output_shape),
                       "ops": [{**asdict(op), "label": op.label, "output_shape": list(op.output_shape)}
                               for op in u.ops],
                       "macs": u.macs, "other_ops": u.other_ops, "params": u.params} for u in self.units],
            "total_macs": self.total_macs,
            "total_other_ops": self.total_other_ops,
            "total_params": self.total_params,
            "paper_mflops": self.paper_mflops,
        }


def _out_size(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


def _conv(op: str, conv: nn.Conv2d, shape: Shape) -> OpCost:
    _, h, w = shape
    k, s, p = conv.kernel_size[0], conv.stride[0], conv.padding[0]
    out: Shape = (conv.out_channels, _out_size(h, k, s, p), _out_size(w, k, s, p))
    per_output = conv.in_channels // conv.groups * k * k
    params = conv.weight.numel() + (conv.bias.numel() if conv.bias is not None else 0)
    detail = f"{conv.in_channels} -> {conv.out_channels}, groups {conv.groups}, stride {s}"
    return OpCost(op, detail, out, macs=out[0] * out[1] * out[2] * per_output, params=params)


def _pool(op: str, pool: nn.Module, shape: Shape) -> OpCost:
    c, h, w = shape
    k, s, p = pool.kernel_size, pool.stride, pool.padding
    out: Shape = (c, _out_size(h, k, s, p), _out_size(w, k, s, p))
    return OpCost(op, f"{k}x{k}, stride {s}", out, other_ops=out[0] * out[1] * out[2] * k * k)


def _elements(shape: Shape) -> int:
    return shape[0] * shape[1] * shape[2]


def _bn_params(*norms: nn.BatchNorm2d) -> int:
    return sum(p.numel() for norm in norms for p in norm.parameters())


def _stem_cost(model: ShuffleNetV1, shape: Shape) -> UnitCost:
    conv = _conv("stem_conv", model.stem.conv, shape)
    # BN + ReLU on every conv output value.
    elementwise = OpCost("elementwise", "BN, ReLU", conv.output_shape, other_ops=2 * _elements(conv.output_shape),
                         params=_bn_params(model.stem.bn))
    pool = _pool("max_pool", model.stem.pool, conv.output_shape)
    return UnitCost("stem", shape, pool.output_shape, (conv, elementwise, pool))


def _unit_cost(name: str, unit: ShuffleUnit, shape: Shape) -> UnitCost:
    compress = _conv("compress_conv", unit.compress_conv, shape)
    depthwise = _conv("depthwise_conv", unit.depthwise_conv, compress.output_shape)
    shuffled_after_depthwise = unit.layout.shuffle_after == "depthwise"
    shuffle = OpCost("shuffle", f"{unit.shuffle.groups} groups" + ("" if unit.shuffle.enabled else ", off"),
                     depthwise.output_shape if shuffled_after_depthwise else compress.output_shape)
    expand = _conv("expand_conv", unit.expand_conv, depthwise.output_shape)
    branch_ops = (compress, depthwise, shuffle) if shuffled_after_depthwise else (compress, shuffle, depthwise)
    if unit.stride == 2:
        shortcut = _pool("shortcut", unit.shortcut, shape)
        shortcut = OpCost("shortcut", "3x3 average pool, stride 2, concatenated", shortcut.output_shape,
                          other_ops=shortcut.other_ops)
        output: Shape = (expand.output_shape[0] + shortcut.output_shape[0],) + expand.output_shape[1:]
        merge_ops, merge = 0, "concat"  # concatenation moves data only
    else:
        shortcut = OpCost("shortcut", "identity", shape)
        output = expand.output_shape
        merge_ops, merge = _elements(output), "add"
    # compress BN + ReLU, depthwise BN, expand BN, the merge, the final ReLU
    elementwise_ops = (2 * _elements(compress.output_shape) + _elements(depthwise.output_shape)
                       + _elements(expand.output_shape) + merge_ops + _elements(output))
    elementwise = OpCost("elementwise", f"3 BN, 2 ReLU, {merge}", output, other_ops=elementwise_ops,
                         params=_bn_params(unit.compress_bn, unit.depthwise_bn, unit.expand_bn))
    return UnitCost(name, shape, output, (*branch_ops, expand, shortcut, elementwise))


def _classifier_cost(model: ShuffleNetV1, shape: Shape) -> UnitCost:
    c = shape[0]
    pool = OpCost("global_pool", "average over space", (c, 1, 1), other_ops=_elements(shape))
    fc = model.classifier
    classifier = OpCost("classifier", f"{fc.in_features} -> {fc.out_features}", (fc.out_features, 1, 1),
                        macs=fc.in_features * fc.out_features,
                        params=sum(p.numel() for p in fc.parameters()))
    return UnitCost("classifier", shape, (fc.out_features, 1, 1), (pool, classifier))


def model_report(model: ShuffleNetV1, size: int = 224) -> FlopReport:
    """Cost of an existing model on a size x size RGB image."""
    if not isinstance(size, int) or size < 1:
        raise ValueError(f"input size must be a positive number of pixels, got {size}")
    shape: Shape = (3, size, size)
    units = [_stem_cost(model, shape)]
    shape = units[-1].output_shape
    for name, unit in zip(model.unit_names(), model.units()):
        units.append(_unit_cost(name, unit, shape))
        shape = units[-1].output_shape
    units.append(_classifier_cost(model, shape))
    config = model.config
    return FlopReport(config.groups, config.width, size, config.num_classes, tuple(units))


def flop_report(groups: int = 3, width: float = 1.0, size: int = 224, num_classes: int = 1000,
                layout: str = "paper") -> FlopReport:
    """Cost of ShuffleNet v1 with `groups` and `width` on a size x size image, per unit and per op.

    The layout changes only the order of the ops and the classifier's bias: the multiply-adds are the same.
    """
    config = ShuffleNetConfig(groups=groups, width=width, num_classes=num_classes, layout=layout)
    with torch.device("meta"):  # the structure is all we need: no memory
        model = _Skeleton(config)
    return model_report(model, size)


class _Skeleton(ShuffleNetV1):
    """The network's modules without the weight initialisation, which a cost report never reads (on the meta
    device torch runs each init through its slow reference path: ~0.2 s a model)."""

    def _init_weights(self) -> None:
        pass


@contextmanager
def _capture_unit_inputs(model: ShuffleNetV1):
    """Record the input of the stem, every unit and the classifier head during one forward pass."""
    inputs: dict[str, torch.Tensor] = {}
    modules = {"stem": model.stem, **dict(zip(model.unit_names(), model.units()))}
    handles = [module.register_forward_pre_hook(lambda _m, args, name=name: inputs.__setitem__(name, args[0]))
               for name, module in modules.items()]
    try:
        yield inputs
    finally:
        for handle in handles:
            handle.remove()


def _unit_calls(model: ShuffleNetV1, size: int) -> tuple[list[tuple[str, object, torch.Tensor]], torch.Tensor]:
    """(name, callable, its input) for the stem, every unit and the classifier head, inputs recorded from one
    forward pass of a random size x size image; and that image."""
    x = torch.randn(1, 3, size, size)
    with torch.inference_mode():
        with _capture_unit_inputs(model) as inputs:
            features = model.forward_features(x)
    head = lambda f: model.classifier(model.pool(f).flatten(1))  # noqa: E731 - the classifier row
    modules = {"stem": model.stem, **dict(zip(model.unit_names(), model.units()))}
    return [(name, modules[name], inputs[name]) for name in modules] + [("classifier", head, features)], x


def _seconds(call, argument, repeats: int) -> list[float]:
    call(argument)  # warm-up: first calls pay for allocation
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        call(argument)
        samples.append(time.perf_counter() - started)
    return sorted(samples)


def _median_seconds(call, argument, repeats: int) -> float:
    samples = _seconds(call, argument, repeats)
    return samples[len(samples) // 2]


def _small_input(name: str, unit_input: torch.Tensor) -> torch.Tensor:
    """The same channels on a tiny grid: 2x2 for units and the head, 8x8 for the stem (it outputs 2x2)."""
    side = 8 if name == "stem" else (1 if name == "classifier" else 2)
    return torch.randn(1, unit_input.shape[1], side, side)


def time_units(model: ShuffleNetV1, size: int = 224, repeats: int = 5) -> dict[str, float]:
    """Measured CPU seconds per unit (median of `repeats`) for one size x size image, each unit timed alone on
    its own input, in forward order."""
    calls, _ = _unit_calls(model, size)
    with torch.inference_mode():
        return {name: _median_seconds(module, unit_input, repeats) for name, module, unit_input in calls}


@dataclass(frozen=True)
class NetworkTiming:
    """Measured CPU time of one architecture on one size x size image (medians of `repeats` runs)."""

    size: int
    repeats: int
    forward: float  # one whole forward pass
    units: dict[str, float] = field(default_factory=dict)  # each unit (stem, 16 units, classifier) timed alone
    # The same parts on a 2x2 grid, fastest of the repeats (a floor: other work on the CPU only adds to it).
    small_units: dict[str, float] = field(default_factory=dict)

    @property
    def units_total(self) -> float:
        """The units' times added up (each timed alone)."""
        return sum(self.units.values())

    @property
    def fixed_share(self) -> float:
        """The units' time on a 2x2 grid over their time on the real input: the part that does not grow with
        the work (per-call overhead: dispatching a dozen small ops per unit)."""
        return sum(self.small_units.values()) / max(self.units_total, 1e-12)


def time_network(model: ShuffleNetV1, size: int = 224, repeats: int = 3) -> NetworkTiming:
    """A real whole forward pass, every unit timed alone, and every unit on a 2x2 grid (see `NetworkTiming`)."""
    calls, x = _unit_calls(model, size)
    with torch.inference_mode():
        forward = _median_seconds(model, x, repeats)
        units = {name: _median_seconds(module, unit_input, repeats) for name, module, unit_input in calls}
        small = {name: _seconds(module, _small_input(name, unit_input), repeats)[0]
                 for name, module, unit_input in calls}
    return NetworkTiming(size, repeats, forward, units, small)


def describe_timing(report: FlopReport, timing: NetworkTiming) -> str:
    """What the measured times say, every number computed from `timing` and `report` (the page's caption)."""
    units = [u for u in report.units if u.name.startswith("stage") and u.name in timing.units]
    lead = (f"A whole forward pass took {timing.forward * 1000:.1f} ms (median of {timing.repeats}); the "
            f"{len(timing.units)} parts timed one at a time add up to {timing.units_total * 1000:.1f} ms "
            f"({timing.units_total / timing.forward:.0%} of it), and the time shares below are of that sum.")
    if not units:
        return lead
    time_shares = [timing.units[u.name] / timing.units_total for u in units]
    mac_shares = [u.macs / report.total_macs for u in units]
    if timing.fixed_share >= 0.5:
        return (f"{lead} At this size most of the time does not grow with the work: the same parts on a 2x2 "
                f"grid (fastest of {timing.repeats}) take {timing.fixed_share:.0%} of it. So the units' time shares "
                f"stay between {min(time_shares):.1%} and {max(time_shares):.1%} while their multiply-adds range from "
                f"{min(mac_shares):.1%} to {max(mac_shares):.1%}.")
    per_mac = {u.name: timing.units[u.name] / max(u.macs, 1) * 1e9 for u in units}
    slow, fast = max(per_mac, key=per_mac.get), min(per_mac, key=per_mac.get)
    return (f"{lead} The same parts on a 2x2 grid (fastest of {timing.repeats}) take {timing.fixed_share:.0%} of "
            f"that time, so most of it grows with the work; still, a multiply-add costs {per_mac[slow]:.2f} ns "
            f"in {slow} and {per_mac[fast]:.2f} ns in {fast}, which is where the two bars of a unit part.")


def format_table(report: FlopReport) -> str:
    """The per-unit cost table as plain text (a handout)."""
    header = (f"ShuffleNet v1, g={report.groups}, width {report.width:g}x, {report.size}x{report.size} input, "
              f"{report.num_classes} classes")
    lines = [header, "", f"{'unit / op':<34}{'output':>14}{'MACs':>15}{'other ops':>13}{'params':>11}"]
    for unit in report.units:
        lines.append(f"{unit.name:<34}{'x'.join(map(str, unit.output_shape)):>14}{unit.macs:>15,}"
                     f"{unit.other_ops:>13,}{unit.params:>11,}")
        for op in unit.ops:
            lines.append(f"  {op.label:<32}{'x'.join(map(str, op.output_shape)):>14}{op.macs:>15,}"
                         f"{op.other_ops:>13,}{op.params:>11,}")
    lines.append("")
    lines.append(f"{'total':<48}{report.total_macs:>15,}{report.total_other_ops:>13,}{report.total_params:>11,}")
    lines.append(f"complexity: {report.total_macs / 1e6:.1f} MFLOPs (multiply-adds of convolutions and the "
                 f"classifier, as the paper counts)")
    if report.paper_mflops is not None:
        difference = report.total_macs / 1e6 / report.paper_mflops - 1
        lines.append(f"paper, Table 1: {report.paper_mflops} MFLOPs ({difference:+.1%})")
    return "\n".join(lines)
