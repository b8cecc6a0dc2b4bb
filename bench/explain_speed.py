"""Speed of the explanation features on this machine, measured against the bare forward pass in one run.

Budgets, per model (one CPU thread, as every session runs): Integrated Gradients with 50 steps costs at most 40
forward passes' worth of time, Grad-CAM and Saliency at most 3; Occlusion with the page's default window (an
eighth of the side, half of it as the stride: 225 windows) at most 10 s; the Feature maps page reruns in at most
0.5 s of server time with warm caches (an AppTest rerun: the whole script, sidebar included). Models: the shipped
CIFAR-10 pair (64x64) and the official ImageNet 0.5x g=3 / g=8 (224x224, official unit layout) as installed
(`weights fetch imagenet`; SHUFFLENET_LENS_FETCHED), or, where they are not installed, the same architectures
with random weights (time does not depend on the weights). Forward passes are timed between the method runs,
so a machine that gets busier or quieter during the run shifts both alike. The verdict uses the fastest of the
repeats of each (the cost without interference from other processes, as `timeit` reports); the medians are
printed beside it. Exit status 1 when a budget is missed.

    .venv/bin/python bench/explain_speed.py [--repeats N] [--skip-page]
"""

from __future__ import annotations

import argparse
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

from shufflenet_viz import weights  # noqa: E402
from shufflenet_viz.attributions import attribute, attribute_groups, black_baseline  # noqa: E402
from shufflenet_viz.model import build_model  # noqa: E402
from shufflenet_viz.preprocess import Preprocessing, preprocess_image  # noqa: E402
from shufflenet_viz.runtime import configure_torch_threads  # noqa: E402

CIFAR_MODELS = ("cifar10_g1", "cifar10_g3")
IMAGENET_MODELS = {"imagenet_official_g3_w0.5": 3, "imagenet_official_g8_w0.5": 8}
PICTURE = ROOT / "samples" / "dog.jpg"
# method label -> (attribute arguments, budget in forward passes)
METHOD_BUDGETS = {
    "Integrated Gradients, 50 steps": (("integrated_gradients", {"n_steps": 50}), 40.0),
    "Grad-CAM (stage4.unit4)": (("gradcam", {"unit": "stage4.unit4"}), 3.0),
    "Saliency": (("saliency", {}), 3.0),
}
OCCLUSION_BUDGET_S = 10.0
PAGE_BUDGET_S = 0.5


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


def bench_models() -> list[tuple[str, torch.nn.Module, Preprocessing, str]]:
    """(name, model, preprocessing, where the weights come from) for every model benched."""
    shipped = weights.load_all(weights.WEIGHTS_DIR)[0]
    fetched = weights.load_all(weights.FETCHED_DIR)[0] if weights.FETCHED_DIR.is_dir() else {}
    chosen = [(name, shipped[name].model, shipped[name].preprocessing, "shipped") for name in CIFAR_MODELS]
    for name, groups in IMAGENET_MODELS.items():
        if name in fetched:
            chosen.append((name, fetched[name].model, fetched[name].preprocessing, "installed"))
        else:
            torch.manual_seed(0)
            model = build_model(groups, 0.5, 1000, layout="official").eval()
            chosen.append((name, model, Preprocessing.imagenet_bgr_255(), "random weights"))
    return chosen


def method_ratios(repeats: int) -> list[tuple]:
    """(model, method, fastest method s, fastest forward s, their ratio, ratio of the medians, budget) for
    every model and method."""
    rows = []
    picture = Image.open(PICTURE).convert("RGB")
    for name, model, preprocessing, _ in bench_models():
        x = preprocess_image(picture, preprocessing)
        with torch.no_grad():
            target = int(model(x).argmax())
        for label, ((method, options), budget) in METHOD_BUDGETS.items():
            def run():
                attribute(model, x, method, target, **options)
            run()  # warm-up: first-call allocations, Captum imports, the private copy
            forward_cost(model, x)
            method_times, forward_times = [], []
            for _ in range(repeats):  # interleaved, so both see the same machine load
                forward_times.append(forward_cost(model, x))
                method_times.append(seconds(run))
            method_s, forward_s = min(method_times), min(forward_times)
            median_ratio = statistics.median(method_times) / statistics.median(forward_times)
            rows.append((name, label, method_s, forward_s, method_s / forward_s, median_ratio, budget))
    return rows


