"""The cost arithmetic page: the three formulas for the chosen c, m, g, h, w, agreement with flops.py for a
real unit, a clear message for an impossible setting, Table 1's widths, and the settings in the URL."""

import pytest

from conftest import page_chart
from shufflenet_viz.cost import unit_macs
from shufflenet_viz.flops import flop_report

PAGE = "pages/cost.py"


@pytest.fixture(scope="module")
def page(app_on_page, sample_image_path):
    return app_on_page(PAGE, sample_image_path)


def test_default_is_stage2_of_g3_and_agrees_with_flops_py(page):
    values = {field: page.number_input(key=field).value for field in "cmghw"}
    assert values == {"c": 240, "m": 60, "g": 3, "h": 28, "w": 28}
    macs = unit_macs(240, 60, 3, 28, 28)
    metrics = {m.label: m.value for m in page.metric}
    assert metrics == {"ResNet": f"{macs['resnet'] / 1e6:,.3f} M", "ResNeXt": f"{macs['resnext'] / 1e6:,.3f} M",
                       "ShuffleNet": f"{macs['shufflenet'] / 1e6:,.3f} M"}
    counted = next(u for u in flop_report(3, 1.0, 224, 1000).units if u.name == "stage2.unit2").macs
    assert f"counts {counted:,} multiply-adds" in page.success[0].value
    assert f"formula gives {counted:,}" in page.success[0].value
    bars = page_chart(page, "cost_formulas")["data"][0]
    assert bars["y"] == pytest.approx([macs[k] / 1e6 for k in ("resnet", "resnext", "shufflenet")])
    # Each input is bound to the URL parameter of its name; a URL never spells a default.
    assert [page.number_input(key=field).proto.query_param_key for field in "cmghw"] == list("cmghw")
    assert not set("cmghw") & set(page.query_params)


def test_widths_table_is_table1(page):
    table = page.dataframe[0].value  # the network table below stays unrendered until its expander opens
    assert table["g"].tolist() == [1, 2, 3, 4, 8]
    assert table["affordable width"].tolist() == [144, 200, 240, 272, 384]
    assert table["same"].tolist() == ["yes"] * 5


def test_preset_and_impossible_setting(page):
    page.selectbox(key="cost_preset").set_value("g=8 network, stage2.unit2 (224x224)").run()
    assert page.number_input(key="c").value == 384 and page.number_input(key="g").value == 8
    assert "g=8 network" in page.success[0].value
    page.number_input(key="m").set_value(97).run()
    assert not page.exception
    assert "must both be multiples of g = 8" in page.error[0].value
    assert page.number_input(key="m").value == 97 and page.number_input(key="m").proto.query_param_key == "m"


def test_link_restores_settings_and_refuses_nonsense(app_test, upload_picture, sample_image_path):
    at = upload_picture(app_test(), sample_image_path.name, sample_image_path.read_bytes(), "image/jpeg")
    at.query_params.update({"c": "144", "m": "36", "g": "1", "h": "56", "w": "abc"})
    at.switch_page(PAGE).run()
    assert not at.exception
    assert [at.number_input(key=f).value for f in "cmgh"] == [144, 36, 1, 56]
    assert at.number_input(key="w").value == 28
    assert "w = 'abc'" in at.warning[0].value and "It is ignored." in at.warning[0].value
