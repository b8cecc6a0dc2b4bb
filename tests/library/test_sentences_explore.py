"""The sentences of Does the shuffle help?, Information flow, Attributions and the sidebar's download note, each
checked against a computation of the test's own: Student's t by integrating its density, Tables 2 and 3 read
cell by cell, the sign of real attribution maps, the sizes of the mirrored files."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from conftest import IMAGENET_MIRROR, fail_or_skip
from shufflenet_viz import experiment_results, flow, paper
from shufflenet_viz.attributions import attribute, colour_legend
from shufflenet_viz.figures.experiments import gain_verdict, table2_reading, table3_reading
from shufflenet_viz.imagenet import CATALOGUE, RECOMMENDED, download_size_text
from shufflenet_viz.weights import WEIGHTS_DIR, read_manifest


def t_density(t: np.ndarray, df: int) -> np.ndarray:
    log_scale = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
    return np.exp(log_scale - (df + 1) / 2 * np.log1p(t * t / df))


def t_mass(upper: float, df: int, points: int = 40_001) -> float:
    """P(0 <= T <= upper) by Simpson's rule on the density."""
    t = np.linspace(0.0, upper, points)
    weights = np.ones(points)
    weights[1:-1:2], weights[2:-1:2] = 4, 2
    return float((weights * t_density(t, df)).sum() * (upper / (points - 1)) / 3)


def t_quantile_by_integration(probability: float, df: int) -> float:
    low, high = 0.0, 1.0
    while t_mass(high, df) < probability - 0.5:
        high *= 2
    for _ in range(60):
        middle = (low + high) / 2
        low, high = (middle, high) if t_mass(middle, df) < probability - 0.5 else (low, middle)
    return (low + high) / 2


@pytest.mark.parametrize("probability", (0.975, 0.95))
def test_t_quantile_leaves_the_integrated_density_below_it(probability):
    for df in [*range(1, 31), 60, 120]:
        quantile = experiment_results.student_t_quantile(probability, df)
        assert t_mass(quantile, df) == pytest.approx(probability - 0.5, abs=2e-9), df


def test_t_quantile_agrees_with_printed_tables():
    printed = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 10: 2.228, 20: 2.086, 30: 2.042}
    for df, value in printed.items():
        assert round(experiment_results.student_t_quantile(0.975, df), 3) == value


def paired(groups: int, gains_points: list[float]) -> experiment_results.ShuffleGain:
    return experiment_results.ShuffleGain(groups, {seed: value / 100 for seed, value in enumerate(gains_points)})


# The shipped set's first two g=3 pairs: seed 0 54.99 % vs 54.51 %, seed 1 54.81 % vs 53.93 %.
SHIPPED_G3 = [0.5499 - 0.5451, 0.5481 - 0.5393]


@pytest.mark.parametrize("gains_points", [
    [100 * g for g in SHIPPED_G3],  # 2 seeds, interval across zero
    [0.9, 1.1],  # 2 seeds close together: above zero
    [0.4, -0.2, 0.9],  # 3 seeds across zero
    [1.2, 0.8, 1.5],  # 3 seeds above zero
    [0.7, 0.3, 1.1, 0.2, 0.9],  # 5 seeds above zero
    [-0.6, -0.9, -0.4, -1.1, -0.7],  # 5 seeds below zero
    [0.5, -0.5, 0.2, 0.1, -0.3],  # 5 seeds across zero
])
def test_verdict_states_the_paired_gains_mean_interval_and_its_relation_to_zero(gains_points):
    gains = np.array(gains_points) / 100
    verdict = gain_verdict(paired(3, gains_points))
    n = len(gains)
    mean = gains.mean()
    half = t_quantile_by_integration(0.975, n - 1) * gains.std(ddof=1) / math.sqrt(n)
    low, high = 100 * (mean - half), 100 * (mean + half)
    assert f"shuffle gain {100 * mean:+.2f} points, the mean of {n} seeds' paired gains" in verdict
    assert "(" + ", ".join(f"{100 * g:+.2f}" for g in gains) + ")" in verdict
    assert f"95% confidence interval {low:+.2f} points to {high:+.2f} points" in verdict
    assert f"{n - 1} degree" in verdict
    clauses = {"the interval lies above zero": low > 0, "the interval lies below zero": high < 0,
               "the interval includes zero": low <= 0 <= high}
    assert [clause for clause in clauses if clause in verdict] == [c for c, holds in clauses.items() if holds]


def test_verdict_on_the_shipped_g3_pair_says_the_interval_includes_zero():
    """Two seeds' gains +0.48 and +0.88: mean +0.68, interval -1.86 to +3.22 points by t(0.975, 1) = 12.71."""
    verdict = gain_verdict(paired(3, [100 * g for g in SHIPPED_G3]))
    assert "+0.68 points" in verdict and "-1.86 points to +3.22 points" in verdict
    assert "includes zero" in verdict and "spread" not in verdict


def test_verdict_with_one_seed_gives_no_interval():
    verdict = gain_verdict(paired(8, [1.58]))
    assert verdict.startswith("shuffle gain +1.58 points (one seed, seed 0)")
    assert "no confidence interval can be given" in verdict and "points to" not in verdict


