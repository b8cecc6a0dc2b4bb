"""The Experiments page against a small experiment trained for the test: every number it shows is the results
file's, the paper's columns are the paper's, and the models trained without shuffle measure zero cross-group
influence on the uploaded picture."""

from __future__ import annotations

import json

import pytest
import streamlit as st

from conftest import make_archive, page_chart, plotly_array
from shufflenet_viz import experiment, experiment_results, weights
from shufflenet_viz.figures.experiments import comparison_rows, gain_rows

PAGE = "pages/experiments.py"
RUNS = (experiment.RunSpec(1, True, 0), experiment.RunSpec(3, True, 0), experiment.RunSpec(3, False, 0),
        experiment.RunSpec(3, True, 1), experiment.RunSpec(3, False, 1))


@pytest.fixture(scope="module", autouse=True)
def app_caches_go_with_the_weights_folders():
    """These tests serve models of other weights folders under the shipped models' names, and the app caches per
    model name (a server holds one model per name): the caches are emptied when the module is done."""
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture(scope="module")
def small_experiment(tmp_path_factory):
    """A weights folder holding only a five-model experiment trained for two epochs on a small archive."""
    root = tmp_path_factory.mktemp("experiment")
    recipe = experiment.Recipe(width=0.5, size=32, epochs=2, batch_size=64, train_images=0, curve_images=0,
                               threads=1, data=str(make_archive(root / "cifar10_jpg.tar.gz")))
    weights_dir = root / "weights"
    experiment.run_experiment(recipe, RUNS, weights_dir, command="python -m shufflenet_viz experiment (test)",
                              log=lambda message: None)
    return weights_dir


@pytest.fixture(scope="module")
def page(app_on_page, sample_image_path, small_experiment):
    original = weights.WEIGHTS_DIR
    weights.WEIGHTS_DIR = small_experiment
    try:
        yield app_on_page(PAGE, sample_image_path)
    finally:
        weights.WEIGHTS_DIR = original


@pytest.fixture(scope="module")
def results(small_experiment):
    return experiment_results.read_results(experiment_results.results_path(small_experiment))


def test_error_figure_is_the_results_file_beside_the_paper(page, results):
    summary = experiment_results.summarize(results)
    figure = page_chart(page, "experiments_error")
    bars = {(trace["name"], trace["xaxis"]): trace for trace in figure["data"] if trace["type"] == "bar"}
    ours = bars[("with shuffle", "x")]
    assert list(ours["x"]) == ["g=1", "g=3"]
    expected = [summary.configuration(g, True).mean_error_percent for g in (1, 3)]
    assert plotly_array(ours["y"]) == pytest.approx(expected)
    paper = bars[("with shuffle", "x2")]
    assert plotly_array(paper["y"]) == pytest.approx([45.1, 43.2])  # Table 2, 0.5x: g=1, g=3
    assert plotly_array(bars[("without shuffle", "x2")]["y"]) == pytest.approx([45.7])  # Table 3, 0.5x g=3
    dots = [trace for trace in figure["data"] if trace["type"] == "scatter" and trace["xaxis"] == "x"]
    per_seed = sorted(y for trace in dots for y in plotly_array(trace["y"]))
    assert per_seed == pytest.approx(sorted(100 * (1 - run["test_accuracy"]) for run in results["runs"].values()))


def test_tables_are_the_summary(page, results):
    summary = experiment_results.summarize(results)
    comparison, gains = page.dataframe[0].value, page.dataframe[1].value
    assert comparison.to_dict("records") == comparison_rows(summary, results["paper"])
    assert list(comparison["configuration"]) == ["g=1", "g=3", "g=3 no shuffle"]
    assert list(comparison["parameters"]) == [results["runs"][run.name(0.5)]["parameters"] for run in RUNS[:3]]
    assert gains.to_dict("records") == gain_rows(summary)
    assert list(gains["paper_gain_points"]) == [pytest.approx(2.5)]  # 45.7 - 43.2


def test_gain_and_spread_come_from_the_runs(page, results):
    runs = results["runs"]
    gain = {seed: runs[f"cifar10_x0.5_g3_s{seed}"]["test_accuracy"]
            - runs[f"cifar10_x0.5_g3_noshuffle_s{seed}"]["test_accuracy"] for seed in (0, 1)}
    figure = page_chart(page, "experiments_gain")
    mean_bar = next(trace for trace in figure["data"] if trace["type"] == "bar")
    assert plotly_array(mean_bar["y"]) == pytest.approx([round(100 * (gain[0] + gain[1]) / 2, 2)])
    seeds = next(trace for trace in figure["data"] if trace["name"] == "each seed")
    assert sorted(plotly_array(seeds["y"])) == pytest.approx(sorted(100 * g for g in gain.values()))
    spread = max(abs(runs["cifar10_x0.5_g3_s0"]["test_accuracy"] - runs["cifar10_x0.5_g3_s1"]["test_accuracy"]),
                 abs(runs["cifar10_x0.5_g3_noshuffle_s0"]["test_accuracy"]
                     - runs["cifar10_x0.5_g3_noshuffle_s1"]["test_accuracy"]))
    assert experiment_results.summarize(results).largest_seed_spread == pytest.approx(spread)
    verdicts = [m.value for m in page.markdown if m.value.startswith("- **g=3**")]
    assert len(verdicts) == 1 and f"{100 * (gain[0] + gain[1]) / 2:+.2f} points" in verdicts[0]


