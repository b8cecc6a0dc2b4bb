"""Speed of the information-flow measurement on this machine, measured against the bare forward pass in one run.

Budget: measuring the channel-to-channel influence across one unit (`flow.measure_influence`, which follows the
unit's structure with `flow.unit_influence`) takes under 2 s of wall time on one thread for every unit kind of
every model: the shipped CIFAR-10 pair at 64 px and the ImageNet models at 224 px when they are installed
(`python -m shufflenet_viz weights fetch imagenet ...`). The full Jacobian it replaces (`flow.jacobian_influence`)
is timed beside it once. Forward passes of the whole model are timed between the measurements, so a machine that
gets busier or quieter during the run shifts both alike; CPU seconds are printed too (on a shared machine wall
time includes waiting for a core). Spans over the rest of a stage (the Jacobian through several units) are
printed for reference. Exit status 1 when the budget is missed.

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

from _quiet import quiet_logs  # noqa: E402

quiet_logs()  # before Streamlit's caches and AppTest are imported: the bench prints only its figures
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from explain_speed import forward_cost  # noqa: E402  (the bare forward pass, timed as that bench does)
from shufflenet_viz import flow  # noqa: E402
from shufflenet_viz.preprocess import preprocess_image  # noqa: E402
from shufflenet_viz.runtime import configure_torch_threads  # noqa: E402
from shufflenet_viz.weights import LoadedModel, load_all, model_dirs  # noqa: E402

MODELS = ("cifar10_g1", "cifar10_g3", "imagenet_official_g3_w0.5", "imagenet_official_g8_w0.5",
          "imagenet_osmr_g3_w0.25")
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


def measure(loaded: LoadedModel, x: torch.Tensor, spans, repeats: int, jacobian: bool) -> list[tuple]:
    """(model label, span, median wall s, median CPU s, median forward s, Jacobian wall s or None) per span."""
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
        reference = None
        if jacobian:
            unit = flow.stage_units(loaded.model, stage)[after][1]
            activation = flow.activation_at(loaded.model, x, stage, after)
            reference = timed(lambda: flow.jacobian_influence([unit], activation))[0]
        rows.append((loaded.label, span_label(stage, after, units), statistics.median(walls),
                     statistics.median(cpus), statistics.median(forwards), reference))
    return rows


def main() -> int:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--repeats", type=int, default=5, help="timed runs per measurement (medians)")
    repeats = options.parse_args().repeats
    available, problems = load_all()
    missing = [name for name in MODELS if name not in available]
    models = [available[name] for name in MODELS if name in available]
    if not models:
        print(f"no model to measure: {problems or 'none installed'}")
        return 1
    models += [flow.without_shuffle(m) for m in models if m.groups > 1 and m.name.startswith("cifar10")]
    picture = Image.open(PICTURE).convert("RGB")
    inputs = [preprocess_image(picture, m.preprocessing) for m in models]
    print(f"weights: {', '.join(str(d) for d in model_dirs())}; {os.cpu_count()} cores; torch threads: "
          f"{configure_torch_threads()}; repeats: {repeats} (medians); load average at start: "
          f"{os.getloadavg()[0]:.1f}")
    if missing:
        print(f"not installed, not measured: {', '.join(missing)} (python -m shufflenet_viz weights fetch imagenet)")

    cold_wall, cold_cpu = timed(lambda: flow.measure_influence(models[-1].model, inputs[-1], "stage2", 1, None))
    print(f"first Jacobian of the process (incl. the one-time torch.func import): {cold_wall:.2f} s wall, "
          f"{cold_cpu:.2f} s CPU")

    missed = []
    print(f"\none unit (budget {BUDGET_S:g} s wall; the full Jacobian it replaces, once, for reference):")
    for loaded, x in zip(models, inputs):
        size = f"{x.shape[-1]} px"
        for label, span, wall, cpu, forward, reference in measure(loaded, x, ONE_UNIT, repeats, True):
            verdict = "ok" if wall < BUDGET_S else "OVER BUDGET"
            if wall >= BUDGET_S:
                missed.append(f"{label} {span}")
            print(f"  {label:36s} {size:7s} {span:40s} {wall:6.3f} s wall {cpu:6.3f} s CPU = {wall / forward:5.0f} "
                  f"forward passes of {forward * 1000:5.1f} ms; Jacobian {reference:6.3f} s  {verdict}")
    print("\nthe rest of a stage (no budget; the page's 'the rest of the stage'):")
    for loaded, x in zip(models, inputs):
        size = f"{x.shape[-1]} px"
        for label, span, wall, cpu, forward, _ in measure(loaded, x, SPANS, max(1, repeats // 2), False):
            print(f"  {label:36s} {size:7s} {span:40s} {wall:6.3f} s wall {cpu:6.3f} s CPU = {wall / forward:5.0f} "
                  f"forward passes of {forward * 1000:5.1f} ms")
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f}")
    print("missed: " + "; ".join(missed) if missed else f"every unit measured in under {BUDGET_S:g} s")
    return int(bool(missed))


if __name__ == "__main__":
    sys.exit(main())
