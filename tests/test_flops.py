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
