"""The paper's Figure 2 as data: one ShuffleNet unit as nodes and edges, with the numbers of a real model.

Every node carries its operation, its groups, the tensor shape it produced on a real input (read by a forward
hook), and its multiply-adds and parameters as `flops.py` counts them. The branch follows `unit.part_order()`,
so the channel shuffle sits where that model applies it. Panel (b) is a stride-1 unit, panel (c) a stride-2
unit, and panel (a) the same unit with dense 1x1 convolutions and no shuffle (the bottleneck unit with a
depthwise convolution that the paper starts from), costed at the same place in the network.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .features import STEM, forward_hooks, layer_names, point_name
from .flops import FlopReport, OpCost, UnitCost, model_report
from .model import BOTTLENECK_RATIO, ShuffleNetV1, ShuffleUnit

Shape = tuple[int, int, int]  # (C, H, W) of one image

BRANCH = 0  # the column of the residual branch
SHORTCUT = 1  # the column of the shortcut path (stride-2 units only; a stride-1 shortcut is a plain line)

# What the paper's Figure 2 writes in each box; the key is the node's name inside the unit.
TITLES: dict[str, str] = {
    "input": "input",
    "compress_conv": "1x1 GConv",
    "compress_bn": "BN ReLU",
    "shuffle": "Channel Shuffle",
    "depthwise_conv": "3x3 DWConv",
    "depthwise_bn": "BN",
    "expand_conv": "1x1 GConv",
    "expand_bn": "BN",
    "shortcut": "3x3 AVG Pool",
}
# Node kinds, for colours and legends.
KINDS: dict[str, str] = {
    "input": "tensor", "compress_conv": "conv", "compress_bn": "norm", "shuffle": "shuffle",
    "depthwise_conv": "depthwise", "depthwise_bn": "norm", "expand_conv": "conv", "expand_bn": "norm",
    "shortcut": "pool", "merge": "merge",
}
# The feature-map point (features.UNIT_POINTS) that shows each node's output: a conv's output is shown after
# its BN (and ReLU), the first tensor the capture records behind it.
POINTS: dict[str, str] = {
    "compress_conv": "compress_relu", "compress_bn": "compress_relu", "shuffle": "shuffle",
    "depthwise_conv": "depthwise_bn", "depthwise_bn": "depthwise_bn", "expand_conv": "expand_bn",
    "expand_bn": "expand_bn", "shortcut": "output", "merge": "output",
}


@dataclass(frozen=True)
class DiagramNode:
    """One box of the unit diagram."""

    key: str  # unique in the diagram: "input", a branch part ("compress_conv" ...), "shortcut" or "merge"
    title: str  # the box's words in the paper's Figure 2
    operation: str  # the operation in full, e.g. "1x1 group conv 240 -> 60, groups 3, stride 1"
    kind: str  # a value of KINDS
    groups: int | None  # groups of the convolution or the shuffle; None where nothing is grouped
    shape: Shape  # (C, H, W) of the tensor this node produces
    macs: int
    params: int
    modules: tuple[str, ...]  # qualified names of the modules the node stands for ("" for none)
    point: str | None  # the features.py capture point that shows this node's output (None: not captured)
    channels: tuple[int, int] | None  # [start, stop) of the point's channels that are this node's (None: all)
    column: int
    row: int
    active: bool = True  # False for a shuffle that moves nothing (one group, or switched off)

    @property
    def shape_text(self) -> str:
        return "x".join(str(n) for n in self.shape)


@dataclass(frozen=True)
class UnitDiagram:
    """The nodes and edges of one unit, with the totals a teacher quotes."""

    unit: str  # e.g. "stage2.unit1"
    panel: str  # "a", "b" or "c" (the paper's Figure 2)
    stride: int
    groups: int
    layout: str
    input_shape: Shape
    nodes: tuple[DiagramNode, ...]
    edges: tuple[tuple[str, str], ...]

    def node(self, key: str) -> DiagramNode:
        """The node named `key`."""
        for node in self.nodes:
            if node.key == key:
                return node
        raise KeyError(f"no node {key!r} in this diagram; nodes are {[n.key for n in self.nodes]}")

    @property
    def output_shape(self) -> Shape:
        return self.node("merge").shape

    @property
    def macs(self) -> int:
        return sum(node.macs for node in self.nodes)

    @property
    def params(self) -> int:
        return sum(node.params for node in self.nodes)

    @property
    def shuffle_index(self) -> int | None:
        """Position of the shuffle in the branch (0 = first part after the input), None when not drawn."""
        branch = [node.key for node in self.nodes if node.column == BRANCH and node.key not in ("input", "merge")]
        return branch.index("shuffle") if "shuffle" in branch else None


def unit_of(model: ShuffleNetV1, unit_name: str) -> ShuffleUnit:
    """The unit of `model` named like `stage2.unit1`."""
    unit = dict(model.named_modules()).get(unit_name)
    if not isinstance(unit, ShuffleUnit):
        raise ValueError(f"{unit_name!r} is not a unit of this model; units are {model.unit_names()}")
    return unit


def capture_unit_shapes(model: ShuffleNetV1, unit_name: str, x: torch.Tensor) -> dict[str, Shape]:
    """The (C, H, W) shape of every part of one unit in one forward pass of `x` (a batch of one), by the part's
    name; "input" is the unit's input and "output" its output. Hooks are removed afterwards."""
    unit = unit_of(model, unit_name)
    shapes: dict[str, Shape] = {}

    def recorder(part: str):
        def record(_module, inputs, output):
            shapes[part] = tuple(output.shape[1:])
            if part == "output":
                shapes["input"] = tuple(inputs[0].shape[1:])
        return record

    parts = [name for name, _ in unit.named_children()]
    observers = {f"{unit_name}.{part}": recorder(part) for part in parts}
    observers[unit_name] = recorder("output")
    with forward_hooks(model, observers), torch.no_grad():
        model(x)
    return shapes


