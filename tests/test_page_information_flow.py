"""The Information flow page with a picture uploaded through the sidebar: the structural reachability, the
measured cross-group shares and the shuffle ablation equal what the library computes directly."""

import io
import tarfile

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import page_charts, plotly_array
from shufflenet_viz import data, flow
from shufflenet_viz.images import load_image
from shufflenet_viz.inference import classify
from shufflenet_viz.preprocess import preprocess_image, to_model_input

PAGE = "pages/information_flow.py"
VIEWS = ("g=1", "g=3", "g=3, shuffle off")


def metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


@pytest.fixture(scope="module")
def synthetic_archive(tmp_path_factory) -> str:
    """A small archive in the CIFAR-10 JPEG layout: one noise picture per class, 100 copies of each in test/
    (enough for ImageSet.subset(1000)); it reads in a second instead of the real archive's ~10 s, and the
    accuracy on its 1,000 pictures equals the accuracy on its 10 distinct ones."""
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
    """The page after a photo was uploaded in the sidebar, with the ablation measured on the small archive."""
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
    assert page.radio(key="flow_stage").value == "stage2"
    assert page.selectbox(key="flow_start_stage2").value == "output of stage2.unit1"
    assert page.select_slider(key="flow_structure_unit_stage2_1").value == "stage2.unit2"
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
    assert page.radio(key="flow_span").value == "the next unit"
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
    page.radio(key="flow_stage").set_value("stage4")
    page.radio(key="flow_span").set_value("the rest of the stage")
    page.run()
    assert not page.exception
    shown = metrics(page)
    assert shown["g=3, shuffle off: influence crossing groups"] == "0%"
    assert shown["g=3: influence crossing groups"] not in ("0%", "n/a")
    assert page.select_slider(key="flow_structure_unit_stage4_1").value == "stage4.unit2"
    assert shown["g=3, shuffle off: channel pairs connected"] == "33.3%"
    page.radio(key="flow_stage").set_value("stage2")
    page.radio(key="flow_span").set_value("the next unit")
    page.run()


def test_starting_at_the_stage_input_shows_the_concatenation_mixing(page, cifar_pair):
    page.radio(key="flow_stage").set_value("stage3")
    page.run()
    page.selectbox(key="flow_start_stage3").set_value("stage3 input")
    page.run()
    assert not page.exception
    shown = metrics(page)
    first = flow.stage_reachability(flow.without_shuffle(cifar_pair[1]).model, "stage3", 0)[0]
    assert shown["g=3, shuffle off: channel pairs connected"] == f"{first.connected_share:.1%}" != "33.3%"
    assert shown["g=3, shuffle off: influence crossing groups"] not in ("0%", "n/a")
    assert "the stride-2 unit, whose concatenation lets some influence cross groups" in " ".join(
        c.value for c in page.caption)
    page.radio(key="flow_stage").set_value("stage2")
    page.run()


def test_ablation_prediction_and_accuracy(page, cifar_pair, picture, synthetic_archive):
    g3 = cifar_pair[1]
    off = flow.without_shuffle(g3)
    shown = metrics(page)
    assert shown["Shuffle on: prediction"] == classify(g3, picture).predicted_class
    assert shown["Shuffle off: prediction"] == classify(off, picture).predicted_class
    bars = page_charts(page)["flow_ablation_top5"]["data"]
    probabilities = dict(zip(bars[1]["y"], plotly_array(bars[1]["x"])))
    for name, p in classify(off, picture).top(5):
        assert probabilities[name] == pytest.approx(p, abs=1e-6)
    test = data.load_cifar10(synthetic_archive, splits=("test",))["test"]
    first_of_class = [int(torch.nonzero(test.labels == label)[0]) for label in range(10)]
    x = to_model_input(test.images[first_of_class], g3.preprocessing)
    for label, model in (("on", g3.model), ("off", off.model)):
        with torch.no_grad():
            correct = (model(x).argmax(1) == torch.arange(10)).float().mean().item()
        assert shown[f"Our accuracy, shuffle {label}"] == f"{correct:.1%}"
    assert shown["Paper, ShuffleNet 1x (g=3): error without / with shuffle"] == "34.5% / 32.6%"
    captions = " ".join(c.value for c in page.caption)
    assert ("1,000 CIFAR-10 test images (ImageSet.subset(1000, seed=0)), measured now on this machine; "
            "guessing would score 10%") in captions
    assert "trained *with* the shuffle" in " ".join(m.value for m in page.markdown)


def test_without_the_archive_the_manifest_numbers_are_shown(page, cifar_pair, tmp_path):
    stored = cifar_pair[1].entry["metrics"]["ablation"]
    original = data.DEFAULT_ARCHIVE
    data.DEFAULT_ARCHIVE = tmp_path / "absent.tar.gz"
    try:
        page.run()
    finally:
        data.DEFAULT_ARCHIVE = original
    assert not page.exception
    shown = metrics(page)
    assert shown["Our accuracy, shuffle on"] == f"{stored['accuracy_with_shuffle']:.1%}"
    assert shown["Our accuracy, shuffle off"] == f"{stored['accuracy_without_shuffle']:.1%}"
    assert "stored in the weights manifest by the training command" in " ".join(c.value for c in page.caption)


def test_a_pair_without_g1_gets_a_message(page):
    import ui

    page.session_state[ui.MODEL_KEYS[0]] = "cifar10_g3"  # the sidebar's left model: both sides g=3
    page.run()
    assert not page.exception
    assert [w.value for w in page.warning] == [
        "This page compares a g=1 model with a grouped model (g>1, shuffle on). Pick one of each under "
        "'Models compared' in the sidebar."]
    assert not page.get("plotly_chart")
    page.session_state[ui.MODEL_KEYS[0]] = "cifar10_g1"
    page.run()
    assert not page.warning and page.get("plotly_chart")
