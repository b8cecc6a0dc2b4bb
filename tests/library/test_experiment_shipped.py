"""The shipped shuffle experiment: its results file, the manifest and the weight files agree (sha256, one recipe),
and the shipped models trained without shuffle keep their groups apart on a real picture."""

from __future__ import annotations

import pytest

from conftest import fail_or_skip
from shufflenet_viz import experiment, experiment_results, flow
from shufflenet_viz.images import load_image
from shufflenet_viz.preprocess import preprocess_image
from shufflenet_viz.weights import WEIGHTS_DIR, load_model, read_manifest, sha256_file

RESULTS = experiment_results.results_path(WEIGHTS_DIR)


@pytest.fixture(scope="module")
def shipped() -> dict:
    if not RESULTS.exists():
        fail_or_skip(f"no experiment results at {RESULTS}")
    results = experiment_results.read_results(RESULTS)
    if not results["runs"]:
        fail_or_skip(f"{RESULTS} holds no finished run yet")
    return results


def test_every_run_matches_its_manifest_entry_and_file(shipped):
    manifest = read_manifest(WEIGHTS_DIR)
    for name, run in shipped["runs"].items():
        entry = manifest[name]
        assert entry["family"] == experiment_results.FAMILY
        assert entry["sha256"] == run["sha256"] == sha256_file(WEIGHTS_DIR / entry["file"])
        assert entry["experiment"]["recipe"] == shipped["recipe"]  # one recipe for the whole set
        assert entry["training"]["command"] == shipped["command"]
        assert entry["metrics"]["test_accuracy"] == run["test_accuracy"]
        assert (entry["architecture"]["groups"], entry["architecture"]["shuffle"]) == (run["groups"], run["shuffle"])
        assert len(run["curve"]) == shipped["recipe"]["epochs"] and run["wall_time_s"] > 0
    strays = {name for name, entry in manifest.items() if entry.get("family") == experiment_results.FAMILY}
    assert strays == set(shipped["runs"])


def test_the_set_and_the_planning_are_recorded(shipped):
    assert shipped["order"] == [run.name(shipped["recipe"]["width"]) for run in experiment.DEFAULT_RUNS]
    assert shipped["command"].startswith("python -m shufflenet_viz experiment ")
    measured = shipped["planning"]["measured"]
    assert {f"g{run.groups}{'' if run.shuffle else '_noshuffle'}" for run in experiment.DEFAULT_RUNS} <= set(measured)
    assert shipped["planning"]["chosen"]["epochs"] == shipped["recipe"]["epochs"]
    if shipped.get("complete"):
        assert set(shipped["runs"]) == set(shipped["order"])
        assert shipped["test_images"] == 10_000


@pytest.mark.parametrize("seed", (0, 1))
def test_shipped_no_shuffle_models_keep_groups_apart(shipped, sample_image_path, seed):
    name = experiment.RunSpec(3, False, seed).name(shipped["recipe"]["width"])
    if name not in shipped["runs"]:
        fail_or_skip(f"{name} has not finished training")
    loaded = load_model(name)
    picture = load_image(sample_image_path.read_bytes(), sample_image_path.name).image
    x = preprocess_image(picture, loaded.preprocessing)
    for stage in ("stage2", "stage3", "stage4"):
        steps = flow.stage_reachability(loaded.model, stage, 1)
        assert all(flow.is_block_diagonal(step.connectivity, 3) for step in steps)
        influence = flow.measure_influence(loaded.model, x, stage, 1)
        assert influence.matrix.sum() > 0 and influence.cross_group_share == 0.0