def _op(cost: UnitCost, role: str) -> OpCost:
    return next(op for op in cost.ops if op.op == role)


def _bn_params(unit: ShuffleUnit, part: str) -> int:
    return sum(p.numel() for p in getattr(unit, part).parameters())


def _conv_words(unit: ShuffleUnit, part: str) -> tuple[str, int]:
    conv = getattr(unit, part)
    if part == "depthwise_conv":
        return f"3x3 depthwise conv, {conv.in_channels} channels, stride {conv.stride[0]}", conv.groups
    kind = "group conv" if conv.groups > 1 else "conv (dense)"
    return f"1x1 {kind} {conv.in_channels} -> {conv.out_channels}, groups {conv.groups}", conv.groups


def _previous_point(model: ShuffleNetV1, unit_name: str) -> str:
    names = layer_names(model)
    previous = names[names.index(unit_name) - 1]
    return STEM if previous == STEM else point_name(previous, "output")


def build_diagram(model: ShuffleNetV1, unit_name: str, shapes: dict[str, Shape], report: FlopReport,
                  panel: str | None = None, draw_shuffle: bool = True) -> UnitDiagram:
    """The diagram of one unit from the shapes of its parts (see `capture_unit_shapes`) and `report`, the
    `flops.model_report` of the same model at the same input size."""
    unit = unit_of(model, unit_name)
    cost = next(u for u in report.units if u.name == unit_name)
    nodes: list[DiagramNode] = [DiagramNode(
        "input", TITLES["input"], "the unit's input", KINDS["input"], None, shapes["input"], 0, 0, ("",),
        _previous_point(model, unit_name), None, BRANCH, 0)]
    row = 1
    for part in unit.part_order():
        if part == "compress_relu":
            continue  # drawn with its BN, as in the paper's "BN ReLU" box
        modules = (f"{unit_name}.{part}",)
        groups, macs, params, active = None, 0, 0, True
        if part.endswith("_conv"):
            operation, groups = _conv_words(unit, part)
            op = _op(cost, part)
            macs, params = op.macs, op.params
        elif part == "shuffle":
            active = unit.shuffle.enabled and unit.shuffle.groups > 1
            if not draw_shuffle:
                continue
            groups = unit.shuffle.groups
            index_map = "(C/g, g) reshape, the inverse of the paper's map" if unit.shuffle.inverse \
                else "(g, C/g) reshape, transpose, flatten"
            operation = f"channel shuffle over {groups} groups: {index_map}" if active \
                else f"channel shuffle: identity ({'one group' if groups == 1 else 'switched off'})"
        else:
            operation = "batch norm + ReLU" if part == "compress_bn" else "batch norm"
            params = _bn_params(unit, part)
            if part == "compress_bn":
                modules = (*modules, f"{unit_name}.compress_relu")
        shape = shapes["compress_relu" if part == "compress_bn" else part]
        nodes.append(DiagramNode(part, TITLES[part], operation, KINDS[part], groups, shape, macs, params, modules,
                                 point_name(unit_name, POINTS[part]), None, BRANCH, row, active))
        row += 1
    edges = [(a.key, b.key) for a, b in zip(nodes, nodes[1:])]
    if unit.stride == 2:
        shortcut_slice = unit.shortcut_slice()
        nodes.append(DiagramNode(
            "shortcut", TITLES["shortcut"], "3x3 average pool, stride 2 (the shortcut)", KINDS["shortcut"], None,
            shapes["shortcut"], 0, 0, (f"{unit_name}.shortcut",), point_name(unit_name, "output"),
            (shortcut_slice.start, shortcut_slice.stop), SHORTCUT, row // 2))
        first, second = ("shortcut", "branch") if unit.layout.shortcut_first else ("branch", "shortcut")
        merge_title, merge_words = "Concat ReLU", f"concatenate ({first} channels first), then ReLU"
        edges += [("input", "shortcut"), ("shortcut", "merge"), (nodes[-2].key, "merge")]
    else:
        merge_title, merge_words = "Add ReLU", "add the identity shortcut, then ReLU"
        edges += [("input", "merge"), (nodes[-1].key, "merge")]
    nodes.append(DiagramNode("merge", merge_title, merge_words, KINDS["merge"], None, shapes["output"], 0, 0,
                             (unit_name, f"{unit_name}.out_relu"), point_name(unit_name, "output"), None, BRANCH,
                             row))
    return UnitDiagram(unit_name, panel or ("b" if unit.stride == 1 else "c"), unit.stride, unit.groups,
                       unit.layout.name, shapes["input"], tuple(nodes), tuple(dict.fromkeys(edges)))


def live_unit_diagram(model: ShuffleNetV1, unit_name: str, x: torch.Tensor) -> UnitDiagram:
    """The diagram of a unit of a real model on the input `x` (1, 3, S, S): shapes from a forward hook,
    multiply-adds and parameters from `flops.model_report` at size S."""
    if x.dim() != 4 or x.shape[0] != 1 or x.shape[-1] != x.shape[-2]:
        raise ValueError(f"expected one square image (1, 3, S, S), got {tuple(x.shape)}")
    shapes = capture_unit_shapes(model, unit_name, x)
    return build_diagram(model, unit_name, shapes, model_report(model, int(x.shape[-1])))


def shapes_from_features(model: ShuffleNetV1, unit_name: str, features: dict[str, torch.Tensor]) -> dict[str, Shape]:
    """The shapes `capture_unit_shapes` records, read from `features.capture_features` of the same input, so that
    a page that has captured every point already needs no second forward pass. A conv and its BN (and ReLU)
    share a shape; the pooled shortcut keeps the input's channels at the output's size."""
    unit = unit_of(model, unit_name)

    def shape(point: str) -> Shape:
        return tuple(features[point].shape[1:])

    compress, shuffled, depthwise, expand, output = (shape(point_name(unit_name, part)) for part in
                                                    ("compress_relu", "shuffle", "depthwise_bn", "expand_bn", "output"))
    shapes = {"input": shape(_previous_point(model, unit_name)), "output": output, "out_relu": output,
              "compress_conv": compress, "compress_bn": compress, "compress_relu": compress, "shuffle": shuffled,
              "depthwise_conv": depthwise, "depthwise_bn": depthwise, "expand_conv": expand, "expand_bn": expand}
    shapes["shortcut"] = (shapes["input"][0], *output[1:]) if unit.stride == 2 else shapes["input"]
    return shapes


def captured_unit_diagram(model: ShuffleNetV1, unit_name: str, features: dict[str, torch.Tensor],
                          size: int) -> UnitDiagram:
    """`live_unit_diagram` of the input of side `size` whose every point `features` holds (see
    `features.capture_features`): the same diagram, without running the model again."""
    return build_diagram(model, unit_name, shapes_from_features(model, unit_name, features), model_report(model, size))


def _shapes_from_report(unit: ShuffleUnit, cost: UnitCost) -> dict[str, Shape]:
    """Part shapes of a unit as flops.py computes them (used where no picture runs through the unit)."""
    compress, depthwise = _op(cost, "compress_conv").output_shape, _op(cost, "depthwise_conv").output_shape
    expand = _op(cost, "expand_conv").output_shape
    shapes = {"input": cost.input_shape, "output": cost.output_shape, "compress_conv": compress,
              "compress_bn": compress, "compress_relu": compress, "shuffle": _op(cost, "shuffle").output_shape,
              "depthwise_conv": depthwise, "depthwise_bn": depthwise, "expand_conv": expand, "expand_bn": expand}
    if unit.stride == 2:
        shapes["shortcut"] = _op(cost, "shortcut").output_shape
    return shapes


def dense_counterpart(model: ShuffleNetV1, unit_name: str, size: int) -> UnitDiagram:
    """Panel (a): the same unit with dense 1x1 convolutions and no shuffle, at the same place of the network
    (same channels, bottleneck, stride and input size), costed by `flops.model_report`.

    The structure is built on the meta device: it has shapes and parameter counts but no weights, so no
    picture runs through it; its shapes are those flops.py computes.
    """
    unit = unit_of(model, unit_name)
    stage, _, child = unit_name.partition(".")
    with torch.device("meta"):
        twin = ShuffleNetV1(model.config)
        dense = ShuffleUnit(unit.compress_conv.in_channels, unit.branch_channels + unit.shortcut_channels, 1,
                            unit.stride, group_first_conv=False, shuffle=False, layout=unit.layout)
        setattr(getattr(twin, stage), child, dense)
    report = model_report(twin, size)
    cost = next(u for u in report.units if u.name == unit_name)
    return build_diagram(twin, unit_name, _shapes_from_report(dense, cost), report, panel="a", draw_shuffle=False)


@dataclass(frozen=True)
class Stride2Arithmetic:
    """The channel bookkeeping of a stride-2 unit, read from the model."""

    unit: str
    groups: int
    in_channels: int
    out_channels: int
    shortcut_channels: int
    branch_channels: int
    bottleneck_channels: int
    shortcut_first: bool

    def lines(self) -> list[str]:
        """The worked example, one step per line."""
        if self.shortcut_first:
            order = f"the pooled shortcut first, {self.shortcut_channels} + {self.branch_channels}"
        else:
            order = f"the branch first, {self.branch_channels} + {self.shortcut_channels}"
        return [
            f"{self.unit} takes {self.in_channels} channels to {self.out_channels}.",
            f"The 3x3 average-pooled shortcut keeps the {self.in_channels} input channels: "
            f"{self.shortcut_channels} of the output.",
            f"So the branch makes {self.out_channels} - {self.shortcut_channels} = {self.branch_channels} channels "
            f"({self._last_conv_words()}).",
            self._bottleneck_line(),
            f"Concatenation, {order} = {self.out_channels} channels.",
        ]

    def _bottleneck_line(self) -> str:
        if self.bottleneck_channels * BOTTLENECK_RATIO == self.out_channels:
            return (f"The bottleneck is the unit's output / {BOTTLENECK_RATIO} = {self.out_channels} / "
                    f"{BOTTLENECK_RATIO} = {self.bottleneck_channels} channels.")
        return f"The bottleneck has {self.bottleneck_channels} channels."

    def _last_conv_words(self) -> str:
        return f"its last 1x1 GConv, {self.groups} groups" if self.groups > 1 else "its last 1x1 conv, dense with g=1"

    def bottleneck_note(self) -> str:
        """How the paper's words about the bottleneck read against this unit's channels."""
        branch_quarter = f"{self.branch_channels / BOTTLENECK_RATIO:g}"
        if self.bottleneck_channels * BOTTLENECK_RATIO == self.out_channels:
            return (f"The paper sets the bottleneck to a quarter of \u201cthe output channels\u201d; the published "
                    f"code of both pretrained families (and this model) takes a quarter of the whole unit's output, "
                    f"{self.out_channels}/{BOTTLENECK_RATIO} = {self.bottleneck_channels}, not of the branch's "
                    f"{self.branch_channels} ({branch_quarter}).")
        return (f"The paper sets the bottleneck to a quarter of \u201cthe output channels\u201d; this model's "
                f"{self.bottleneck_channels} is a quarter neither of the unit's output ({self.out_channels}) nor of "
                f"the branch's {self.branch_channels} ({branch_quarter}).")


def stride2_arithmetic(model: ShuffleNetV1, unit_name: str) -> Stride2Arithmetic:
    """The worked example of a stride-2 unit: input, output, shortcut, branch and bottleneck channels."""
    unit = unit_of(model, unit_name)
    if unit.stride != 2:
        raise ValueError(f"{unit_name} has stride 1: it adds its input, so it has no concatenated shortcut")
    return Stride2Arithmetic(unit_name, unit.groups, unit.compress_conv.in_channels,
                             unit.branch_channels + unit.shortcut_channels, unit.shortcut_channels,
                             unit.branch_channels, unit.mid_channels, unit.layout.shortcut_first)


# The node that stands for each feature-map point inside a unit (the inverse of POINTS, one node per point).
POINT_NODES: dict[str, str] = {"compress_relu": "compress_bn", "shuffle": "shuffle", "depthwise_bn": "depthwise_bn",
                               "expand_bn": "expand_bn", "output": "merge"}


def node_of_point(point: str) -> tuple[str, str]:
    """(unit, node key) of the diagram box whose output a feature-map point shows, so that a page showing
    `stage2.unit1.shuffle` can link to that box of the unit page (?unit=stage2.unit1&node=shuffle)."""
    unit_name, _, part = point.rpartition(".")
    if part not in POINT_NODES or not unit_name:
        raise ValueError(f"{point!r} is no point inside a unit; points are <unit>.{'|'.join(POINT_NODES)}")
    return unit_name, POINT_NODES[part]


def shuffle_moves(unit: ShuffleUnit) -> bool:
    """Whether the unit's channel shuffle moves any channel (it does not with one group, or when switched off)."""
    channels = unit.mid_channels
    return not torch.equal(unit.shuffle.permutation(channels), torch.arange(channels))


def _pointwise_name(conv: torch.nn.Conv2d) -> str:
    return "1x1 GConv" if conv.groups > 1 else "dense 1x1 conv"


def shuffle_place_sentence(unit: ShuffleUnit) -> str:
    """Where this unit's channel shuffle acts, each clause chosen by the unit: whether the shuffle moves any
    channel (and why not), and which part it follows in the unit's forward order."""
    if not shuffle_moves(unit):
        if unit.shuffle.groups == 1:
            return "With g=1 the 1x1 convolutions are dense, so the shuffle moves nothing (drawn dashed)."
        sentence = ("This model's channel shuffle is switched off (the paper's \u201cno shuffle\u201d ablation, "
                    "Table 3): it leaves every channel where it is (drawn dashed)")
        if unit.stride == 1 and unit.compress_conv.groups == unit.expand_conv.groups == unit.groups > 1:
            sentence += ", so each group of this unit's output hears only the same group of its input"
        return sentence + "."
    order = unit.part_order()
    follows = order[order.index("shuffle") - 1]
    if follows == "compress_relu":
        return (f"This model shuffles after the first {_pointwise_name(unit.compress_conv)} and its BN and ReLU, "
                f"as the paper draws it.")
    return ("This model shuffles after the 3x3 depthwise conv and its BN (the official code): the depthwise conv "
            "keeps every channel apart, so shuffling before or after it connects the same groups of the next "
            "1x1 GConv.")


def figure2_name(unit: ShuffleUnit) -> str:
    """Which panel of the paper's Figure 2 this unit is, and how it departs from the drawing (shuffle switched
    off, one group, or the shuffle after the depthwise conv)."""
    panel = "Figure 2b" if unit.stride == 1 else "Figure 2c"
    if not shuffle_moves(unit):
        return f"the paper's {panel} with g=1" if unit.shuffle.groups == 1 else \
            f"the paper's {panel} with the shuffle switched off"
    order = unit.part_order()
    if order[order.index("shuffle") - 1] == "compress_relu":
        return f"the paper's {panel}"
    return f"{panel} in the official code's order: the shuffle after the depthwise conv"


def unit_lesson_text(unit: ShuffleUnit) -> str:
    """What a ShuffleNet unit is, in this unit's numbers, and where this model shuffles."""
    compress, expand = unit.compress_conv, unit.expand_conv
    if unit.stride == 1:
        what = (f"A ShuffleNet unit is a residual bottleneck: a {_pointwise_name(compress)} maps "
                f"{compress.in_channels} channels to {compress.out_channels}, a 3x3 depthwise conv filters each "
                f"channel alone, a {_pointwise_name(expand)} makes {expand.out_channels} channels again, and the "
                f"input is added to them.")
    else:
        what = (f"A ShuffleNet unit with stride 2 halves the map: a {_pointwise_name(compress)} maps "
                f"{compress.in_channels} channels to {compress.out_channels}, a 3x3 depthwise conv with stride 2 "
                f"filters each channel alone, a {_pointwise_name(expand)} makes {expand.out_channels} channels, and "
                f"the input, average-pooled, is concatenated to them: {unit.branch_channels + unit.shortcut_channels} "
                f"channels.")
    return f"{what} {shuffle_place_sentence(unit)}"
