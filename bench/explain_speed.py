"""Speed of the explanation features on this machine, measured against the bare forward pass in one run.

Budgets, per model: Integrated Gradients with 50 steps costs at most 40 forward passes' worth of time,
Grad-CAM and Saliency at most 3; the Feature maps page reruns in under 1 s of server time with warm caches
(an AppTest rerun: the whole script, sidebar included). Forward passes are timed between the method runs,
so a machine that gets busier or quieter during the run shifts both alike. The verdict uses the fastest of
the repeats of each (the cost without interference from other processes, as `timeit` reports); the medians
are printed beside it. Exit status 1 when a budget is missed.

    .venv/bin/python bench/explain_speed.py [--repeats N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from PIL import Image  # noqa: E402

from shufflenet_viz.attributions import attribute  # noqa: E402
from shufflenet_viz.preprocess import preprocess_image  # noqa: E402
from shufflenet_viz.runtime import configure_torch_threads  # noqa: E402
from shufflenet_viz.weights import WEIGHTS_DIR, load_model  # noqa: E402

MODELS = ("cifar10_g1", "cifar10_g3")
PICTURE = ROOT / "samples" / "cat.jpg"
# method label -> (attribute arguments, budget in forward passes)
METHOD_BUDGETS = {
    "Integrated Gradients, 50 steps": (("integrated_gradients", {"n_steps": 50}), 40.0),
    "Grad-CAM (stage4.unit4)": (("gradcam", {"unit": "stage4.unit4"}), 3.0),
    "Saliency": (("saliency", {}), 3.0),
}
PAGE_BUDGET_S = 1.0


def seconds(run) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def forward_cost(model: torch.nn.Module, x: torch.Tensor) -> float:
    """One bare forward pass as the Classify page runs it (no autograd), median of three."""
    def forward():
        with torch.inference_mode():
            model(x)
    return statistics.median(seconds(forward) for _ in range(3))


def method_ratios(repeats: int) -> list[tuple[str, str, float, float, float, float, float]]:
    """(model, method, fastest method s, fastest forward s, their ratio, ratio of the medians, budget) for
    every model and method."""
    rows = []
    picture = Image.open(PICTURE).convert("RGB")
    for name in MODELS:
        loaded = load_model(name)
        x = preprocess_image(picture, loaded.preprocessing)
        target = int(loaded.model(x).argmax())
        for label, ((method, options), budget) in METHOD_BUDGETS.items():
            def run():
                attribute(loaded.model, x, method, target, **options)
            run()  # warm-up: first-call allocations, Captum imports, the private copy for Grad-CAM
            forward_cost(loaded.model, x)
            method_times, forward_times = [], []
            for _ in range(repeats):  # interleaved, so both see the same machine load
                forward_times.append(forward_cost(loaded.model, x))
                method_times.append(seconds(run))
            method_s, forward_s = min(method_times), min(forward_times)
            median_ratio = statistics.median(method_times) / statistics.median(forward_times)
            rows.append((name, label, method_s, forward_s, method_s / forward_s, median_ratio, budget))
    return rows


def page_rerun_seconds(repeats: int) -> dict[str, float]:
    """Median server time of a warm rerun of the Feature maps page, per view (AppTest, uploads not needed:
    the sidebar starts with a sample picture)."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=600)
    at.run()
    at.switch_page("pages/feature_maps.py").run()
    if at.exception:
        raise RuntimeError(f"the Feature maps page failed: {at.exception[0].message}")
    views = {}
    for label, settings in (("shuffle pair, stage2.unit2 (default)", {}),
                            ("stage4.unit4 output, by mean |activation| (960 channels for g=3)",
                             {"fm_layer": "stage4.unit4", "fm_view": "output", "fm_order": "mean_abs"})):
        for key, value in settings.items():
            at.session_state[key] = value
        at.run()  # fills this view's caches
        views[label] = statistics.median(seconds(at.run) for _ in range(repeats))
        if at.exception:
            raise RuntimeError(f"the Feature maps page failed: {at.exception[0].message}")
    return views


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    threads = configure_torch_threads()
    print(f"weights: {WEIGHTS_DIR}; torch threads: {threads}; repeats: {args.repeats} (fastest; median ratio)")
    missed = []
    for name, label, method_s, forward_s, ratio, median_ratio, budget in method_ratios(args.repeats):
        verdict = "ok" if ratio <= budget else "OVER BUDGET"
        if ratio > budget:
            missed.append(f"{name} {label}")
        print(f"{name:11s} {label:32s} {method_s * 1000:8.1f} ms = {ratio:5.1f} forward passes of "
              f"{forward_s * 1000:5.1f} ms (median {median_ratio:5.1f}; budget {budget:g}) {verdict}")
    for label, rerun_s in page_rerun_seconds(args.repeats).items():
        verdict = "ok" if rerun_s < PAGE_BUDGET_S else "OVER BUDGET"
        if rerun_s >= PAGE_BUDGET_S:
            missed.append(f"feature maps page: {label}")
        print(f"feature maps page, warm rerun, {label}: {rerun_s:.3f} s (budget {PAGE_BUDGET_S:g} s) {verdict}")
    if missed:
        print("missed: " + "; ".join(missed))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
