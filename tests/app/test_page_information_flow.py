"""The Information flow page with a picture uploaded through the sidebar: the structural reachability, the
measured cross-group shares and the shuffle ablation equal what the library computes directly."""

import io
import tarfile

import numpy as np
import pytest
from PIL import Image

from conftest import page_charts, plotly_array
from shufflenet_viz import data, flow
from shufflenet_viz.images import load_image
from shufflenet_viz.inference import classify
from shufflenet_viz.preprocess import preprocess_image

PAGE = "pages/information_flow.py"
VIEWS = ("g=1", "g=3", "g=3, shuffle off")


def metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


@pytest.fixture(scope="module")
def synthetic_archive(tmp_path_factory) -> str:
    """A small archive in the CIFAR-10 JPEG layout: one noise picture per class, 100 copies of each in test/
    (enough for ImageSet.subset(1000)). A page that measured accuracy on it would show numbers far from the
    manifest's, so it shows whether the page reads an archive that happens to be there."""
    path = tmp_path_factory.mktemp("cifar") / "cifar10_jpg.tar.gz"
    generator = np.random.default_rng(0)
    with tarfile.open(path, "w:gz") as archive:
        for name in data.CIFAR10_CLASSES:
            buffer = io.BytesIO()
            Image.fromarray(generator.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(buffer, format="JPEG")
            for index in range(100):
                member = tarfile.TarInfo(f"cifar10/test/{name}/{index:04d}.jpg")
                member.size = len(buffer.getvalue())
                archive.addfile(member, io.BytesIO(buffer.getvalue()))
    return str(path)


@pytest.fixture(scope="module")
def page(app_on_page, cifar_pair, sample_image_path, synthetic_archive):
    """The page after a photo was uploaded in the sidebar, first visited while the small archive is reachable."""
    original = data.DEFAULT_ARCHIVE
    data.DEFAULT_ARCHIVE = type(original)(synthetic_archive)
    try:
        yield app_on_page(PAGE, sample_image_path)
    finally:
        data.DEFAULT_ARCHIVE = original


@pytest.fixture(scope="module")
def picture(sample_image_path):
    return load_image(sample_image_path.read_bytes(), "dog.jpg").image


def models(cifar_pair):
    g1, g3 = cifar_pair
    return {"g=1": g1, "g=3": g3, "g=3, shuffle off": flow.without_shuffle(g3)}


def test_structure_matches_the_modules(page, cifar_pair):
    assert page.radio(key="stage").value == "stage2"
    assert page.selectbox(key="start").value == "output of stage2.unit1"
    assert page.select_slider(key="unit").value == "stage2.unit2"
    shown = metrics(page)
    for title, loaded in models(cifar_pair).items():
        step = flow.stage_reachability(loaded.model, "stage2", 1)[0]
        assert shown[f"{title}: channel pairs connected"] == f"{step.connected_share:.1%}"
    assert shown["g=3, shuffle off: channel pairs connected"] == "33.3%"
    assert shown["g=3: channel pairs connected"] == "100.0%"
    figure = page_charts(page)["flow_structure"]
    off = plotly_array(figure["data"][2]["z"])
    assert np.array_equal(off, np.kron(np.eye(3), np.ones((80, 80))))  # block-diagonal, 240 channels
    assert np.all(plotly_array(figure["data"][1]["z"]) == 1)
    text = " ".join(m.value for m in page.markdown)
    for point in flow.mixing_without_shuffle(cifar_pair[1].model):
        assert f"**{point.unit_name}**: {point.reason}." in text


def test_measured_shares_equal_direct_measurement(page, cifar_pair, picture):
    shown = metrics(page)
    assert page.radio(key="span").value == "unit"
    for title, loaded in models(cifar_pair).items():
        x = preprocess_image(picture, loaded.preprocessing)
        influence = flow.measure_influence(loaded.model, x, "stage2", 1, 1, groups=3)
        assert shown[f"{title}: influence crossing groups"] == flow.format_share(influence.cross_group_share)
    assert shown["g=3, shuffle off: influence crossing groups"] == "0%"
    assert shown["g=3: influence crossing groups"] != "0%"
    figure = page_charts(page)["flow_influence"]
    off = plotly_array(figure["data"][2]["z"])
    outside_blocks = np.kron(np.eye(3), np.ones((80, 80))) == 0
    assert np.all(np.isnan(off[outside_blocks]))  # exactly zero: drawn white


def test_whole_stage_without_shuffle_stays_at_zero(page):
    page.radio(key="stage").set_value("stage4")
    page.radio(key="span").set_value("stage")
    page.run()
    assert not page.exception
    shown = metrics(page)
    assert shown["g=3, shuffle off: influence crossing groups"] == "0%"
    assert shown["g=3: influence crossing groups"] not in ("0%", "n/a")
    assert page.select_slider(key="unit").value == "stage4.unit2"
    assert shown["g=3, shuffle off: channel pairs connected"] == "33.3%"
    page.radio(key="stage").set_value("stage2")
    page.radio(key="span").set_value("unit")
    page.run()


def test_starting_at_the_stage_input_groups_rows_by_where_they_came_from(page, cifar_pair, picture):
    """Issue 14, findings 1 and 7. Before, from the stage3 input across the next unit, the page showed g=3 64.8%
    and shuffle off 70.3% crossing (output channels cut into 3 equal runs that straddle [branch | pooled input]),
    and captions said 'g=1 is full from the first 1x1 convolution on' / 'One shuffle fills the matrix' beside
    50.3% / 50.2% connected. Now rows are grouped by where they came from and every sentence is computed."""
    page.radio(key="stage").set_value("stage3")
    page.run()
    page.selectbox(key="start").set_value("stage3 input")
    page.run()
    assert not page.exception
    shown = metrics(page)
    assert shown["g=3, shuffle off: influence crossing groups"] == "0%"
    x = preprocess_image(picture, cifar_pair[1].preprocessing)
    on = flow.measure_influence(cifar_pair[1].model, x, "stage3", 0, 1)
    assert shown["g=3: influence crossing groups"] == flow.format_share(on.cross_group_share) != "0%"
    first = {title: flow.stage_reachability(loaded.model, "stage3", 0, 3)[0] for title, loaded in
             models(cifar_pair).items()}
    assert shown["g=1: channel pairs connected"] == "50.3%" == f"{first['g=1'].connected_share:.1%}"
    assert shown["g=3: channel pairs connected"] == "50.2%" == f"{first['g=3'].connected_share:.1%}"
    captions = " ".join(c.value for c in page.caption)
    assert "full from the first 1x1 convolution" not in captions and "fills the matrix" not in captions
    assert ("stage3.unit1 has stride 2: its output is the concatenation [branch (144 ch) | pooled input (144 ch)] "
            "(g=1); [branch (240 ch) | pooled input (240 ch)] (g=3), and each pooled channel copies one start "
            "channel") in captions
    assert "at most 50.3% (g=1), 50.2% (g=3), 50.2% (g=3, shuffle off) of the channel pairs" in captions
    assert "g=3: 240 of 480 output channels hear all 3 groups" in captions
    assert "g=3, shuffle off: every output channel hears only the group it came from." in captions
    assert "g=3, shuffle off: exactly 0%: no output channel hears a group other than its own." in captions
    figure = page_charts(page)["flow_structure"]
    rows = [s["y0"] for s in figure["layout"]["shapes"] if s["y0"] == s["y1"] and s["xref"] == "x3"]
    assert rows == [79.5, 159.5, 239.5, 319.5, 399.5]  # [branch: 1, 2, 3 | pooled: 1, 2, 3]
    page.radio(key="span").set_value("stage")
    page.run()
    captions = " ".join(c.value for c in page.caption)
    off_share = metrics(page)["g=3, shuffle off: influence crossing groups"]
    assert off_share not in ("0%", "n/a")
    assert f"g=3, shuffle off: {off_share} crosses even without the shuffle, because stage3.unit1:" in captions
    page.radio(key="span").set_value("unit")
    page.radio(key="stage").set_value("stage2")
    page.run()


def test_placement_is_measured_for_the_grouped_model(page, cifar_pair, picture):
    text = " ".join(m.value for m in page.markdown)
    assert "paper layout: 1x1 GConv \u2192 BN \u2192 ReLU \u2192 **shuffle** \u2192 3x3 DWConv" in text
    assert "Moving the shuffle after the depthwise conv (filters permuted to match)" in text
    check = flow.placement_check("stage2.unit2", cifar_pair[1].model.stage2.unit2,
                                 flow.activation_at(cifar_pair[1].model, preprocess_image(picture, cifar_pair[1].
                                                                                          preprocessing), "stage2", 1))
    assert check.max_output_difference <= 1e-5 * check.output_scale
    assert (f"(largest output value {check.output_scale:.1f}); the channel-to-channel connectivity is identical"
            in text)
    assert "the channel-to-channel connectivity is identical" in text


def test_ablation_shows_the_manifest_numbers_with_or_without_the_archive(page, cifar_pair, picture, tmp_path,
                                                                         synthetic_archive):
    """Issue 13: the page never measures accuracy; the archive being there (the fixture points the default
    archive at a small one) or not changes nothing."""
    g3 = cifar_pair[1]
    off = flow.without_shuffle(g3)
    stored = g3.entry["metrics"]["ablation"]
    original = data.DEFAULT_ARCHIVE
    for archive in (type(original)(synthetic_archive), tmp_path / "absent.tar.gz"):
        data.DEFAULT_ARCHIVE = archive
        try:
            page.run()
        finally:
            data.DEFAULT_ARCHIVE = original
        assert not page.exception
        shown = metrics(page)
        assert shown["Shuffle on: prediction"] == classify(g3, picture).predicted_class
        assert shown["Shuffle off: prediction"] == classify(off, picture).predicted_class
        assert shown["Our accuracy, shuffle on"] == f"{stored['accuracy_with_shuffle']:.1%}"
        assert shown["Our accuracy, shuffle off"] == f"{stored['accuracy_without_shuffle']:.1%}"
        assert shown["Paper, ShuffleNet 1x (g=3): error without / with shuffle"] == "34.5% / 32.6%"
        captions = " ".join(c.value for c in page.caption)
        assert (f"Ours: {stored['images']}, measured on the test set when the model was trained and recorded "
                f"with it, so every machine shows the same numbers; guessing would score 10.0%") in captions
    bars = page_charts(page)["flow_ablation_top5"]["data"]
    probabilities = dict(zip(bars[1]["y"], plotly_array(bars[1]["x"])))
    for name, p in classify(off, picture).top(5):
        assert probabilities[name] == pytest.approx(p, abs=1e-6)
    text = " ".join(m.value for m in page.markdown)
    assert "trained *with* the shuffle" in text
    # The grouped model is CIFAR-10 g=3 at 1x: Table 3's 1x g=3 row, 34.5 without and 32.6 with the shuffle.
    assert "ShuffleNet 1x (g=3) trained without shuffle" in text and "1.9 points worse (34.5% vs 32.6%" in text


def test_a_pair_without_a_grouped_model_gets_a_message(page):
    import ui

    page.selectbox(key=ui.MODEL_KEYS[1]).set_value("cifar10_g1")  # both sides g=1: nothing to switch off
    page.run()
    assert not page.exception
    assert [w.value for w in page.warning] == [
        "This page needs a grouped model (g>1) with its shuffle on. Pick one under 'Models compared' in the sidebar."]
    assert not page.get("plotly_chart")
    page.selectbox(key=ui.MODEL_KEYS[0]).set_value("cifar10_g3")  # g=3 against itself: one view and its shuffle off
    page.selectbox(key=ui.MODEL_KEYS[1]).set_value("cifar10_g3")
    page.run()
    assert not page.exception and not page.warning
    assert set(metrics(page)) >= {"g=3: channel pairs connected", "g=3, shuffle off: channel pairs connected"}
    page.selectbox(key=ui.MODEL_KEYS[0]).set_value("cifar10_g1")
    page.run()
    assert not page.warning and page.get("plotly_chart")


def test_official_imagenet_pair(with_imagenet, app_on_page, sample_image_path, imagenet_models):
    """The official-layout g=3 / g=8 pair at 224 px: the views, the official placement measured, the flow from a
    stage input with the pooled channels first, and the plain sentence where no ablation numbers are stored."""
    import ui

    at = app_on_page(PAGE, sample_image_path)
    at.selectbox(key=ui.MODEL_KEYS[0]).set_value("imagenet_official_g3_w0.5")
    at.selectbox(key=ui.MODEL_KEYS[1]).set_value("imagenet_official_g8_w0.5")
    at.run()
    assert not at.exception
    assert at.title[0].value == "Information flow: g=3 vs g=8"
    shown = metrics(at)
    g8 = imagenet_models["imagenet_official_g8_w0.5"]
    x = preprocess_image(load_image(sample_image_path.read_bytes(), "dog.jpg").image, g8.preprocessing)
    for title, model in (("g=8", g8.model), ("g=8, shuffle off", flow.without_shuffle(g8).model)):
        measured = flow.measure_influence(model, x, "stage2", 1, 1)
        assert shown[f"{title}: influence crossing groups"] == flow.format_share(measured.cross_group_share)
    assert shown["g=8, shuffle off: influence crossing groups"] == "0%"
    text = " ".join(m.value for m in at.markdown)
    assert "official layout: 1x1 GConv \u2192 BN \u2192 ReLU \u2192 3x3 DWConv \u2192 BN \u2192 **shuffle**" in text
    assert "Moving the shuffle before the depthwise conv" in text
    assert text.count("the channel-to-channel connectivity is identical") == 2
    assert "the official code's (C/g, g) index map, the inverse of the paper's, and every group of the next" in text
    # The model discussed is the official 0.5x g=8: Table 3 gives 48.1 without and 42.3 with the shuffle.
    assert ("ShuffleNet 0.5x (g=8) trained without shuffle, which learned to live without the exchange, was 5.8 "
            "points worse (48.1% vs 42.3% top-1 error on ImageNet, Table 3)") in text
    assert "34.5%" not in text
    infos = [i.value for i in at.info]
    assert any(i.startswith("No accuracy with and without the shuffle is stored for ImageNet-1k g=8 (0.5x, official)")
               for i in infos)
    at.radio(key="stage").set_value("stage3")
    at.run()
    at.selectbox(key="start").set_value("stage3 input")
    at.run()
    assert not at.exception
    assert metrics(at)["g=8, shuffle off: influence crossing groups"] == "0%"
    captions = " ".join(c.value for c in at.caption)
    assert ("its output is the concatenation [pooled input (120 ch) | branch (120 ch)] (g=3); [pooled input (192 ch) | "
            "branch (192 ch)] (g=8)") in captions


def test_a_link_restores_stage_start_unit_and_span(app_with_link, sample_image_path, cifar_pair):
    at = app_with_link(PAGE, sample_image_path,
                       {"stage": "stage3", "start": "output of stage3.unit2", "unit": "stage3.unit5",
                        "span": "the rest of the stage"})
    assert not at.exception and not at.warning
    assert at.radio(key="stage").value == "stage3"
    assert at.selectbox(key="start").value == "output of stage3.unit2"
    assert at.select_slider(key="unit").value == "stage3.unit5"
    assert at.radio(key="span").value == "stage"
    # Each setting is a widget bound to the URL parameter of its own name, so a change goes back into the URL.
    assert [at.radio(key="stage").proto.query_param_key, at.selectbox(key="start").proto.query_param_key,
            at.select_slider(key="unit").proto.query_param_key, at.radio(key="span").proto.query_param_key] == \
        ["stage", "start", "unit", "span"]
    shown = metrics(at)
    for title, loaded in models(cifar_pair).items():
        step = flow.stage_reachability(loaded.model, "stage3", 2)[2]  # stage3.unit3, unit4, unit5
        assert step.unit_name == "stage3.unit5"
        assert shown[f"{title}: channel pairs connected"] == f"{step.connected_share:.1%}"
    assert shown["g=3, shuffle off: influence crossing groups"] == "0%"
    # Another start point follows the flow from its first unit again.
    at.selectbox(key="start").set_value("output of stage3.unit1").run()
    assert not at.exception and not at.warning
    assert at.select_slider(key="unit").value == "stage3.unit2"
    # Another stage: start and unit open at its defaults, not at the link's old values.
    at.radio(key="stage").set_value("stage2").run()
    assert not at.exception and not at.warning
    assert at.selectbox(key="start").value == "output of stage2.unit1"
    assert at.select_slider(key="unit").value == "stage2.unit2"
    assert at.radio(key="span").value == "stage"


def test_bad_values_in_a_link_get_one_warning_each(app_with_link, sample_image_path, cifar_pair):
    at = app_with_link(PAGE, sample_image_path,
                       {"stage": "stage5", "start": "nowhere", "unit": "stage2.unit9", "span": "all"})
    assert not at.exception
    warnings = [w.value for w in at.warning]
    assert len(warnings) == 4
    assert "stage 'stage5', which is not one of stage2, stage3, stage4; it is ignored." in warnings[0]
    assert "start 'nowhere', which is not one of stage2 input, output of stage2.unit1, output of stage2.unit2" \
           in warnings[1] and warnings[1].endswith("; it is ignored.")
    assert "unit 'stage2.unit9', which is not one of stage2.unit2" in warnings[2]
    assert "span 'all', which is not one of the next unit, the rest of the stage; it is ignored." in warnings[3]
    assert {"flow_structure", "flow_influence", "flow_ablation_top5"} <= set(page_charts(at))
    assert (at.radio(key="stage").value, at.selectbox(key="start").value, at.select_slider(key="unit").value,
            at.radio(key="span").value) == ("stage2", "output of stage2.unit1", "stage2.unit2", "unit")
