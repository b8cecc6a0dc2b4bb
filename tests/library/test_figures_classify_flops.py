"""Figures of the Classify and FLOPs pages carry exactly the numbers they are given."""

import numpy as np
import pytest

from shufflenet_viz.figures.classify import confusion_figure, per_class_accuracy_figure, top_k_figure
from shufflenet_viz.figures.flops import (paper_comparison_rows, params_figure, share_figure, unit_cost_figure,
                                          unit_table_rows, unit_totals)
from shufflenet_viz.flops import flop_report
from shufflenet_viz.inference import Classification
from shufflenet_viz.paper import TABLE1_MFLOPS

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def test_top_k_bars_are_the_five_largest_probabilities_most_likely_on_top():
    probabilities = np.array([0.01, 0.02, 0.05, 0.40, 0.03, 0.30, 0.04, 0.10, 0.03, 0.02])
    answer = Classification("m", CLASSES, probabilities, 0.001)
    bar = top_k_figure(answer, 5).data[0]
    assert list(bar.y) == ["frog", "bird", "horse", "dog", "cat"]  # drawn bottom-up
    assert list(bar.x) == [0.04, 0.05, 0.10, 0.30, 0.40]
    assert list(bar.text) == ["4.0%", "5.0%", "10.0%", "30.0%", "40.0%"]
    assert bar.orientation == "h"


def test_confusion_matrix_keeps_rows_as_true_classes():
    matrix = [[5, 1, 0], [2, 7, 1], [0, 0, 9]]
    heatmap = confusion_figure(matrix, ["a", "b", "c"]).data[0]
    assert [list(row) for row in heatmap.z] == matrix
    assert list(heatmap.x) == ["a", "b", "c"] and list(heatmap.y) == ["a", "b", "c"]
    assert [list(row) for row in heatmap.text] == [["5", "1", "0"], ["2", "7", "1"], ["0", "0", "9"]]
    with pytest.raises(ValueError, match="3x3"):
        confusion_figure([[1, 2], [3, 4]], ["a", "b", "c"])


def test_per_class_accuracy_bars():
    per_class = {"cat": 0.5, "dog": 0.75, "ship": 0.9}
    bar = per_class_accuracy_figure(per_class).data[0]
    assert dict(zip(bar.y, bar.x)) == per_class
    assert list(bar.y) == ["ship", "dog", "cat"]  # first class on top


@pytest.mark.parametrize("groups,width,size", [(1, 1.0, 224), (3, 1.0, 224), (8, 0.5, 64)])
def test_stacked_bars_sum_to_each_units_multiply_adds(groups, width, size):
    report = flop_report(groups, width, size, 1000)
    figure = unit_cost_figure(report)
    traces = figure.data
    for index, unit in enumerate(report.units):
        assert sum(trace.y[index] for trace in traces) * 1e6 == pytest.approx(unit.macs)
    assert unit_totals(report) == pytest.approx([u.macs / 1e6 for u in report.units])
    # Only ops with multiply-adds get a trace: no shuffle, shortcut or elementwise row.
    assert [t.name for t in traces] == ["1x1 GConv (compress)", "3x3 depthwise conv", "1x1 GConv (expand)",
                                        "3x3 conv (stem)", "fully connected"]
    unit = report.units[5]  # a stride-1 unit of stage 3
    compress = next(op for op in unit.ops if op.op == "compress_conv")
    assert traces[0].y[5] * 1e6 == pytest.approx(compress.macs)


def test_stacked_bars_with_other_operations():
    report = flop_report(3, 1.0, 224, 1000)
    figure = unit_cost_figure(report, include_other_ops=True, y_max=50)
    for index, unit in enumerate(report.units):
        assert sum(trace.y[index] for trace in figure.data) * 1e6 == pytest.approx(unit.macs + unit.other_ops)
    names = [t.name for t in figure.data]
    assert "shortcut" in names and "elementwise (BN, ReLU, add)" in names and "channel shuffle" not in names
    assert tuple(figure.layout.yaxis.range) == (0, 50)


def test_parameters_per_unit():
    reports = [flop_report(1, 1.0, 224), flop_report(3, 1.0, 224)]
    figure = params_figure(reports, ["g=1", "g=3"], ["#000000", "#111111"])
    for trace, report in zip(figure.data, reports):
        assert [v * 1e3 for v in trace.y] == pytest.approx([u.params for u in report.units])
        assert sum(trace.y) * 1e3 == pytest.approx(report.total_params)


def test_time_and_mac_shares():
    report = flop_report(3, 1.0, 64, 10)
    seconds = {unit.name: 0.001 * (index + 1) for index, unit in enumerate(report.units)}
    rows = unit_table_rows(report, seconds)
    total = sum(seconds.values())
    assert [r["time_share_percent"] for r in rows] == pytest.approx(
        [100 * seconds[u.name] / total for u in report.units], abs=0.01)
    assert [r["mac_share_percent"] for r in rows] == pytest.approx(
        [100 * u.macs / report.total_macs for u in report.units], abs=0.01)
    assert rows[3]["time_ms"] == 4.0 and rows[3]["macs"] == report.units[3].macs
    figure = share_figure(report, seconds)
    assert list(figure.data[1].y) == [r["time_share_percent"] for r in rows]
    # A unit without a measurement gets no time rather than a made-up one.
    del seconds["stage3.unit2"]
    missing = [r for r in unit_table_rows(report, seconds) if r["unit"] == "stage3.unit2"][0]
    assert missing["time_ms"] is None and missing["time_share_percent"] is None


def test_paper_comparison_rows():
    reports = {g: flop_report(g, 1.0, 224, 1000) for g in TABLE1_MFLOPS}
    rows = paper_comparison_rows(reports)
    assert [r["paper_mflops"] for r in rows] == [143, 140, 137, 133, 137]
    for row in rows:
        computed = reports[row["groups"]].total_macs / 1e6
        assert row["computed_mflops"] == round(computed, 1)
        assert row["difference_percent"] == pytest.approx(100 * (computed / row["paper_mflops"] - 1), abs=0.005)
