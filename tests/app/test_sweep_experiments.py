"""Does the shuffle help?, swept: with the shipped results file and with results files of 1, 2, 3 and 5 seeds per
configuration, every number and sentence of the page is checked against the test's own reading of the file (means,
paired gains, Student's t intervals from a printed table, the verdict's clause, Tables 2 and 3 cell by cell)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from conftest import IMAGENET_MIRROR, page_chart, plotly_array
from shufflenet_viz import experiment_results, paper, weights
from ui import experiments as ui_experiments

PAGE = "pages/experiments.py"
# Student's t, 97.5 % quantile by degrees of freedom, as printed in statistics tables (six decimals).
T_975 = {1: 12.706205, 2: 4.302653, 3: 3.182446, 4: 2.776445, 5: 2.570582, 6: 2.446912, 7: 2.364624, 8: 2.306004,
         9: 2.262157}


def run_record(groups: int, shuffle: bool, seed: int, accuracy: float) -> dict:
    name = f"sweep_x0.5_g{groups}{'' if shuffle else '_noshuffle'}_s{seed}"
    return {"name": name, "groups": groups, "shuffle": shuffle, "seed": seed, "width": 0.5, "file": f"{name}.pt",
            "parameters": 240_000 + 1000 * groups, "mflops": 0.7 + 0.01 * groups,
            "mflops_224_imagenet": 37.0 + 0.5 * groups, "test_accuracy": accuracy, "wall_time_s": 300.0 + seed,
            "hardware": "CPU: sweep", "curve": [{"epoch": 1, "train_loss": 2.0, "test_accuracy": accuracy - 0.05},
                                                {"epoch": 2, "train_loss": 1.5, "test_accuracy": accuracy}]}


def synthetic_results(seeds: int) -> dict:
    """g=1 with one seed, g=3 with `seeds` seeds and g=8 with up to 3, each grouped seed with and without shuffle;
    accuracies drawn so that the verdicts differ between files (the 5-seed file's g=8 shuffle hurts)."""
    generator = np.random.default_rng(seeds)
    runs = [run_record(1, True, 0, 0.53)]
    centres = {3: 0.006, 8: -0.02 if seeds == 5 else 0.015}
    for groups, count in ((3, seeds), (8, min(seeds, 3))):
        for seed in range(count):
            base = round(float(generator.uniform(0.50, 0.58)), 4)
            gain = round(float(generator.normal(centres[groups], 0.004)), 4)
            runs += [run_record(groups, True, seed, round(base + gain, 4)), run_record(groups, False, seed, base)]
    return {"format": experiment_results.RESULTS_FORMAT, "family": experiment_results.FAMILY,
            "recipe": {"width": 0.5, "size": 32, "epochs": 2, "batch_size": 64}, "command": "sweep",
            "order": [run["name"] for run in runs], "runs": {run["name"]: run for run in runs},
            "train_images": 20_000, "test_images": 10_000, "paper": paper.results_section(0.5), "planning": {},
            "complete": True}


def expected_gains(results: dict) -> dict[int, dict]:
    """Per g: each seed's paired gain (points), their mean and the 95 % interval, computed here from the runs."""
    runs = list(results["runs"].values())
    accuracy = {(r["groups"], r["shuffle"], r["seed"]): r["test_accuracy"] for r in runs}
    found = {}
    for groups in sorted({r["groups"] for r in runs if r["groups"] > 1}):
        seeds = sorted(s for (g, on, s) in accuracy if g == groups and on and (g, False, s) in accuracy)
        if not seeds:
            continue
        gains = np.array([100 * (accuracy[(groups, True, s)] - accuracy[(groups, False, s)]) for s in seeds])
        interval = None
        if len(gains) > 1:
            half = T_975[len(gains) - 1] * gains.std(ddof=1) / math.sqrt(len(gains))
            interval = (gains.mean() - half, gains.mean() + half)
        found[groups] = {"seeds": seeds, "gains": gains, "mean": gains.mean(), "interval": interval}
    return found


@pytest.fixture(scope="module", params=["shipped", 1, 2, 3, 5])
def swept(request, tmp_path_factory, app_on_page, sample_image_path):
    """(results, the page) for the shipped results file or a synthetic one with that many seeds."""
    if request.param == "shipped":
        path = experiment_results.results_path(weights.WEIGHTS_DIR)
        if not path.exists():
            pytest.skip(f"no shipped results at {path}")
    else:
        path = tmp_path_factory.mktemp(f"seeds{request.param}") / "shuffle_ablation.json"
        path.write_text(json.dumps(synthetic_results(request.param)))
    results = experiment_results.read_results(path)
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setattr(ui_experiments, "results_file", lambda: path)
    try:
        yield results, app_on_page(PAGE, sample_image_path)
    finally:
        monkeypatch.undo()


def page_text(at) -> str:
    return "\n".join(m.value for m in at.main.markdown)


def test_introduction_reads_tables_2_and_3_and_counts_the_seeds(swept):
    results, at = swept
    text = page_text(at)
    width = results["recipe"]["width"]
    errors = paper.TABLE2_ERROR[width]
    groups = sorted(errors)
    assert " / ".join(f"{errors[g]:.1f}" for g in groups) in text
    falls = all(errors[b] < errors[a] for a, b in zip(groups, groups[1:]))
    assert ("more groups do not always help" in text) == (not falls)
    assert falls or f"lowest at g={min(errors, key=errors.get)}" in text
    assert "more groups give lower error" not in text
    table3_all_worse = all(paper.TABLE3_ERROR_WITHOUT_SHUFFLE[key] > paper.TABLE2_ERROR[key[0]][key[1]]
                           for key in paper.TABLE3_ERROR_WITHOUT_SHUFFLE)
    assert ("in every row of Table 3" in text) == table3_all_worse
    for (g, shuffle) in dict.fromkeys((r["groups"], r["shuffle"]) for r in results["runs"].values()):
        count = sum(1 for r in results["runs"].values() if (r["groups"], r["shuffle"]) == (g, shuffle))
        label = f"g={g}" + ("" if shuffle else " no shuffle")
        assert f"{count} seed{'s' if count > 1 else ''} of {label}" in text


def test_comparison_table_and_error_figure_are_the_runs(swept):
    results, at = swept
    runs = list(results["runs"].values())
    table = at.dataframe[0].value
    for row in table.to_dict("records"):
        members = [r for r in runs if f"g={r['groups']}" + ("" if r["shuffle"] else " no shuffle")
                   == row["configuration"]]
        accuracies = [r["test_accuracy"] for r in sorted(members, key=lambda r: r["seed"])]
        assert row["cifar10_error_percent"] == pytest.approx(round(100 * (1 - np.mean(accuracies)), 2))
        assert row["cifar10_error_by_seed"] == ", ".join(f"{100 * (1 - a):.2f}" for a in accuracies)
        assert row["seeds"] == ", ".join(str(r["seed"]) for r in sorted(members, key=lambda r: r["seed"]))
    bars = [t for t in page_chart(at, "experiments_error")["data"] if t["type"] == "bar" and t["xaxis"] == "x"]
    for trace in bars:
        shuffle = trace["name"] == "with shuffle"
        for x, y in zip(trace["x"], plotly_array(trace["y"])):
            members = [r["test_accuracy"] for r in runs if f"g={r['groups']}" == x and r["shuffle"] == shuffle]
            assert y == pytest.approx(100 * (1 - np.mean(members)))


def test_gain_table_figure_and_verdicts_follow_the_paired_seeds(swept):
    results, at = swept
    expected = expected_gains(results)
    rows = at.dataframe[1].value.to_dict("records")
    runs_in_order = [results["runs"][name] for name in results["order"] if name in results["runs"]]
    assert [row["groups"] for row in rows] == list(dict.fromkeys(r["groups"] for r in runs_in_order
                                                                 if r["groups"] in expected))
    verdicts = {int(m.value.split("**g=")[1].split("**")[0]): m.value for m in at.main.markdown
                if m.value.startswith("- **g=")}
    figure = page_chart(at, "experiments_gain")
    mean_bar = next(t for t in figure["data"] if t["type"] == "bar")
    dots = next(t for t in figure["data"] if t["name"] == "each seed")
    diamonds = next(t for t in figure["data"] if t["name"] == "the paper (ImageNet, Table 3)")
    paper_gains = dict(zip(diamonds["x"], plotly_array(diamonds["y"])))
    width = results["recipe"]["width"]
    for index, row in enumerate(rows):
        g = row["groups"]
        want = expected[g]
        assert row["seeds"] == len(want["seeds"])
        assert row["gain_points_by_seed"] == ", ".join(f"seed {s}: {v:+.2f}" for s, v in zip(want["seeds"],
                                                                                             want["gains"]))
        assert row["gain_points_mean"] == pytest.approx(want["mean"], abs=0.0051)
        without = paper.TABLE3_ERROR_WITHOUT_SHUFFLE.get((width, g))
        paper_gain = None if without is None else round(without - paper.TABLE2_ERROR[width][g], 1)
        if paper_gain is None:
            assert row["paper_gain_points"] is None or math.isnan(row["paper_gain_points"])
            assert f"g={g}" not in paper_gains
        else:
            assert row["paper_gain_points"] == pytest.approx(paper_gain)
            assert paper_gains[f"g={g}"] == pytest.approx(paper_gain)
        assert plotly_array(mean_bar["y"])[index] == pytest.approx(want["mean"], abs=0.0051)
        shown_dots = [y for x, y in zip(dots["x"], plotly_array(dots["y"])) if x == f"g={g}"]
        assert shown_dots == pytest.approx(list(want["gains"]))
        verdict = verdicts[g]
        assert f"shuffle gain {want['mean']:+.2f} points" in verdict
        if want["interval"] is None:
            assert "no confidence interval can be given" in verdict and "points to" not in verdict
            assert row["interval_low_points"] is None or math.isnan(row["interval_low_points"])
            continue
        low, high = want["interval"]
        assert row["interval_low_points"] == pytest.approx(low, abs=0.0051)
        assert row["interval_high_points"] == pytest.approx(high, abs=0.0051)
        top = plotly_array(mean_bar["y"])[index] + plotly_array(mean_bar["error_y"]["array"])[index]
        bottom = plotly_array(mean_bar["y"])[index] - plotly_array(mean_bar["error_y"]["arrayminus"])[index]
        assert (bottom, top) == (pytest.approx(low, abs=0.011), pytest.approx(high, abs=0.011))
        assert f"95% confidence interval {low:+.2f} points to {high:+.2f} points" in verdict
        assert f"mean of {len(want['seeds'])} seeds' paired gains" in verdict
        assert ("lies above zero" in verdict) == (low > 0)
        assert ("lies below zero" in verdict) == (high < 0)
        assert ("includes zero" in verdict) == (low <= 0 <= high)


def test_noise_shown_and_cost_bullets_follow_the_file(swept):
    results, at = swept
    expected = expected_gains(results)
    text = page_text(at)
    noise = next(line for line in text.splitlines() if line.startswith("- **Noise:**"))
    assert "paired seeds: " + ", ".join(f"{len(e['seeds'])} at g={g}" for g, e in expected.items()) in noise
    counts = {len(e["seeds"]) for e in expected.values()}
    for n in counts - {1}:
        assert f"t = {T_975[n - 1]:.2f} for {n} seeds" in noise
    assert ("no interval can be given" in noise) == (1 in counts)
    runs = list(results["runs"].values())
    means = {}
    for r in runs:
        means.setdefault(f"g={r['groups']}" + ("" if r["shuffle"] else " no shuffle"), []).append(r["test_accuracy"])
    best = max(means, key=lambda label: np.mean(means[label]))
    assert f"the best is {best}: {np.mean(means[best]):.2%}" in text
    mflops = [r["mflops_224_imagenet"] for r in runs]
    assert f"{min(mflops):.1f} to {max(mflops):.1f} MFLOPs at 224x224" in text
    assert "spread" not in text  # the verdict rests on the interval alone


def test_sidebar_states_the_download_sizes(swept, monkeypatch):
    _, at = swept
    if not IMAGENET_MIRROR.is_dir():
        pytest.skip(f"the ImageNet mirror {IMAGENET_MIRROR} is missing")
    monkeypatch.setenv("SHUFFLENET_LENS_OWNER_INSTALL", "1")  # the note goes with the install button, the owner's
    at.run()
    note = next(m.value for m in at.sidebar.markdown if m.value.startswith("Pretrained on ImageNet-1k"))
    official = sorted(IMAGENET_MIRROR.glob("megvii_*.pth.tar"))
    assert len(official) == 2
    assert f"({sum(p.stat().st_size for p in official) / 1e6:.1f} MB together)" in note
    assert "at most 42 MB for ImageNet-1k g=3 (0.25x, osmr)" in note and "51 MB" not in note
