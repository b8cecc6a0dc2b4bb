"""The cost arithmetic of section 3.2: the three formulas against flops.py and PyTorch's own counter, and the
widths a fixed budget affords against Table 1 (model.STAGE_OUT_CHANNELS)."""

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from shufflenet_viz.cost import (affordable_width, affordable_widths, network_mflops, resnet_macs, resnext_macs,
                                 round_to_groups, setting_problem, shufflenet_macs, stride1_settings,
                                 table1_setting, unit_macs)
from shufflenet_viz.flops import flop_report
from shufflenet_viz.model import GROUPS, STAGE_OUT_CHANNELS
from shufflenet_viz.paper import TABLE1_MFLOPS


def counted_macs(layers: nn.Module, c: int, h: int, w: int) -> int:
    """Multiply-adds PyTorch counts for one forward pass (it counts 2 FLOPs per multiply-add)."""
    with FlopCounterMode(display=False) as counter:
        layers(torch.zeros(1, c, h, w))
    return counter.get_total_flops() // 2


@pytest.mark.parametrize("groups", GROUPS)
def test_shufflenet_formula_equals_flops_py_for_every_stride1_unit(groups):
    report = flop_report(groups, 1.0, 224, 1000)
    settings = stride1_settings(report)
    assert len(settings) == 13  # 16 units, 3 of them stride 2
    for setting in settings:
        assert shufflenet_macs(setting.c, setting.m, setting.g, setting.h, setting.w) == setting.flops_macs, setting


def test_formulas_equal_pytorch_counts():
    c, m, g, h, w = 240, 60, 3, 14, 14
    resnet = nn.Sequential(nn.Conv2d(c, m, 1, bias=False), nn.Conv2d(m, m, 3, padding=1, bias=False),
                           nn.Conv2d(m, c, 1, bias=False))
    resnext = nn.Sequential(nn.Conv2d(c, m, 1, bias=False), nn.Conv2d(m, m, 3, padding=1, groups=g, bias=False),
                            nn.Conv2d(m, c, 1, bias=False))
    shufflenet = nn.Sequential(nn.Conv2d(c, m, 1, groups=g, bias=False),
                               nn.Conv2d(m, m, 3, padding=1, groups=m, bias=False),
                               nn.Conv2d(m, c, 1, groups=g, bias=False))
    assert resnet_macs(c, m, h, w) == counted_macs(resnet, c, h, w)
    assert resnext_macs(c, m, g, h, w) == counted_macs(resnext, c, h, w)
    assert shufflenet_macs(c, m, g, h, w) == counted_macs(shufflenet, c, h, w)
    assert unit_macs(c, m, g, h, w) == {"resnet": resnet_macs(c, m, h, w), "resnext": resnext_macs(c, m, g, h, w),
                                        "shufflenet": shufflenet_macs(c, m, g, h, w)}


def test_the_budget_affords_table1_widths():
    budget, rows = affordable_widths()
    assert budget == shufflenet_macs(144, 36, 1, 28, 28) == 8_382_528
    assert [row.groups for row in rows] == list(GROUPS)
    for row in rows:
        assert row.stage_widths == STAGE_OUT_CHANNELS[row.groups], row
        assert row.matches_table1
        # The exact width spends the budget; the next width whose bottleneck splits into g groups is too wide.
        assert shufflenet_macs(row.exact, row.exact / 4, row.groups, 28, 28) == pytest.approx(budget)
        assert shufflenet_macs(row.affordable, row.affordable / 4, row.groups, 28, 28) <= budget
        wider = row.affordable + 4 * row.groups
        assert shufflenet_macs(wider, wider / 4, row.groups, 28, 28) > budget
    assert round_to_groups(246.6, 3) == 240 and round_to_groups(5.0, 8) == 32
    with pytest.raises(ValueError):
        affordable_width(0, 3, 28, 28)


def test_network_cost_at_table1_widths_is_table1():
    for groups in (1, 8):
        assert network_mflops(groups) == pytest.approx(TABLE1_MFLOPS[groups], rel=0.02)


def test_table1_setting_and_problems():
    assert table1_setting(3) == (240, 60, 3, 28, 28)
    assert table1_setting(8, stage=2) == (1536, 384, 8, 7, 7)
    assert setting_problem(240, 60, 3, 28, 28) is None
    assert "multiples of g" in setting_problem(240, 61, 3, 28, 28)
    assert "whole number" in setting_problem(0, 60, 3, 28, 28)
    assert "whole number" in setting_problem(240, 60, 3, 28, 10 ** 6)