@pytest.mark.parametrize("width", [*paper.TABLE2_ERROR, 0.75])
def test_table2_reading_states_what_the_row_shows(width):
    text = table2_reading(width)
    errors = paper.TABLE2_ERROR.get(width)
    if errors is None:
        assert text == "Table 2 has no row for 0.75x"
        return
    groups = sorted(errors)
    assert " / ".join(f"{errors[g]:.1f}" for g in groups) + " % top-1 error" in text
    falls_every_step = all(errors[b] < errors[a] for a, b in zip(groups, groups[1:]))
    assert ("the error falls with every step up in g" in text) == falls_every_step
    assert ("more groups do not always help" in text) == (not falls_every_step)
    if not falls_every_step:
        assert f"lowest at g={min(errors, key=errors.get)}" in text
        for a, b in zip(groups, groups[1:]):
            rise = f"g={a} to g={b} ({errors[a]:.1f} to {errors[b]:.1f})"
            assert (rise in text) == (errors[b] >= errors[a])
    beats_g1 = all(errors[g] < errors[1] for g in groups if g > 1)
    assert ("every grouped network has lower error than g=1" in text) == beats_g1


def test_the_rows_at_every_width_are_not_all_monotonic():
    """The claim "more groups give lower error" would be false at 1x and 0.5x: the reading must not make it."""
    readings = {width: table2_reading(width) for width in paper.TABLE2_ERROR}
    assert "more groups do not always help" in readings[1.0] and "more groups do not always help" in readings[0.5]
    assert not any("more groups give lower error" in text for text in readings.values())


def test_table3_reading_counts_the_rows_where_no_shuffle_is_worse():
    text = table3_reading()
    worse = sum(paper.TABLE3_ERROR_WITHOUT_SHUFFLE[key] > paper.TABLE2_ERROR[key[0]][key[1]]
                for key in paper.TABLE3_ERROR_WITHOUT_SHUFFLE)
    rows = len(paper.TABLE3_ERROR_WITHOUT_SHUFFLE)
    assert ("in every row of Table 3" in text) == (worse == rows)
    assert worse == rows or f"in {worse} of Table 3's {rows} rows" in text


def installed_widths_and_groups() -> set[tuple[float, int]]:
    """(width, g) of every model the app can show: the shipped manifest and the ImageNet catalogue."""
    pairs = {(float(entry["architecture"].get("width", 1.0)), int(entry["architecture"]["groups"]))
             for entry in read_manifest(WEIGHTS_DIR).values()}
    return pairs | {(c.width, c.groups) for c in CATALOGUE.values()}


def test_shuffle_off_reading_quotes_the_paper_row_of_the_model_discussed():
    cases = installed_widths_and_groups() | {(0.5, 2), (1.0, 4)}
    assert {(1.0, 3), (0.5, 3), (0.5, 8), (0.25, 3)} <= cases
    for width, groups in sorted(cases):
        text = flow.shuffle_off_reading(width, groups)
        assert f"The g={groups} model was trained *with* the shuffle" in text
        without = paper.TABLE3_ERROR_WITHOUT_SHUFFLE.get((width, groups))
        if groups == 1 or without is None:
            assert f"Table 3 has no row for ShuffleNet {width:g}x with g={groups}" in text
            assert "% top-1 error" not in text
            continue
        with_shuffle = paper.TABLE2_ERROR[width][groups]
        assert (f"ShuffleNet {width:g}x (g={groups}) trained without shuffle, which learned to live without the "
                f"exchange, was {without - with_shuffle:.1f} points worse ({without:.1f}% vs {with_shuffle:.1f}% "
                "top-1 error on ImageNet, Table 3)") in text
    # The official 0.5x g=8 model, the default ImageNet pair's grouped model: 48.1 vs 42.3, not 1x g=3's 34.5 vs 32.6.
    assert "5.8 points worse (48.1% vs 42.3%" in flow.shuffle_off_reading(0.5, 8)


@pytest.fixture(scope="module")
def cifar_input(cifar_pair, sample_image_path):
    from shufflenet_viz.images import load_image
    from shufflenet_viz.preprocess import preprocess_image

    loaded = cifar_pair[1]
    picture = load_image(sample_image_path.read_bytes(), sample_image_path.name).image
    return loaded.model, preprocess_image(picture, loaded.preprocessing)


@pytest.mark.parametrize("method, options", [
    ("integrated_gradients", {"n_steps": 20}), ("saliency", {}), ("smoothgrad", {"nt_samples": 4}),
    ("smoothgrad", {"base": "integrated_gradients", "nt_samples": 2, "n_steps": 5}), ("gradcam", {}),
    ("gradcam", {"relu": False, "unit": "stage3.unit4"}), ("occlusion", {}),
])
def test_colour_legend_names_blue_only_where_the_map_has_negative_values(cifar_input, method, options):
    model, x = cifar_input
    shown = attribute(model, x, method, **options).map
    legend = colour_legend(method, options)
    negative = bool((shown < 0).any())
    assert ("blue: **against**" in legend) == negative
    assert ("there is no blue" in legend) == (not negative)


def test_download_note_states_the_published_sizes_and_caps_the_rest():
    if not IMAGENET_MIRROR.is_dir():
        fail_or_skip(f"the ImageNet mirror {IMAGENET_MIRROR} is missing")
    checkpoints = [CATALOGUE[name] for name in RECOMMENDED]
    text = download_size_text(checkpoints)
    official = [c for c in checkpoints if c.source == "official"]
    sizes = {c.name: (IMAGENET_MIRROR / c.file_name).stat().st_size for c in official}
    for c in official:
        assert f"{sizes[c.name] / 1e6:.1f} MB for {c.label}" in text
    assert f"({sum(sizes.values()) / 1e6:.1f} MB together)" in text
    osmr = [c for c in checkpoints if c.source == "osmr"]
    for c in osmr:  # its download is a zip whose size is published nowhere: only the cap is known
        assert re.search(rf"at most {c.max_bytes / 1e6:.0f} MB for {re.escape(c.label)}", text)
    assert "51 MB" not in text
