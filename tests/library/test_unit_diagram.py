"""The unit diagram (the paper's Figure 2) against the real models: every node's shape equals a forward hook's,
its multiply-adds and parameters equal flops.py's, the shuffle sits where the model applies it, and the
stride-2 worked example comes out of the model's own numbers."""

import pytest
import torch

from shufflenet_viz.cost import shufflenet_macs
from shufflenet_viz.figures.unit import node_at, unit_diagram_figure
from shufflenet_viz.flops import model_report
from shufflenet_viz.model import build_model
from shufflenet_viz.preprocess import preprocess_image
from shufflenet_viz.features import capture_features
from shufflenet_viz.unit_diagram import (BRANCH, capture_unit_shapes, captured_unit_diagram, dense_counterpart,
                                         live_unit_diagram, shapes_from_features, stride2_arithmetic)

# The module whose output each node shows (compress_bn stands for BN + ReLU; merge for the unit's output).
NODE_MODULE = {"compress_bn": "compress_relu", "merge": None}


def hooked_shapes(model, unit_name: str, x: torch.Tensor) -> dict[str, tuple]:
    """Output shape of every child of the unit and of the unit itself (key None), and its input ("input"),
    read with plain forward hooks, independently of unit_diagram's own capture."""
    unit = dict(model.named_modules())[unit_name]
    shapes, handles = {}, []
    for name, child in unit.named_children():
        handles.append(child.register_forward_hook(
            lambda _m, _i, out, name=name: shapes.__setitem__(name, tuple(out.shape[1:]))))
    handles.append(unit.register_forward_hook(
        lambda _m, inputs, out: shapes.update({None: tuple(out.shape[1:]), "input": tuple(inputs[0].shape[1:])})))
    try:
        with torch.no_grad():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    return shapes


def check_every_unit(model, x: torch.Tensor) -> int:
    """Compare the diagram of every unit with hooks and flops.py; returns how many nodes were checked."""
    report = model_report(model, int(x.shape[-1]))
    checked = 0
    for unit_name, unit in zip(model.unit_names(), model.units()):
        diagram = live_unit_diagram(model, unit_name, x)
        shapes = hooked_shapes(model, unit_name, x)
        cost = next(u for u in report.units if u.name == unit_name)
        ops = {op.op: op for op in cost.ops}
        for node in diagram.nodes:
            module = NODE_MODULE.get(node.key, node.key)
            assert node.shape == shapes[module], (unit_name, node.key)
            if node.key.endswith("_conv"):
                assert (node.macs, node.params) == (ops[node.key].macs, ops[node.key].params), (unit_name, node.key)
                assert node.shape == ops[node.key].output_shape
                assert node.groups == getattr(unit, node.key).groups
            elif node.key.endswith("_bn"):
                assert node.macs == 0
                assert node.params == sum(p.numel() for p in getattr(unit, node.key).parameters())
            else:
                assert (node.macs, node.params) == (0, 0), (unit_name, node.key)
            checked += 1
        bn_params = sum(n.params for n in diagram.nodes if n.key.endswith("_bn"))
        assert bn_params == ops["elementwise"].params
        assert (diagram.macs, diagram.params) == (cost.macs, cost.params), unit_name
        assert diagram.output_shape == cost.output_shape == shapes[None]
        branch = [n.key for n in diagram.nodes if n.column == BRANCH and n.key not in ("input", "merge")]
        assert branch == [part for part in unit.part_order() if part != "compress_relu"]
        assert diagram.node("shuffle").active == (unit.shuffle.groups > 1)
        assert diagram.panel == ("b" if unit.stride == 1 else "c")
        assert ("shortcut" in [n.key for n in diagram.nodes]) == (unit.stride == 2)
    return checked


def test_cifar_models_every_unit(cifar_pair, sample_image_path):
    from shufflenet_viz.images import load_image

    picture = load_image(sample_image_path.read_bytes(), sample_image_path.name).image
    for loaded in cifar_pair:
        x = preprocess_image(picture, loaded.preprocessing)
        assert check_every_unit(loaded.model, x) == 3 * 10 + 13 * 9  # the 3 stride-2 units add a pool node


def test_official_imagenet_model_every_unit(imagenet_models, sample_image_path):
    from shufflenet_viz.images import load_image

    picture = load_image(sample_image_path.read_bytes(), sample_image_path.name).image
    loaded = imagenet_models["imagenet_official_g3_w0.5"]
    assert loaded.model.config.layout == "official"
    x = preprocess_image(picture, loaded.preprocessing)
    check_every_unit(loaded.model, x)
    diagram = live_unit_diagram(loaded.model, "stage2.unit2", x)
    assert diagram.node("shuffle").shape == (30, 28, 28)  # 0.5x g=3: 120 / 4 bottleneck channels at 28x28
    # The official code shuffles after the depthwise conv + BN, just before the second 1x1 GConv.
    assert [n.key for n in diagram.nodes][3:7] == ["depthwise_conv", "depthwise_bn", "shuffle", "expand_conv"]


