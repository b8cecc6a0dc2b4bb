"""The unit page with a picture uploaded through the sidebar: the diagram equals the library's diagram of the
model on that picture, a node's feature maps follow the node, the stride-2 arithmetic is the model's own, the
settings live in the URL, and an official-layout ImageNet model draws its shuffle after the depthwise conv."""

import pytest


from conftest import page_chart, plotly_array
from shufflenet_viz.images import load_image
from shufflenet_viz.preprocess import preprocess_image
from shufflenet_viz.unit_diagram import live_unit_diagram

PAGE = "pages/unit.py"


@pytest.fixture(scope="module")
def page(app_on_page, cifar_pair, sample_image_path):
    return app_on_page(PAGE, sample_image_path)


def chart_nodes(figure: dict) -> list[list]:
    """customdata rows of the clickable node markers: [key, operation, shape, macs, params]."""
    markers = next(trace for trace in figure["data"] if trace.get("name") == "nodes")
    return markers["customdata"]


def test_diagram_is_the_model_on_the_picture(page, cifar_pair, sample_image_path):
    loaded = cifar_pair[1]  # the default: the right model of the pair (g=3)
    assert page.selectbox(key="model").value == loaded.name
    assert page.selectbox(key="unit").value == "stage2.unit2"
    picture = load_image(sample_image_path.read_bytes(), sample_image_path.name).image
    expected = live_unit_diagram(loaded.model, "stage2.unit2", preprocess_image(picture, loaded.preprocessing))
    rows = chart_nodes(page_chart(page, "unit_chart"))
    assert [row[0] for row in rows] == [node.key for node in expected.nodes]
    assert [row[2] for row in rows] == [node.shape_text for node in expected.nodes]
    assert [row[3] for row in rows] == [f"{node.macs:,}" for node in expected.nodes]
    assert [row[4] for row in rows] == [f"{node.params:,}" for node in expected.nodes]
    metrics = {m.label: m.value for m in page.metric}
    assert metrics["Multiply-adds saved by groups"].endswith("%")
    assert "shuffles after the first 1x1 GConv" in " ".join(c.value for c in page.caption)


def test_node_feature_maps_follow_the_node(page, cifar_pair):
    assert page.selectbox(key="node").value == "shuffle"
    assert "Channel Shuffle: 60x8x8" in page_chart(page, "unit_node_maps")["layout"]["title"]["text"]
    page.selectbox(key="node").set_value("expand_conv").run()
    assert not page.exception
    figure = page_chart(page, "unit_node_maps")
    assert "1x1 GConv: 240x8x8" in figure["layout"]["title"]["text"]
    tiles = plotly_array(figure["data"][0]["customdata"])
    assert int(tiles.shape[-1]) == 2  # (channel, raw value) per pixel of the mosaic
    assert page.selectbox(key="node").proto.query_param_key == "node"  # the node goes into the URL as ?node=...


def test_stride2_worked_example_of_g3(page):
    page.selectbox(key="unit").set_value("stage2.unit1").run()
    assert not page.exception
    text = " ".join(m.value for m in page.markdown)
    assert "stage2.unit1 takes 24 channels to 240." in text
    assert "240 - 24 = 216 channels" in text
    assert "240 / 4 = 60 channels" in text
    assert "216 (54)" in " ".join(c.value for c in page.caption)  # the paper's wording, explained
    rows = chart_nodes(page_chart(page, "unit_chart"))
    assert dict((row[0], row[2]) for row in rows)["shortcut"] == "24x8x8"
    assert page.selectbox(key="unit").proto.query_param_key == "unit"


def test_panel_a_and_a_link_with_settings(app_test, upload_picture, sample_image_path, cifar_pair):
    at = upload_picture(app_test(), sample_image_path.name, sample_image_path.read_bytes(), "image/jpeg")
    # A link spells each setting as its widget shows it: the model's label, the panel's words.
    at.query_params.update({"model": cifar_pair[0].label, "unit": "stage3.unit4",
                            "panel": "(a) the same unit without groups or shuffle", "node": "nonsense"})
    at.switch_page(PAGE).run()
    assert not at.exception
    assert at.selectbox(key="model").value == "cifar10_g1"
    assert at.selectbox(key="unit").value == "stage3.unit4"
    assert at.radio(key="panel").value == "a"
    assert "node 'nonsense'" in " ".join(w.value for w in at.warning)
    assert at.selectbox(key="node").value == "shuffle"
    rows = chart_nodes(page_chart(at, "unit_chart_dense"))
    assert "shuffle" not in [row[0] for row in rows]


def test_official_model_shuffles_after_the_depthwise_conv(with_imagenet, app_test, upload_picture,
                                                          sample_image_path, imagenet_models):
    at = upload_picture(app_test(), sample_image_path.name, sample_image_path.read_bytes(), "image/jpeg")
    at.query_params.update({"model": imagenet_models["imagenet_official_g8_w0.5"].label})
    at.switch_page(PAGE).run()
    assert not at.exception
    assert at.selectbox(key="model").value == "imagenet_official_g8_w0.5"
    rows = chart_nodes(page_chart(at, "unit_chart"))
    keys = [row[0] for row in rows]
    assert keys.index("shuffle") == keys.index("depthwise_bn") + 1
    assert dict((row[0], row[2]) for row in rows)["shuffle"] == "48x28x28"  # 0.5x g=8: 192/4 at 28x28
    assert "after the 3x3 depthwise conv" in " ".join(c.value for c in at.caption)

