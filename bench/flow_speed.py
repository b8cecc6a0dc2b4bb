"""Speed of the information-flow measurement on this machine, measured against the bare forward pass in one run.

Budget: measuring the channel-to-channel influence across one unit (`flow.measure_influence`, the Jacobian of
the unit's spatial means) takes under 2 s of wall time for every unit kind of both models. Forward passes of
the whole model are timed between the measurements, so a machine that gets busier or quieter during the run
shifts both alike; CPU seconds are printed too (on a shared machine wall time includes waiting for a core).
The first measurement of a process also pays a one-time import (torch.func loads torch._dynamo); it is
printed separately and not held to the budget. Spans over the rest of a stage are printed for reference.
Exit status 1 when the budget is missed.

    .venv/bin/python bench/flow_speed.py [--repeats N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from PIL import Image  # noqa: E402

from explain_speed import forward_cost  # noqa: E402  (the bare forward pass, timed as that bench does)
from shufflenet_viz import flow  # noqa: E402
from shufflenet_viz.preprocess import preprocess_image  # noqa: E402
from shufflenet_viz.runtime import configure_torch_threads  # noqa: E402
from shufflenet_viz.weights import WEIGHTS_DIR, LoadedModel, WeightsError, load_model  # noqa: E402

MODELS = ("cifar10_g1", "cifar10_g3")
PICTURE = ROOT / "samples" / "cat.jpg"
BUDGET_S = 2.0
# (stage, units before the start point, units measured; None: the rest of the stage)
ONE_UNIT = (("stage2", 1, 1), ("stage3", 1, 1), ("stage4", 1, 1), ("stage3", 0, 1), ("stage4", 0, 1))
SPANS = (("stage2", 1, None), ("stage3", 1, None), ("stage4", 1, None))


def timed(run) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - wall, time.process_time() - cpu


def span_label(stage: str, after: int, units: int | None) -> str:
    start = flow.point_label(stage, after)
    return f"{start} -> {'next unit' if units == 1 else 'stage output'}"


def measure(loaded: LoadedModel, x: torch.Tensor, spans, repeats: int) -> list[tuple]:
    """(model label, span, median wall s, median CPU s, median forward s) per span."""
    rows = []
    for stage, after, units in spans:
        def run():
            flow.measure_influence(loaded.model, x, stage, after, units)
        run()  # warm-up: allocations of this shape
        walls, cpus, forwards = [], [], []
        for _ in range(repeats):  # interleaved, so both see the same machine load
            forwards.append(forward_cost(loaded.model, x))
            wall, cpu = timed(run)
            walls.append(wall)
            cpus.append(cpu)
        rows.append((loaded.label, span_label(stage, after, units), statistics.median(walls),
                     statistics.median(cpus), statistics.median(forwards)))
    return rows


def main() -> int:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--repeats", type=int, default=5, help="timed runs per measurement (medians)")
    repeats = options.parse_args().repeats
    try:
        models = [load_model(name) for name in MODELS]
    except WeightsError as error:
        print(f"cannot load the shipped models: {error}")
        return 1
    models.append(flow.without_shuffle(models[1]))
    picture = Image.open(PICTURE).convert("RGB")
    inputs = [preprocess_image(picture, m.preprocessing) for m in models]
    print(f"weights: {WEIGHTS_DIR}; {os.cpu_count()} cores; torch threads: {configure_torch_threads()}; "
          f"repeats: {repeats} (medians); load average at start: {os.getloadavg()[0]:.1f}")

    cold_wall, cold_cpu = timed(lambda: flow.measure_influence(models[1].model, inputs[1], "stage2", 1, 1))
    print(f"first measurement of the process (incl. the one-time torch.func import): {cold_wall:.2f} s wall, "
          f"{cold_cpu:.2f} s CPU")

    missed = []
    print(f"\none unit (budget {BUDGET_S:g} s wall):")
    for loaded, x in zip(models, inputs):
        for label, span, wall, cpu, forward in measure(loaded, x, ONE_UNIT, repeats):
            verdict = "ok" if wall < BUDGET_S else "OVER BUDGET"
            if wall >= BUDGET_S:
                missed.append(f"{label} {span}")
            print(f"  {label:32s} {span:42s} {wall:6.3f} s wall {cpu:6.3f} s CPU = {wall / forward:6.0f} forward "
                  f"passes of {forward * 1000:5.1f} ms  {verdict}")
    print("\nthe rest of a stage (no budget; the page's 'the rest of the stage'):")
    for loaded, x in zip(models, inputs):
        for label, span, wall, cpu, forward in measure(loaded, x, SPANS, max(1, repeats // 2)):
            print(f"  {label:32s} {span:42s} {wall:6.3f} s wall {cpu:6.3f} s CPU = {wall / forward:6.0f} forward "
                  f"passes of {forward * 1000:5.1f} ms")
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f}")
    print("missed: " + "; ".join(missed) if missed else f"every unit measured in under {BUDGET_S:g} s")
    return int(bool(missed))


if __name__ == "__main__":
    sys.exit(main())
