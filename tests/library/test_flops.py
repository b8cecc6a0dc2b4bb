"""FLOP accounting against the paper's Table 1 and against torch's own FlopCounterMode."""

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from shufflenet_viz.flops import flop_report, model_report, time_units
from shufflenet_viz.model import build_model, count_parameters

TABLE1_MFLOPS = {1: 143, 2: 140, 3: 137, 4: 133, 8: 137}


@pytest.mark.parametrize("groups", list(TABLE1_MFLOPS))
def test_complexity_within_1_5_percent_of_table1(groups):
    report = flop_report(groups, 1.0, 224, 1000)
    assert report.paper_mflops == TABLE1_MFLOPS[groups]
    assert abs(report.total_macs / 1e6 - TABLE1_MFLOPS[groups]) / TABLE1_MFLOPS[groups] < 0.015


@pytest.mark.parametrize("groups,width,size", [(1, 1.0, 224), (2, 1.0, 224), (3, 1.0, 224), (4, 1.0, 224),
                                               (8, 1.0, 224), (3, 0.5, 160), (1, 0.25, 97), (3, 2.0, 64)])
def test_macs_agree_exactly_with_flop_counter_mode(groups, width, size):
    model = build_model(groups, width, 1000).eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.randn(1, 3, size, size))
    report = model_report(model, size)
    assert counter.get_total_flops() == 2 * report.total_macs  # FlopCounterMode counts 2 FLOPs per multiply-add
    assert report.total_params == count_parameters(model)


def test_per_unit_rows_and_literal_unit_costs():
    report = flop_report(3, 1.0, 224)
    names = [u.name for u in report.units]
    assert names[0] == "stem" and names[-1] == "classifier" and len(names) == 18
    unit = report.units[2]  # stage2.unit2: 240 -> 60 (g=3) -> dw -> 240 (g=3), at 28x28
    assert unit.name == "stage2.unit2"
    ops = {op.op: op for op in unit.ops}
    assert list(ops) == ["compress_conv", "shuffle", "depthwise_conv", "expand_conv", "shortcut", "elementwise"]
    assert ops["compress_conv"].macs == 60 * 28 * 28 * (240 // 3) == 3_763_200
    assert ops["depthwise_conv"].macs == 60 * 28 * 28 * 9 == 423_360
    assert ops["expand_conv"].macs == 240 * 28 * 28 * (60 // 3) == 3_763_200
    assert ops["shuffle"].macs == ops["shuffle"].other_ops == 0
    assert unit.params == 240 * 60 // 3 + 60 * 9 + 60 * 240 // 3 + 2 * (60 + 60 + 240)
    first = report.units[1]
    assert first.name == "stage2.unit1" and first.output_shape == (240, 28, 28)
    assert {op.op: op for op in first.ops}["shortcut"].other_ops == 24 * 28 * 28 * 9


def test_json_shape():
    data = flop_report(1, 1.0, 224).to_dict()
    assert {"units", "total_macs", "total_params"} <= set(data)
    assert data["total_macs"] == sum(u["macs"] for u in data["units"]) == 143_078_976
    assert data["total_params"] == 1_531_936
    assert all({"name", "ops", "macs", "params"} <= set(u) for u in data["units"])


def test_invalid_size_is_refused():
    with pytest.raises(ValueError, match="input size"):
        flop_report(3, 1.0, 0)


def test_time_units_measures_every_unit_and_leaves_no_hooks():
    model = build_model(3, 0.25, 10).eval()
    seconds = time_units(model, 64, repeats=1)
    assert list(seconds) == ["stem", *model.unit_names(), "classifier"]
    assert all(s > 0 for s in seconds.values())
    assert all(not m._forward_pre_hooks for m in model.modules())


def test_whole_network_time_is_a_real_forward_pass():
    """Issue 14, finding 5: the whole-network time is the model called as a whole, not the units' sum."""
    from shufflenet_viz.flops import describe_timing, time_network

    model = build_model(3, 0.25, 10).eval()
    calls = []
    handle = model.register_forward_pre_hook(lambda module, args: calls.append(tuple(args[0].shape)))
    try:
        timing = time_network(model, 64, repeats=3)
    finally:
        handle.remove()
    # A warm-up and 3 timed passes of the whole model (the units' inputs are recorded through forward_features).
    assert calls == [(1, 3, 64, 64)] * 4
    assert list(timing.units) == list(timing.small_units) == ["stem", *model.unit_names(), "classifier"]
    assert timing.forward > 0 and timing.units_total == pytest.approx(sum(timing.units.values()))
    text = describe_timing(flop_report(3, 0.25, 64, 10), timing)
    assert f"A whole forward pass took {timing.forward * 1000:.1f} ms (median of 3)" in text
    assert f"add up to {timing.units_total * 1000:.1f} ms ({timing.units_total / timing.forward:.0%} of it)" in text


def test_timing_caption_follows_the_measured_condition():
    """The explanation of the shares is chosen by the measured fixed cost, with the numbers it names."""
    from shufflenet_viz.flops import NetworkTiming, describe_timing

    report = flop_report(3, 1.0, 64, 10)
    names = [u.name for u in report.units]
    flat = NetworkTiming(64, 3, 0.010, {n: 0.0005 for n in names}, {n: 0.0004 for n in names})
    text = describe_timing(report, flat)
    assert "does not grow with the work" in text and "take 80% of it" in text
    shares = [100 * u.macs / report.total_macs for u in report.units if u.name.startswith("stage")]
    assert f"range from {min(shares):.1f}% to {max(shares):.1f}%" in text
    assert f"between {100 / len(names):.1f}% and {100 / len(names):.1f}%" in text
    work = NetworkTiming(64, 3, 0.010, {u.name: u.macs * 1e-10 + 1e-6 for u in report.units},
                         {n: 1e-7 for n in names})
    text = describe_timing(report, work)
    assert "most of it grows with the work" in text
    per_mac = {u.name: (u.macs * 1e-10 + 1e-6) / u.macs * 1e9 for u in report.units if u.name.startswith("stage")}
    slow = max(per_mac, key=per_mac.get)
    assert f"{per_mac[slow]:.2f} ns in {slow}" in text


def test_flop_report_of_the_official_imagenet_models():
    """Issue 10: the official 0.5x checkpoints' architecture (no classifier bias): 37.6 / 40.5 MFLOPs."""
    assert round(flop_report(3, 0.5, 224, 1000, layout="official").total_macs / 1e6, 1) == 37.6
    assert flop_report(3, 0.5, 224, 1000, layout="official").total_params == 717_324
    assert round(flop_report(8, 0.5, 224, 1000, layout="official").total_macs / 1e6, 1) == 40.5
    assert flop_report(8, 0.5, 224, 1000, layout="official").total_params == 1_010_448
    for layout in ("paper", "official"):
        model = build_model(8, 0.5, 1000, layout=layout).eval()
        assert flop_report(8, 0.5, 224, 1000, layout=layout).total_params == count_parameters(model)
        assert flop_report(8, 0.5, 224, 1000, layout=layout).to_dict() == model_report(model, 224).to_dict()