def test_worked_example_g3_1x():
    model = build_model(3, 1.0, 10).eval()
    example = stride2_arithmetic(model, "stage2.unit1")
    assert (example.in_channels, example.out_channels, example.shortcut_channels, example.branch_channels,
            example.bottleneck_channels) == (24, 240, 24, 216, 60)
    text = " ".join(example.lines())
    assert "24 channels to 240" in text and "240 - 24 = 216" in text and "240 / 4 = 60" in text
    diagram = live_unit_diagram(model, "stage2.unit1", torch.zeros(1, 3, 224, 224))
    assert diagram.node("compress_conv").shape == (60, 56, 56)
    assert diagram.node("depthwise_conv").shape == (60, 28, 28)
    assert diagram.node("expand_conv").shape == (216, 28, 28)
    assert diagram.node("shortcut").shape == (24, 28, 28)
    assert diagram.node("merge").shape == (240, 28, 28)
    assert diagram.node("shortcut").channels == (216, 240)  # paper layout: branch first, then the shortcut
    with pytest.raises(ValueError, match="stride 1"):
        stride2_arithmetic(model, "stage2.unit2")


def test_dense_counterpart_is_the_formula_with_one_group():
    model = build_model(3, 1.0, 1000)
    for unit_name in ("stage2.unit2", "stage3.unit5", "stage4.unit4"):
        unit = dict(model.named_modules())[unit_name]
        dense = dense_counterpart(model, unit_name, 224)
        c, m = unit.compress_conv.in_channels, unit.mid_channels
        h, w = dense.input_shape[1:]
        assert dense.panel == "a" and "shuffle" not in [n.key for n in dense.nodes]
        assert dense.macs == shufflenet_macs(c, m, 1, h, w)
        assert dense.node("compress_conv").groups == dense.node("expand_conv").groups == 1
        assert dense.params > live_unit_diagram(model, unit_name, torch.zeros(1, 3, 224, 224)).params


def test_capture_leaves_no_hook(cifar_pair):
    model = cifar_pair[1].model
    before = sum(len(m._forward_hooks) for m in model.modules())
    capture_unit_shapes(model, "stage3.unit1", torch.zeros(1, 3, 64, 64))
    assert sum(len(m._forward_hooks) for m in model.modules()) == before
    with pytest.raises(ValueError, match="not a unit"):
        capture_unit_shapes(model, "stage9.unit1", torch.zeros(1, 3, 64, 64))


def test_figure_names_every_node_and_reads_a_click():
    model = build_model(3, 1.0, 10).eval()
    diagram = live_unit_diagram(model, "stage2.unit1", torch.zeros(1, 3, 64, 64))
    figure = unit_diagram_figure(diagram, selected="shuffle")
    markers = next(trace for trace in figure.data if trace.name == "nodes")
    assert [row[0] for row in markers.customdata] == [node.key for node in diagram.nodes]
    texts = " ".join([t for trace in figure.data if trace.mode == "text" for t in trace.text]
                     + [note.text for note in figure.layout.annotations])  # the notes beside the boxes
    assert "Channel Shuffle" in texts and "3x3 AVG Pool" in texts and "Concat ReLU" in texts
    assert "216x8x8" in texts and "276.5 k MACs" in texts  # expand conv: 60/3 x 216 x 8 x 8 multiply-adds
    assert node_at({"selection": {"points": [{"customdata": ["depthwise_conv", "x"]}]}}) == "depthwise_conv"
    assert node_at({"selection": {"points": []}}) is None
    assert node_at(None) is None


def test_every_feature_point_has_its_node():
    from shufflenet_viz.features import feature_points
    from shufflenet_viz.unit_diagram import node_of_point

    model = build_model(3, 1.0, 10, layout="official").eval()
    diagrams = {}
    for point in feature_points(model)[1:]:  # the stem is no unit
        unit_name, key = node_of_point(point)
        if unit_name not in diagrams:
            diagrams[unit_name] = live_unit_diagram(model, unit_name, torch.zeros(1, 3, 64, 64))
        assert diagrams[unit_name].node(key).point == point
    with pytest.raises(ValueError, match="no point inside a unit"):
        node_of_point("stem")


@pytest.mark.parametrize("layout, groups", [("paper", 3), ("official", 8), ("paper", 1)])
def test_diagram_from_captured_features_equals_the_live_diagram(layout, groups):
    """The unit page draws its diagram from the activations captured once per picture: the same shapes as the
    unit's own hooks and the same diagram as a forward pass of its own, for every unit of both layouts."""
    model = build_model(groups, 0.5, 10, layout=layout).eval()
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    features = capture_features(model, x)
    for unit_name in model.unit_names():
        assert shapes_from_features(model, unit_name, features) == capture_unit_shapes(model, unit_name, x), unit_name
        assert captured_unit_diagram(model, unit_name, features, 64) == live_unit_diagram(model, unit_name, x), \
            unit_name
