"""The shuffle experiment's results file: where it sits, reading and writing it, and its summary.

The file (written by `python -m shufflenet_viz experiment`, see `experiment.py`) holds the recipe, each trained
model's test accuracy, parameters, MFLOPs, curve and wall time, and the paper's numbers beside them. Reading it
needs none of the training machinery, so the app's Experiments page imports this module alone.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .weights import WEIGHTS_DIR

FAMILY = "cifar10-shuffle-experiment"
CONFIDENCE = 0.95  # of the interval around each mean shuffle gain
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


def _incomplete_beta_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of the regularized incomplete beta function, by the modified Lentz method."""
    tiny, tolerance = 1e-300, 1e-15
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    fraction = d
    for m in range(1, 1000):
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            fraction *= d * c
        if abs(d * c - 1.0) < tolerance:
            break
    return fraction


def regularized_incomplete_beta(a: float, b: float, x: float) -> float:
    """I_x(a, b), the regularized incomplete beta function, for a, b > 0 and 0 <= x <= 1."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    # The continued fraction converges fast only below (a + 1) / (a + b + 2); above, use I_x(a, b) = 1 - I_1-x(b, a).
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _incomplete_beta_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _incomplete_beta_fraction(b, a, 1.0 - x) / b


def student_t_cdf(t: float, degrees_of_freedom: int) -> float:
    """P(T <= t) for Student's t distribution with the given degrees of freedom."""
    tail = 0.5 * regularized_incomplete_beta(degrees_of_freedom / 2, 0.5,
                                             degrees_of_freedom / (degrees_of_freedom + t * t))
    return 1.0 - tail if t >= 0 else tail


def student_t_quantile(probability: float, degrees_of_freedom: int) -> float:
    """The t with P(T <= t) = probability (0.5 < probability < 1), by bisection of the CDF: scipy is not a
    dependency, and bisection of a monotonic function cannot miss."""
    if not 0.5 < probability < 1.0 or degrees_of_freedom < 1:
        raise ValueError(f"need 0.5 < probability < 1 and at least one degree of freedom, got {probability}, "
                         f"{degrees_of_freedom}")
    low, high = 0.0, 1.0
    while student_t_cdf(high, degrees_of_freedom) < probability:
        low, high = high, 2 * high
    for _ in range(200):
        middle = (low + high) / 2
        if middle in (low, high):
            break
        low, high = (middle, high) if student_t_cdf(middle, degrees_of_freedom) < probability else (low, middle)
    return (low + high) / 2


@dataclass(frozen=True)
class GainInterval:
    """A confidence interval of a mean shuffle gain by Student's t over the seeds' paired gains."""

    low: float
    high: float
    confidence: float
    t_quantile: float
    degrees_of_freedom: int

    @property
    def excludes_zero(self) -> bool:
        """True when the whole interval lies on one side of zero."""
        return self.low > 0 or self.high < 0


@dataclass(frozen=True)
class ShuffleGain:
    """Accuracy with shuffle minus accuracy without, per seed trained both ways (same start, same batches)."""

    groups: int
    by_seed: dict[int, float]

    @property
    def seeds(self) -> int:
        """How many seeds were trained both with and without shuffle."""
        return len(self.by_seed)

    @property
    def mean(self) -> float:
        return sum(self.by_seed.values()) / len(self.by_seed)

    @property
    def standard_deviation(self) -> float | None:
        """The sample standard deviation of the paired gains (n - 1 in the denominator); None with one seed."""
        if self.seeds < 2:
            return None
        return math.sqrt(sum((value - self.mean) ** 2 for value in self.by_seed.values()) / (self.seeds - 1))

    def interval(self, confidence: float = CONFIDENCE) -> GainInterval | None:
        """mean +- t((1 + confidence) / 2, n - 1) x sd / sqrt(n) over the n paired gains; None with one seed."""
        if self.standard_deviation is None:
            return None
        quantile = student_t_quantile((1 + confidence) / 2, self.seeds - 1)
        half_width = quantile * self.standard_deviation / math.sqrt(self.seeds)
        return GainInterval(self.mean - half_width, self.mean + half_width, confidence, quantile, self.seeds - 1)


@dataclass(frozen=True)
class Summary:
    configurations: list[Configuration]
    gains: list[ShuffleGain]
    largest_seed_spread: float | None  # largest seed-to-seed spread of any configuration
    width: float | None = None  # the width multiplier every run of the set was trained at

    def configuration(self, groups: int, shuffle: bool) -> Configuration | None:
        return next((c for c in self.configurations if c.groups == groups and c.shuffle == shuffle), None)


def summarize(results: dict) -> Summary:
    """Configurations (in the set's order), shuffle gains, the seed spread and the width, from a results file."""
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
    width = results.get("recipe", {}).get("width", runs[0].get("width") if runs else None)
    return Summary(configurations, gains, max(spreads) if spreads else None, width)
