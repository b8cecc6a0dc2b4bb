"""The FLOPs page (with a picture uploaded, as a user arrives at it): totals, bars and tables equal flop_report."""

import time

import pytest

from conftest import page_chart
from shufflenet_viz.flops import flop_report
from shufflenet_viz.model import GROUPS
from shufflenet_viz.paper import TABLE1_MFLOPS

PAGE = "pages/flops.py"
TIMING_WAIT_S = 120


def with_timings(at):
    """Rerun the page until the background timings are shown (the page polls on a server; AppTest does not)."""
    deadline = time.monotonic() + TIMING_WAIT_S
    while not [m for m in at.metric if m.label == "Whole forward pass"]:
        assert time.monotonic() < deadline, "the timings never arrived"
        time.sleep(0.5)
        at.run()
        assert not at.exception, at.exception
    return at


def stacked_totals(figure: dict) -> list[float]:
    """Height of each stacked bar: the sum over traces, unit by unit."""
    traces = figure["data"]
    return [sum(trace["y"][i] for trace in traces) for i in range(len(traces[0]["x"]))]


@pytest.fixture(scope="module")
def flops_page(app_on_page, sample_image_path):
    """The FLOPs page as it first appears; tests that change its widgets open their own."""
    return app_on_page(PAGE, sample_image_path)


def test_default_pair_totals_match_flop_report_and_table1(flops_page):
    at = flops_page
    reports = [flop_report(g, 1.0, 224, 1000) for g in (1, 3)]
    macs = [m for m in at.metric if m.label == "Multiply-adds"]
    assert [m.value for m in macs] == [f"{r.total_macs / 1e6:.1f} M" for r in reports]
    assert [m.delta for m in macs] == [f"{r.total_macs / 1e6 / TABLE1_MFLOPS[r.groups] - 1:+.1%} vs Table 1 "
                                       f"({TABLE1_MFLOPS[r.groups]} M)" for r in reports]
    assert [m.value for m in at.metric if m.label == "Parameters"] == [f"{r.total_params / 1e6:.2f} M"
                                                                       for r in reports]
    for side, report in enumerate(reports):
        figure = page_chart(at, f"flops_units_{side}")
        assert figure["data"][0]["x"] == [u.name for u in report.units]
        assert stacked_totals(figure) == pytest.approx([u.macs / 1e6 for u in report.units])


def test_table1_comparison_lists_every_g(flops_page):
    table = flops_page.dataframe[0].value
    assert list(table["groups"]) == list(GROUPS)
    assert list(table["paper_mflops"]) == [TABLE1_MFLOPS[g] for g in GROUPS]
    assert list(table["computed_mflops"]) == [round(flop_report(g, 1.0, 224, 1000).total_macs / 1e6, 1)
                                              for g in GROUPS]


def test_other_configuration_and_all_operations(app_on_page, sample_image_path):
    at = app_on_page(PAGE, sample_image_path)
    at.radio(key="input").set_value(64)
    at.selectbox(key="right_g").set_value(8)
    at.selectbox(key="right_width").set_value(0.5)
    at.toggle(key="other_ops").set_value(True).run()
    assert not at.exception
    report = flop_report(8, 0.5, 64, 10)
    macs = [m for m in at.metric if m.label == "Multiply-adds"]
    assert macs[1].value == f"{report.total_macs / 1e6:.1f} M"
    assert macs[1].delta == ""  # the paper gives no figure for this setting
    figure = page_chart(at, "flops_units_1")
    assert stacked_totals(figure) == pytest.approx([(u.macs + u.other_ops) / 1e6 for u in report.units])
    assert f"Other operations: {report.total_other_ops / 1e6:.1f} M more." in [c.value for c in at.caption]


def test_measured_time_per_unit_beside_its_share_of_macs(flops_page):
    at = with_timings(flops_page)
    report = flop_report(3, 1.0, 224, 1000)
    units = at.dataframe[2].value  # Table 1, then the left and the right configuration
    assert list(units["unit"]) == [u.name for u in report.units]
    assert list(units["macs"]) == [u.macs for u in report.units]
    assert (units["time_ms"] > 0).all()
    assert units["time_share_percent"].sum() == pytest.approx(100, abs=0.1)
    share = page_chart(at, "flops_share_1")["data"]
    assert [trace["name"] for trace in share] == ["share of multiply-adds", "share of measured time"]
    assert share[0]["y"] == pytest.approx(list(units["mac_share_percent"]))
    downloads = [b.label for b in at.get("download_button")]
    assert downloads == ["Units as CSV (with times)", "Every op as CSV"] * 2


