"""The shuffle experiment's results file: where it sits, reading and writing it, and its summary.

The file (written by `python -m shufflenet_viz experiment`, see `experiment.py`) holds the recipe, each trained
model's test accuracy, parameters, MFLOPs, curve and wall time, and the paper's numbers beside them. Reading it
needs none of the training machinery, so the app's Experiments page imports this module alone.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .weights import WEIGHTS_DIR

FAMILY = "cifar10-shuffle-experiment"
RESULTS_FORMAT = 1
DEFAULT_RESULTS = Path("experiments") / "shuffle_ablation.json"  # relative to the weights folder


class ExperimentError(Exception):
    """The experiment cannot start or continue as asked; the message says what to do."""


def results_path(weights_dir: Path = WEIGHTS_DIR) -> Path:
    """Where the experiment's results file sits in a weights folder."""
    return Path(weights_dir) / DEFAULT_RESULTS


def read_results(path: Path) -> dict:
    """The results file, or an empty skeleton when there is none yet."""
    path = Path(path)
    if not path.exists():
        return {"format": RESULTS_FORMAT, "family": FAMILY, "runs": {}}
    try:
        data = json.loads(path.read_text())
        if not isinstance(data.get("runs"), dict):
            raise TypeError("'runs' must map model names to results")
    except (OSError, ValueError, TypeError, AttributeError) as error:
        raise ExperimentError(f"{path} is not a readable experiment results file ({error}); move it away to "
                              f"start over") from error
    return data


def write_results(path: Path, data: dict) -> None:
    """Replace the results file atomically, so readers (the app) never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=".results-", suffix=".tmp")
    with os.fdopen(handle, "w") as out:
        out.write(json.dumps(data, indent=1) + "\n")
    os.chmod(temp, 0o644)
    os.replace(temp, path)


@dataclass(frozen=True)
class Configuration:
    """One (groups, shuffle) configuration of the set with its test accuracy for each seed trained."""

    groups: int
    shuffle: bool
    accuracy_by_seed: dict[int, float]
    parameters: int
    mflops: float
    mflops_224_imagenet: float
    wall_time_s: dict[int, float]

    @property
    def label(self) -> str:
        return f"g={self.groups}" + ("" if self.shuffle else " no shuffle")

    @property
    def mean_accuracy(self) -> float:
        return sum(self.accuracy_by_seed.values()) / len(self.accuracy_by_seed)

    @property
    def mean_error_percent(self) -> float:
        return 100 * (1 - self.mean_accuracy)

    @property
    def seed_spread(self) -> float | None:
        """Largest minus smallest accuracy over seeds (None with one seed)."""
        values = list(self.accuracy_by_seed.values())
        return max(values) - min(values) if len(values) > 1 else None


@dataclass(frozen=True)
class ShuffleGain:
    """Accuracy with shuffle minus accuracy without, per seed trained both ways (same start, same batches)."""

    groups: int
    by_seed: dict[int, float]

    @property
    def mean(self) -> float:
        return sum(self.by_seed.values()) / len(self.by_seed)


@dataclass(frozen=True)
class Summary:
    configurations: list[Configuration]
    gains: list[ShuffleGain]
    largest_seed_spread: float | None  # the noise yardstick: largest seed spread of any configuration

    def configuration(self, groups: int, shuffle: bool) -> Configuration | None:
        return next((c for c in self.configurations if c.groups == groups and c.shuffle == shuffle), None)


def summarize(results: dict) -> Summary:
    """Configurations (in the set's order), shuffle gains and the seed spread, from a results file's runs."""
    order = results.get("order") or list(results["runs"])
    runs = [results["runs"][name] for name in order if name in results["runs"]]
    configurations = []
    for key in dict.fromkeys((run["groups"], run["shuffle"]) for run in runs):
        members = [run for run in runs if (run["groups"], run["shuffle"]) == key]
        first = members[0]
        configurations.append(Configuration(
            key[0], key[1], {run["seed"]: run["test_accuracy"] for run in members}, first["parameters"],
            first["mflops"], first.get("mflops_224_imagenet", float("nan")),
            {run["seed"]: run["wall_time_s"] for run in members}))
    gains = []
    for groups in dict.fromkeys(c.groups for c in configurations):
        on, off = (next((c for c in configurations if c.groups == groups and c.shuffle == shuffle), None)
                   for shuffle in (True, False))
        if on is None or off is None or groups == 1:
            continue
        paired = {seed: on.accuracy_by_seed[seed] - off.accuracy_by_seed[seed]
                  for seed in on.accuracy_by_seed if seed in off.accuracy_by_seed}
        if paired:
            gains.append(ShuffleGain(groups, paired))
    spreads = [c.seed_spread for c in configurations if c.seed_spread is not None]
    return Summary(configurations, gains, max(spreads) if spreads else None)
