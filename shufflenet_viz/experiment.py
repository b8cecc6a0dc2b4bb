"""Does the shuffle help? The paper's Tables 2 and 3 rerun on CIFAR-10 with one recipe.

`python -m shufflenet_viz experiment` trains a set of ShuffleNet v1 configurations with one identical recipe
(data, input size, epochs, schedule, augmentation, seed policy), registers every model in the manifest as a
family of its own and writes one results file with the recipe, what was measured to choose it, each model's
test accuracy, parameters, MFLOPs, training curve and wall time (`experiment_results` reads it).

After every epoch a run saves its state (model, optimizer, schedule and the generator behind every random
draw), so an interrupted experiment resumes where it stopped and ends with the very weights an uninterrupted
one would have produced.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from .data import CIFAR10_CLASSES, ImageSet, load_cifar10
from .experiment_results import (DEFAULT_RESULTS, FAMILY, RESULTS_FORMAT, ExperimentError, read_results,
                                 results_path, write_results)
from .flops import flop_report, model_report
from .model import build_model, count_parameters
from .paper import results_section
from .preprocess import Preprocessing, to_model_input
from .train import TrainSettings, augment, describe_hardware, evaluate, make_optimizer, train_epoch
from .weights import WEIGHTS_DIR, freeze, read_manifest, sha256_file, write_manifest_entry

TRAINING_CLASSES = len(CIFAR10_CLASSES)
PAPER_WIDTH = 0.5  # the paper's rows the results file carries: ShuffleNet 0.5x, the recipe's default width


def _log(message: str) -> None:
    tqdm.write(message)  # prints between the progress bars instead of through them


@dataclass(frozen=True)
class RunSpec:
    """One configuration of the set: groups, shuffle on or off, seed (the width is the recipe's)."""

    groups: int
    shuffle: bool
    seed: int

    def name(self, width: float) -> str:
        """The model's manifest name, e.g. `cifar10_x0.5_g3_noshuffle_s1`."""
        return f"cifar10_x{width:g}_g{self.groups}{'' if self.shuffle else '_noshuffle'}_s{self.seed}"


# The paper's 0.5x comparisons: Table 2 (g = 1, 3, 8 with shuffle), Table 3 (g = 3, 8 without), each pair trained
# with several seeds (5 at g=3, 3 at g=8) so that the shuffle gain gets a confidence interval of its own.
PAIR_SEEDS = {3: 5, 8: 3}
DEFAULT_RUNS: tuple[RunSpec, ...] = (
    RunSpec(1, True, 0), RunSpec(3, True, 0), RunSpec(8, True, 0), RunSpec(3, False, 0), RunSpec(8, False, 0),
    RunSpec(3, True, 1), RunSpec(3, False, 1),
    *(RunSpec(groups, shuffle, seed) for groups, seeds in PAIR_SEEDS.items()
      for seed in range(1 if groups == 8 else 2, seeds) for shuffle in (True, False)),
)


@dataclass(frozen=True)
class Recipe:
    """Everything every run of the set shares. Two runs of one experiment differ only in groups, shuffle, seed."""

    width: float = 0.5
    size: int = 32
    epochs: int = 3
    batch_size: int = 128
    lr: float = 0.4  # peak at batch 256, scaled linearly with the batch (as `train`)
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1
    train_images: int = 20_000  # 0: the whole training split; else ImageSet.subset(n, seed=0), classes balanced
    test_images: int = 0  # 0: the whole test split
    curve_images: int = 2000  # test images (a balanced subset of those) measured after every epoch for the curves
    threads: int = 1
    data: str = ""

    def to_dict(self) -> dict:
        """The recipe as stored in the results file and in each manifest entry (identical for every run)."""
        data = asdict(self)
        data.update({
            "peak_lr": self.lr * self.batch_size / 256,
            "optimizer": "SGD, Nesterov momentum 0.9, weight decay on conv/linear weights only",
            "schedule": "one-cycle learning rate (25% warm-up), stepped every batch",
            "loss": f"cross-entropy with label smoothing {self.label_smoothing:g}",
            "augmentation": "random 32x32 crop of the 4-pixel zero-padded image + horizontal flip, then "
                            f"bilinear upsample to {self.size}x{self.size} (none when {self.size} = 32) and "
                            "normalise",
            "seed_policy": "seed s: torch.manual_seed(s) before the model is built (so with and without shuffle "
                           "start from the same weights) and one torch.Generator(s) for data order and "
                           "augmentation (so they see the same batches)",
            "dataset": "CIFAR-10",
            "curves": "after every epoch, test accuracy on curve_images test images (balanced subset, seed 0); "
                      "the final accuracy on all test_images",
        })
        return data

    def settings(self, run: RunSpec, out: Path) -> TrainSettings:
        return TrainSettings(groups=run.groups, width=self.width, shuffle=run.shuffle, data=self.data,
                             epochs=self.epochs, size=self.size, seed=run.seed, out=out,
                             batch_size=self.batch_size, lr=self.lr, weight_decay=self.weight_decay,
                             label_smoothing=self.label_smoothing)


@dataclass
class Datasets:
    train: ImageSet
    test: ImageSet
    curve: ImageSet


def load_datasets(recipe: Recipe) -> Datasets:
    """The recipe's training and test images (subsets drawn with seed 0, the same for every run)."""
    splits = load_cifar10(recipe.data)
    train, test = splits["train"], splits["test"]
    if recipe.train_images and recipe.train_images < len(train):
        train = train.subset(recipe.train_images, seed=0)
    if recipe.test_images and recipe.test_images < len(test):
        test = test.subset(recipe.test_images, seed=0)
    curve = test.subset(recipe.curve_images, seed=0) if 0 < recipe.curve_images < len(test) else test
    return Datasets(train, test, curve)


# ---------------------------------------------------------------------------------------------------
# Measuring the machine
# ---------------------------------------------------------------------------------------------------

def measure_throughput(recipe: Recipe, runs: Sequence[RunSpec], data: Datasets, steps: int,
                       log: Callable[[str], None] = print) -> dict:
    """Seconds per training batch and per test image for each distinct (groups, shuffle) of `runs`, measured
    with the recipe's size, batch and threads on real images (after 3 warm-up batches)."""
    torch.set_num_threads(recipe.threads)
    spec = Preprocessing.cifar(recipe.size)
    generator = torch.Generator().manual_seed(0)
    measured = {}
    for groups, shuffle in dict.fromkeys((run.groups, run.shuffle) for run in runs):
        torch.manual_seed(0)
        model = build_model(groups, recipe.width, TRAINING_CLASSES, shuffle)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        model.train()
        started = 0.0
        for step in range(steps + 3):
            if step == 3:
                started = time.perf_counter()
            index = torch.randint(0, len(data.train), (recipe.batch_size,), generator=generator)
            x = to_model_input(augment(data.train.images[index], generator), spec)
            loss = F.cross_entropy(model(x), data.train.labels[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        per_step = (time.perf_counter() - started) / steps
        model.eval()
        probe = data.test.images[:500]
        started = time.perf_counter()
        with torch.no_grad():
            model(to_model_input(probe, spec))
        per_test_image = (time.perf_counter() - started) / len(probe)
        key = f"g{groups}{'' if shuffle else '_noshuffle'}"
        measured[key] = {"groups": groups, "shuffle": shuffle, "steps": steps,
                         "seconds_per_step": round(per_step, 4), "seconds_per_test_image": round(per_test_image, 6)}
        log(f"measured {key}: {per_step * 1000:.0f} ms per batch of {recipe.batch_size}, "
            f"{per_test_image * 1e6:.0f} us per test image")
    return measured


def estimate_minutes(recipe: Recipe, runs: Sequence[RunSpec], measured: dict, train_images: int,
                     test_images: int) -> float | None:
    """Wall time the set should take on the machine as measured: batches, the curve's test pass after every
    epoch and the full test pass at the end. None when a configuration was not measured."""
    steps = math.ceil(train_images / recipe.batch_size) * recipe.epochs
    total = 0.0
    for run in runs:
        row = measured.get(f"g{run.groups}{'' if run.shuffle else '_noshuffle'}")
        if row is None:
            return None
        curve_images = min(recipe.curve_images or test_images, test_images)
        total += steps * row["seconds_per_step"] + (recipe.epochs * curve_images + test_images) * \
            row["seconds_per_test_image"]
    return round(total / 60, 1)


# ---------------------------------------------------------------------------------------------------
# Resuming a run
# ---------------------------------------------------------------------------------------------------

def _state_path(results: Path, name: str) -> Path:
    return Path(results).parent / "resume" / f"{name}.state.pt"


def _save_state(path: Path, state: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_suffix(".tmp")
    torch.save(state, temp)
    os.replace(temp, path)


def _drop_state(path: Path) -> None:
    path.unlink(missing_ok=True)
    try:
        path.parent.rmdir()  # only once empty: other runs' states stay
    except OSError:
        pass


def _finished(name: str, results: dict, manifest: dict, weights_dir: Path) -> bool:
    """A run counts as done only when its results, its manifest entry and its file all agree."""
    run, entry = results["runs"].get(name), manifest.get(name)
    if not run or not entry or run.get("sha256") != entry.get("sha256"):
        return False
    file = Path(weights_dir) / entry.get("file", "")
    return file.is_file() and sha256_file(file) == entry["sha256"]


# ---------------------------------------------------------------------------------------------------
# Training the set
# ---------------------------------------------------------------------------------------------------

@dataclass
class Progress:
    """Where a run stands; what the command prints and what the callbacks receive."""

    name: str
    epoch: int
    epochs: int
    curve: list = field(default_factory=list)


def _train_run(run: RunSpec, recipe: Recipe, data: Datasets, weights_dir: Path, results: Path, command: str,
               overall: tqdm, after_epoch: Callable[[Progress], None] | None, log: Callable[[str], None]) -> dict:
    name = run.name(recipe.width)
    out = Path(weights_dir) / f"{name}.pt"
    settings = recipe.settings(run, out)
    spec = Preprocessing.cifar(recipe.size)
    device = torch.device("cpu")  # the set's numbers are CPU numbers; one device keeps resume bitwise exact
    steps_per_epoch = math.ceil(len(data.train) / recipe.batch_size)

    torch.manual_seed(run.seed)
    model = build_model(run.groups, recipe.width, TRAINING_CLASSES, run.shuffle)
    optimizer, schedule, _ = make_optimizer(model, settings, steps_per_epoch)
    generator = torch.Generator().manual_seed(run.seed)
    start_epoch, curve, elapsed = 0, [], 0.0
    state_file = _state_path(results, name)
    if state_file.exists():
        state = torch.load(state_file, map_location="cpu", weights_only=True)
        if state.get("recipe") != recipe.to_dict() or state.get("run") != asdict(run):
            raise ExperimentError(f"{state_file} was saved under another recipe; delete it to retrain {name} "
                                  f"from scratch")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        generator.set_state(state["generator"])
        start_epoch, curve, elapsed = state["epoch"], list(state["curve"]), float(state["elapsed_s"])
        log(f"{name}: resuming after epoch {start_epoch}/{recipe.epochs}")

    bar = tqdm(total=steps_per_epoch * recipe.epochs, initial=steps_per_epoch * start_epoch, desc=name,
               unit="batch", file=sys.stderr, leave=False, mininterval=5, dynamic_ncols=True)
    for epoch in range(start_epoch, recipe.epochs):
        started = time.time()
        loss = train_epoch(model, optimizer, schedule, data.train.images, data.train.labels, spec, generator,
                           settings, progress=bar)
        accuracy = evaluate(model, data.curve, spec, device)["test_accuracy"]
        elapsed += time.time() - started
        curve.append({"epoch": epoch + 1, "train_loss": round(loss, 4), "test_accuracy": accuracy,
                      "elapsed_s": round(elapsed, 1)})
        _save_state(state_file, {"recipe": recipe.to_dict(), "run": asdict(run), "epoch": epoch + 1,
                                 "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                 "schedule": schedule.state_dict(), "generator": generator.get_state(),
                                 "curve": curve, "elapsed_s": elapsed})
        log(f"{name}: epoch {epoch + 1}/{recipe.epochs}, loss {loss:.4f}, test accuracy {accuracy:.2%}, "
            f"{elapsed / 60:.1f} min so far")
        if after_epoch is not None:
            after_epoch(Progress(name, epoch + 1, recipe.epochs, curve))
    bar.close()

    started = time.time()
    model = freeze(model)
    metrics = evaluate(model, data.test, spec, device)
    elapsed += time.time() - started
    metrics["source"] = (f"measured by the experiment command on {len(data.test):,} CIFAR-10 test images "
                         f"at {recipe.size}x{recipe.size}")
    out.parent.mkdir(parents=True, exist_ok=True)
    temp = out.with_suffix(".pt.tmp")
    torch.save({k: v.clone() for k, v in model.state_dict().items()}, temp)
    os.replace(temp, out)
    parameters = count_parameters(model)
    cost = model_report(model, recipe.size).total_macs
    paper_cost = flop_report(run.groups, recipe.width, 224, 1000).total_macs  # the paper's ImageNet setting
    recipe_dict = recipe.to_dict()
    entry = {
        "file": out.name,
        "sha256": sha256_file(out),
        "family": FAMILY,
        "architecture": {"family": "ShuffleNet v1", "groups": run.groups, "width": recipe.width,
                         "shuffle": run.shuffle, "num_classes": TRAINING_CLASSES, "parameters": parameters},
        "dataset": "CIFAR-10",
        "classes": list(CIFAR10_CLASSES),
        "preprocessing": spec.to_dict(),
        "metrics": metrics,
        "experiment": {"results": str(DEFAULT_RESULTS), "recipe": recipe_dict, "seed": run.seed},
        "training": {"command": command, "epochs": recipe.epochs, "seed": run.seed, "size": recipe.size,
                     "batch_size": recipe.batch_size, "peak_lr": recipe_dict["peak_lr"],
                     "recipe": f"{recipe_dict['optimizer']}; {recipe_dict['schedule']}; {recipe_dict['loss']}; "
                               f"{recipe_dict['augmentation']}",
                     "hardware": describe_hardware(device), "wall_time_s": round(elapsed, 1),
                     "data": str(recipe.data)},
    }
    write_manifest_entry(name, entry, weights_dir)
    outcome = {"name": name, "groups": run.groups, "shuffle": run.shuffle, "seed": run.seed,
               "width": recipe.width, "file": out.name, "sha256": entry["sha256"], "parameters": parameters,
               "mflops": round(cost / 1e6, 3), "mflops_224_imagenet": round(paper_cost / 1e6, 1),
               "test_accuracy": metrics["test_accuracy"],
               "per_class_accuracy": metrics["per_class_accuracy"], "test_images": metrics["test_images"],
               "curve": curve, "wall_time_s": round(elapsed, 1), "hardware": describe_hardware(device)}
    _drop_state(state_file)
    overall.update(1)
    log(f"{name}: done, test accuracy {metrics['test_accuracy']:.2%} in {elapsed / 60:.1f} min; saved {out}")
    return outcome


def run_experiment(recipe: Recipe, runs: Sequence[RunSpec] = DEFAULT_RUNS, weights_dir: Path = WEIGHTS_DIR,
                   results: Path | None = None, command: str = "", measure_steps: int = 0,
                   after_epoch: Callable[[Progress], None] | None = None,
                   log: Callable[[str], None] = _log) -> dict:
    """Train every run not yet finished (resuming a started one), register each in the manifest and the
    results file, and return the results. `measure_steps` > 0 only measures the machine and records it."""
    weights_dir = Path(weights_dir)
    results = Path(results) if results is not None else results_path(weights_dir)
    names = [run.name(recipe.width) for run in runs]
    if len(set(names)) != len(names):
        raise ExperimentError(f"the set names the same configuration twice: {names}")
    data_store = read_results(results)
    recipe_dict = recipe.to_dict()
    torch.set_num_threads(recipe.threads)
    if data_store["runs"] and data_store.get("recipe") != recipe_dict and not measure_steps:
        raise ExperimentError(f"{results} holds runs trained with another recipe "
                              f"({_recipe_difference(data_store.get('recipe') or {}, recipe_dict)}); "
                              f"use that recipe to continue, or pass another --results file")
    log(f"loading CIFAR-10 from {recipe.data}")
    data = load_datasets(recipe)

    if measure_steps:
        load_before = os.getloadavg()[0]
        measured = measure_throughput(recipe, runs, data, measure_steps, log)
        data_store["planning"] = {
            "measured": measured, "measured_with": {"size": recipe.size, "batch_size": recipe.batch_size,
                                                    "width": recipe.width, "threads": recipe.threads,
                                                    "hardware": describe_hardware(torch.device("cpu")),
                                                    "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                                                    # Other work on the machine slows the measurement down.
                                                    "load_average_1min": [round(load_before, 2),
                                                                          round(os.getloadavg()[0], 2)]},
        }
        write_results(results, data_store)
        for epochs in (1, 2, 3, 4, 5, 6, 8):
            minutes = estimate_minutes(Recipe(**{**asdict(recipe), "epochs": epochs}), runs, measured,
                                       len(data.train), len(data.test))
            log(f"estimate for {len(runs)} runs of {epochs} epoch(s) on {len(data.train):,} images: {minutes} min")
        return data_store

    planning = data_store.get("planning") or {}
    if planning.get("measured"):
        planning["chosen"] = {"epochs": recipe.epochs, "size": recipe.size, "train_images": len(data.train),
                              "test_images": len(data.test), "curve_images": len(data.curve),
                              "estimated_minutes": estimate_minutes(recipe, runs, planning["measured"],
                                                                         len(data.train), len(data.test))}
    data_store.update({"format": RESULTS_FORMAT, "family": FAMILY, "recipe": recipe_dict,
                       # Runs already registered carry the command that started the set: keep it.
                       "command": (data_store.get("command") if data_store["runs"] else None) or command,
                       "order": names, "planning": planning,
                       "train_images": len(data.train), "test_images": len(data.test),
                       "curve_images": len(data.curve),
                       "paper": results_section(PAPER_WIDTH)})
    write_results(results, data_store)

    manifest = read_manifest(weights_dir)
    todo = [run for run in runs if not _finished(run.name(recipe.width), data_store, manifest, weights_dir)]
    overall = tqdm(total=len(runs), initial=len(runs) - len(todo), desc="experiment", unit="model",
                   file=sys.stderr, dynamic_ncols=True)
    for run in todo:
        outcome = _train_run(run, recipe, data, weights_dir, results, data_store["command"], overall,
                             after_epoch, log)
        data_store = read_results(results)
        data_store["runs"][outcome["name"]] = outcome
        write_results(results, data_store)
    overall.close()
    data_store["complete"] = all(name in data_store["runs"] for name in names)
    write_results(results, data_store)
    return data_store


def _recipe_difference(old: dict, new: dict) -> str:
    changed = [f"{key}: {old.get(key)!r} there, {new.get(key)!r} now" for key in sorted(set(old) | set(new))
               if old.get(key) != new.get(key)]
    return "; ".join(changed[:4]) or "unknown difference"