def test_whole_forward_pass_is_measured_and_the_shares_explained_by_numbers(flops_page):
    """Issue 14, finding 5: the whole-network time is a real forward pass, shown beside the units' sum."""
    at = with_timings(flops_page)
    forwards = [m.value for m in at.metric if m.label == "Whole forward pass"]
    assert len(forwards) == 2
    text = " ".join(c.value for c in at.caption)
    for side, forward in enumerate(forwards):
        units = at.dataframe[1 + side].value
        assert f"A whole forward pass took {forward}" in text
        total_ms = units["time_ms"].sum()
        assert f"add up to {total_ms:.1f} ms" in text or f"add up to {total_ms - 0.05:.1f} ms" in text \
            or f"add up to {total_ms + 0.05:.1f} ms" in text  # the table rounds each unit to 3 decimals
    assert "once per server start" not in text


def test_the_compared_models_own_architecture(app_on_page, sample_image_path):
    """Issue 10: counting the models in the sidebar uses their input size, classes and layout."""
    at = app_on_page(PAGE, sample_image_path)
    at.radio(key="count").set_value("models").run()
    assert not at.exception
    report = flop_report(3, 1.0, 64, 10)
    macs = [m.value for m in at.metric if m.label == "Multiply-adds"]
    assert macs[1] == f"{report.total_macs / 1e6:.1f} M"
    assert f"{report.total_macs:,} multiply-adds, {report.total_params:,} parameters at 64x64 with 10 classes." in \
        [c.value for c in at.caption]


def multiply_adds(at) -> list[str]:
    return [m.value for m in at.metric if m.label == "Multiply-adds"]


def test_a_link_restores_both_configurations_and_a_change_goes_back_into_the_url(app_with_link, sample_image_path):
    at = app_with_link(PAGE, sample_image_path,
                       {"count": "two configurations I choose",
                        "input": "64x64, 10 classes (this app's CIFAR-10 models)", "left_g": "2", "left_width": "0.5x", "right_g": "8", "right_width": "2x", "other_ops": "true"})
    assert not at.exception and not at.warning
    assert at.radio(key="input").value == 64
    assert [at.selectbox(key=f"{side}_{what}").value for side in ("left", "right") for what in ("g", "width")] == \
        [2, 0.5, 8, 2.0]
    assert at.toggle(key="other_ops").value is True
    reports = [flop_report(2, 0.5, 64, 10), flop_report(8, 2.0, 64, 10)]
    assert multiply_adds(at) == [f"{report.total_macs / 1e6:.1f} M" for report in reports]
    assert f"Other operations: {reports[1].total_other_ops / 1e6:.1f} M more." in [c.value for c in at.caption]
    # Every setting is a widget bound to the URL parameter of its own name, so a change goes back into the URL.
    bound = {"count": "radio", "input": "radio", "left_g": "selectbox", "left_width": "selectbox",
             "right_g": "selectbox", "right_width": "selectbox", "other_ops": "toggle"}
    assert {key: at.get(kind)[[w.key for w in at.get(kind)].index(key)].proto.query_param_key
            for key, kind in bound.items()} == {key: key for key in bound}
    at.selectbox(key="left_g").set_value(4).run()
    assert multiply_adds(at)[0] == f"{flop_report(4, 0.5, 64, 10).total_macs / 1e6:.1f} M"
    at.radio(key="count").set_value("models").run()
    assert not at.exception
    # The chosen configurations are gone with their widgets, and so are their parameters.
    assert not [w for w in at.selectbox if w.key in bound] and at.toggle(key="other_ops").value is True
    assert not {"input", "left_g", "left_width", "right_g", "right_width"} & set(at.query_params)


def test_bad_values_in_a_link_get_one_warning_each_and_the_defaults(app_with_link, sample_image_path):
    at = app_with_link(PAGE, sample_image_path,
                       {"count": "two configurations I choose", "input": "32", "left_g": "5", "right_width": "3"})
    assert not at.exception
    warnings = [w.value for w in at.warning]
    assert len(warnings) == 3
    assert "input '32', which is not one of 224x224, 1000 classes (the paper's ImageNet setting, Table 1), 64x64, " \
           "10 classes (this app's CIFAR-10 models); it is ignored." in warnings[0]
    assert "left_g '5', which is not one of 1, 2, 3, 4, 8; it is ignored." in warnings[1]
    assert "right_width '3', which is not one of 0.25x, 0.5x, 1x, 1.5x, 2x; it is ignored." in warnings[2]
    assert multiply_adds(at) == [f"{flop_report(g, 1.0, 224, 1000).total_macs / 1e6:.1f} M" for g in (1, 3)]
    assert (at.radio(key="input").value, at.selectbox(key="left_g").value, at.selectbox(key="right_width").value) \
        == (224, 1, 1.0)
