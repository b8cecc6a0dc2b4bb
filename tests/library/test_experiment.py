"""The shuffle experiment command: one recipe for the whole set, results and manifest agree, an interrupted run
resumes to the very weights of an uninterrupted one, and a model trained without shuffle keeps its groups apart."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import fail_or_skip, make_archive
from shufflenet_viz import experiment, experiment_results, flow
from shufflenet_viz.cli import main
from shufflenet_viz.data import DEFAULT_ARCHIVE
from shufflenet_viz.images import load_image
from shufflenet_viz.preprocess import preprocess_image
from shufflenet_viz.weights import load_model, read_manifest, sha256_file

PAIR = (experiment.RunSpec(3, True, 0), experiment.RunSpec(3, False, 0))
PAIR_NAMES = tuple(run.name(0.5) for run in PAIR)



def tiny_recipe(archive: Path, epochs: int = 2) -> experiment.Recipe:
    return experiment.Recipe(width=0.5, size=32, epochs=epochs, batch_size=64, train_images=0, test_images=0,
                             threads=1, data=str(archive))


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    """The command itself on the shared CIFAR-10 archive: two configurations, 300 images, one epoch."""
    if not DEFAULT_ARCHIVE.exists():
        fail_or_skip(f"the CIFAR-10 archive is not at {DEFAULT_ARCHIVE}")
    weights_dir = tmp_path_factory.mktemp("weights")
    argv = ["experiment", "--data", str(DEFAULT_ARCHIVE), "--epochs", "1", "--train-images", "300",
            "--test-images", "200", "--only", *PAIR_NAMES, "--weights-dir", str(weights_dir)]
    assert main(argv) == 0
    return weights_dir


def test_tiny_run_writes_one_recipe_to_results_and_manifest(tiny_run):
    results = experiment_results.read_results(experiment_results.results_path(tiny_run))
    manifest = read_manifest(tiny_run)
    assert results["family"] == experiment_results.FAMILY and results["complete"] is True
    assert list(results["runs"]) == list(PAIR_NAMES) == results["order"]
    assert results["recipe"]["epochs"] == 1 and results["train_images"] == 300 and results["test_images"] == 200
    assert results["command"].startswith("python -m shufflenet_viz experiment --data ")
    for name, run in results["runs"].items():
        entry = manifest[name]
        assert entry["family"] == experiment_results.FAMILY
        assert entry["experiment"]["recipe"] == results["recipe"]  # the very same recipe, field by field
        assert entry["experiment"]["results"] == str(experiment_results.DEFAULT_RESULTS)
        assert entry["sha256"] == run["sha256"] == sha256_file(tiny_run / entry["file"])
        assert entry["architecture"]["shuffle"] is run["shuffle"] and entry["architecture"]["width"] == 0.5
        assert entry["metrics"]["test_images"] == 200 and run["test_accuracy"] == entry["metrics"]["test_accuracy"]
        assert len(run["curve"]) == 1 and run["wall_time_s"] > 0
        assert run["mflops"] > 0 and run["mflops_224_imagenet"] > run["mflops"]
        loaded = load_model(name, tiny_run)  # usable like any shipped model
        assert loaded.model.config.shuffle is run["shuffle"]
    assert "trained without shuffle" in load_model(PAIR_NAMES[1], tiny_run).label
    assert not (tiny_run / "experiments" / "resume").exists()  # resume state is dropped once a run is done


def test_another_recipe_cannot_continue_the_results(tiny_run, capsys):
    argv = ["experiment", "--data", str(DEFAULT_ARCHIVE), "--epochs", "2", "--train-images", "300",
            "--test-images", "200", "--only", *PAIR_NAMES, "--weights-dir", str(tiny_run)]
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert "another recipe" in error and "epochs: 1 there, 2 now" in error


def test_unknown_configuration_is_a_usage_error(capsys):
    assert main(["experiment", "--data", "x", "--only", "cifar10_x0.5_g5_s0"]) == 2
    assert "unknown configuration" in capsys.readouterr().err


def test_missing_data_is_a_usage_error(tmp_path, capsys):
    argv = ["experiment", "--data", str(tmp_path / "nowhere.tar.gz"), "--weights-dir", str(tmp_path)]
    assert main(argv) == 2
    assert "does not exist" in capsys.readouterr().err


class Interrupted(Exception):
    pass


def test_resumed_run_gives_the_same_weights_as_an_uninterrupted_one(tmp_path):
    archive = make_archive(tmp_path / "cifar10_jpg.tar.gz")
    recipe = tiny_recipe(archive)
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    experiment.run_experiment(recipe, PAIR, straight, log=lambda message: None)

    def stop(progress: experiment.Progress) -> None:
        if progress.name == PAIR_NAMES[1] and progress.epoch == 1:
            raise Interrupted

    with pytest.raises(Interrupted):
        experiment.run_experiment(recipe, PAIR, resumed, after_epoch=stop, log=lambda message: None)
    state = resumed / "experiments" / "resume" / f"{PAIR_NAMES[1]}.state.pt"
    assert state.exists()
    first = resumed / f"{PAIR_NAMES[0]}.pt"
    finished_before = first.stat().st_mtime_ns
    messages = []
    results = experiment.run_experiment(recipe, PAIR, resumed, log=messages.append)
    assert first.stat().st_mtime_ns == finished_before  # the finished model is not trained again
    assert f"{PAIR_NAMES[1]}: resuming after epoch 1/2" in messages
    assert not state.exists()
    reference = experiment_results.read_results(experiment_results.results_path(straight))
    for name in PAIR_NAMES:
        assert sha256_file(resumed / f"{name}.pt") == sha256_file(straight / f"{name}.pt")
        a = torch.load(resumed / f"{name}.pt", weights_only=True)
        b = torch.load(straight / f"{name}.pt", weights_only=True)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
        ours, theirs = results["runs"][name], reference["runs"][name]
        assert [(p["epoch"], p["train_loss"], p["test_accuracy"]) for p in ours["curve"]] == \
               [(p["epoch"], p["train_loss"], p["test_accuracy"]) for p in theirs["curve"]]
    # Same seed, same start: the pair differs only in the shuffle, whose module has no weights.
    assert read_manifest(resumed)[PAIR_NAMES[0]]["experiment"]["recipe"] == results["recipe"]


def test_summary_pairs_seeds_and_measures_the_spread():
    def run(groups, shuffle, seed, accuracy):
        return {"groups": groups, "shuffle": shuffle, "seed": seed, "test_accuracy": accuracy, "parameters": 1,
                "mflops": 1.0, "mflops_224_imagenet": 38.0, "wall_time_s": 60.0}

    runs = [run(3, True, 0, 0.70), run(3, False, 0, 0.66), run(3, True, 1, 0.71), run(3, False, 1, 0.68),
            run(8, True, 0, 0.69), run(8, False, 0, 0.60), run(1, True, 0, 0.65)]
    results = {"runs": {f"r{i}": r for i, r in enumerate(runs)}}
    summary = experiment_results.summarize(results)
    assert [c.label for c in summary.configurations] == ["g=3", "g=3 no shuffle", "g=8", "g=8 no shuffle", "g=1"]
    gains = {gain.groups: gain for gain in summary.gains}
    assert sorted(gains) == [3, 8]
    assert gains[3].by_seed == pytest.approx({0: 0.04, 1: 0.03}) and gains[3].mean == pytest.approx(0.035)
    assert gains[8].by_seed == pytest.approx({0: 0.09})
    assert summary.largest_seed_spread == pytest.approx(0.02)  # g=3 without shuffle: 0.68 - 0.66


def test_estimate_counts_every_batch_and_test_pass():
    recipe = experiment.Recipe(epochs=2, batch_size=100)
    measured = {"g3": {"seconds_per_step": 0.5, "seconds_per_test_image": 0.001},
                "g3_noshuffle": {"seconds_per_step": 0.5, "seconds_per_test_image": 0.001}}
    # 2 runs x (10 batches x 2 epochs x 0.5 s + 3 test passes x 1,000 images x 1 ms) = 26 s
    assert experiment.estimate_minutes(recipe, PAIR, measured, 1000, 1000) == pytest.approx(26 / 60, abs=0.05)
    assert experiment.estimate_minutes(recipe, (experiment.RunSpec(8, True, 0),), measured, 1000, 1000) is None


@pytest.fixture(scope="module")
def picture(sample_image_path):
    return load_image(sample_image_path.read_bytes(), sample_image_path.name).image


def test_model_trained_without_shuffle_keeps_groups_apart(tiny_run, picture):
    """Inside a stage, after its first unit: block-diagonal structure, and measured cross-group influence
    exactly zero on a real picture; the same architecture trained with shuffle mixes its groups."""
    for name, shuffle in zip(PAIR_NAMES, (True, False)):
        loaded = load_model(name, tiny_run)
        x = preprocess_image(picture, loaded.preprocessing)
        steps = flow.stage_reachability(loaded.model, "stage3", 1)
        block_diagonal = [flow.is_block_diagonal(step.connectivity, 3) for step in steps]
        influence = flow.measure_influence(loaded.model, x, "stage3", 1)
        if shuffle:
            assert not any(block_diagonal) and influence.cross_group_share > 0
        else:
            assert all(block_diagonal) and len(steps) == 7
            assert influence.matrix.sum() > 0 and influence.cross_group_share == 0.0
            totals = influence.group_totals
            assert np.count_nonzero(totals - np.diag(np.diag(totals))) == 0