def occlusion_and_groups_seconds() -> list[tuple[str, float, int, float]]:
    """(model, Occlusion seconds with the default window, its model evaluations, Layer IG 50 steps seconds)."""
    rows = []
    picture = Image.open(PICTURE).convert("RGB")
    for name, model, preprocessing, _ in bench_models():
        x = preprocess_image(picture, preprocessing)
        attribute(model, x, "saliency", 0)  # warm-up
        occlusion = attribute(model, x, "occlusion", 0)
        groups = attribute_groups(model, x, "stage4.unit4", 0, baseline=black_baseline(preprocessing))
        rows.append((name, occlusion.seconds, occlusion.extras["evaluations"], groups.seconds))
    return rows


def page_rerun_seconds(repeats: int) -> dict[str, float]:
    """Median server time of a warm rerun of the Feature maps page, per view (AppTest; the sidebar starts with a
    sample picture and the default pair: the official ImageNet models when installed)."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=600)
    at.run()
    at.switch_page("pages/feature_maps.py").run()
    if at.exception:
        raise RuntimeError(f"the Feature maps page failed: {at.exception[0].message}")
    views = {}
    for label, settings in (("shuffle pair, stage2.unit2 (default)", {}),
                            ("stage4.unit4 output, by mean |activation|",
                             {"layer": "stage4.unit4", "point": "output", "order": "mean_abs"})):
        for key, value in settings.items():
            at.session_state[key] = value
        at.run()  # fills this view's caches
        views[f"{label}, {' vs '.join(h.value for h in at.subheader)}"] = statistics.median(
            seconds(at.run) for _ in range(repeats))
        if at.exception:
            raise RuntimeError(f"the Feature maps page failed: {at.exception[0].message}")
    return views


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-page", action="store_true", help="only the attribution methods")
    args = parser.parse_args()
    threads = configure_torch_threads()
    sources = ", ".join(f"{name}: {source}" for name, _, _, source in bench_models())
    print(f"torch threads: {threads}; repeats: {args.repeats} (fastest; median ratio); {sources}")
    missed = []
    for name, label, method_s, forward_s, ratio, median_ratio, budget in method_ratios(args.repeats):
        verdict = "ok" if ratio <= budget else "OVER BUDGET"
        if ratio > budget:
            missed.append(f"{name} {label}")
        print(f"{name:26s} {label:32s} {method_s * 1000:8.1f} ms = {ratio:5.1f} forward passes of "
              f"{forward_s * 1000:5.1f} ms (median {median_ratio:5.1f}; budget {budget:g}) {verdict}")
    for name, occlusion_s, evaluations, groups_s in occlusion_and_groups_seconds():
        verdict = "ok" if occlusion_s <= OCCLUSION_BUDGET_S else "OVER BUDGET"
        if occlusion_s > OCCLUSION_BUDGET_S:
            missed.append(f"{name} Occlusion")
        print(f"{name:26s} Occlusion, default window: {occlusion_s:6.2f} s for {evaluations} evaluations "
              f"(budget {OCCLUSION_BUDGET_S:g} s) {verdict}; per-group Layer IG, 50 steps: {groups_s:5.2f} s")
    if not args.skip_page:
        for label, rerun_s in page_rerun_seconds(args.repeats).items():
            verdict = "ok" if rerun_s <= PAGE_BUDGET_S else "OVER BUDGET"
            if rerun_s > PAGE_BUDGET_S:
                missed.append(f"feature maps page: {label}")
            print(f"feature maps page, warm rerun, {label}: {rerun_s:.3f} s (budget {PAGE_BUDGET_S:g} s) {verdict}")
    if missed:
        print("missed: " + "; ".join(missed))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