def test_curves_show_every_epoch_of_every_run(page, results):
    figure = page_chart(page, "experiments_curves")
    accuracy = [trace for trace in figure["data"] if trace["xaxis"] == "x"]
    assert [trace["name"] for trace in accuracy] == [
        "g=1, seed 0", "g=3, seed 0", "g=3 no shuffle, seed 0", "g=3, seed 1", "g=3 no shuffle, seed 1"]
    for trace, run in zip(accuracy, results["runs"].values()):
        assert plotly_array(trace["y"]) == pytest.approx([point["test_accuracy"] for point in run["curve"]])


def test_models_trained_without_shuffle_measure_zero_crossing_on_the_picture(page):
    # The first seed of each g is measured at first; the visitor adds the others.
    assert [(m.label, m.value) for m in page.metric] == [("g=3 trained without shuffle, seed 0", "0%")]
    pills = page.pills(key="measured")
    assert pills.value == ["cifar10_x0.5_g3_noshuffle_s0"] and pills.proto.query_param_key == "measured"
    both = ["cifar10_x0.5_g3_noshuffle_s0", "cifar10_x0.5_g3_noshuffle_s1"]
    pills.set_value(both).run()
    assert not page.exception
    crossing = [(m.label, m.value) for m in page.metric]
    assert crossing == [("g=3 trained without shuffle, seed 0", "0%"), ("g=3 trained without shuffle, seed 1", "0%")]
    assert page.pills(key="measured").value == both
    assert [c.value for c in page.caption].count("structure block-diagonal: yes") == 2
    influence = page_chart(page, "experiments_influence")
    assert [trace["type"] for trace in influence["data"]].count("heatmap") == 2
    layout = influence["layout"]
    assert layout["xaxis"]["title"]["text"] and not layout["xaxis2"].get("title", {}).get("text")


def test_without_results_the_page_says_how_to_make_them(app_on_page, sample_image_path, tmp_path):
    original = weights.WEIGHTS_DIR
    weights.WEIGHTS_DIR = tmp_path
    try:
        at = app_on_page(PAGE, sample_image_path)
    finally:
        weights.WEIGHTS_DIR = original
    assert any("python -m shufflenet_viz experiment --data" in info.value for info in at.info)
    assert not at.get("plotly_chart")


def test_a_link_opens_the_recipe_and_closing_it_goes_back_into_the_url(app_with_link, app_on_page, sample_image_path,
                                                                        small_experiment, results, monkeypatch):
    monkeypatch.setattr(weights, "WEIGHTS_DIR", small_experiment)
    at = app_with_link(PAGE, sample_image_path, {"recipe": "true"})
    assert not at.exception and not at.warning
    assert at.session_state["recipe"] is True
    shown = json.loads(at.json[0].value)
    assert shown["recipe"] == results["recipe"] and shown["command"] == results["command"]
    # The section is a widget bound to the URL parameter `recipe`: opening or closing it goes into the URL.
    assert at.expander(key="recipe").proto.query_param_key == "recipe"
    # AppTest cannot click a section's title, and a link's value outlasts a session value it is given, so the
    # closing is shown on a page opened without the link.
    at = app_on_page(PAGE, sample_image_path)
    assert not at.json and at.session_state["recipe"] is False
    at.session_state["recipe"] = True  # what a click on the section's title does
    at.run()
    assert not at.exception and json.loads(at.json[0].value)["recipe"] == results["recipe"]
    at.session_state["recipe"] = False
    at.run()
    assert not at.exception and not at.json and at.session_state["recipe"] is False


def test_a_bad_recipe_value_in_a_link_gets_one_warning(app_with_link, sample_image_path, small_experiment,
                                                       monkeypatch):
    monkeypatch.setattr(weights, "WEIGHTS_DIR", small_experiment)
    at = app_with_link(PAGE, sample_image_path, {"recipe": "maybe"})
    assert not at.exception
    assert [w.value for w in at.warning] == ["The link sets recipe = 'maybe'; it must be true or false. It is ignored."]
    assert {"experiments_error", "experiments_gain", "experiments_curves"} <= {
        c.proto.id.rsplit("-", 1)[-1] for c in at.get("plotly_chart")}
    assert not at.json and at.session_state["recipe"] is False
    assert at.pills(key="measured").value == ["cifar10_x0.5_g3_noshuffle_s0"]


def test_a_link_names_the_models_measured(app_with_link, sample_image_path, small_experiment, monkeypatch):
    monkeypatch.setattr(weights, "WEIGHTS_DIR", small_experiment)
    both = ["cifar10_x0.5_g3_noshuffle_s0", "cifar10_x0.5_g3_noshuffle_s1"]
    at = app_with_link(PAGE, sample_image_path, {"measured": ["g=3, seed 0", "g=3, seed 1"]})
    assert not at.exception and not at.warning
    assert [m.label for m in at.metric] == ["g=3 trained without shuffle, seed 0",
                                            "g=3 trained without shuffle, seed 1"]
    assert at.pills(key="measured").value == both

    at = app_with_link(PAGE, sample_image_path, {"measured": "cifar10_g1"})
    assert not at.exception
    assert [w.value for w in at.warning] == [
        "The link asks for measured 'cifar10_g1', which is not one of g=3, seed 0, g=3, seed 1; it is ignored."]
    assert [m.label for m in at.metric] == ["g=3 trained without shuffle, seed 0"]
