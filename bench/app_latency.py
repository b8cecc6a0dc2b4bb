"""Server time of every page of the app: its first visit on a fresh server and its warm reruns (a script, not a test).

    .venv/bin/python bench/app_latency.py [--runs 5] [--page pages/flops.py] [--profile 25]

Every page of app.py's page list is measured in a process of its own, as on a freshly started server with the
default picture and models: the app's first run (the landing page: models loaded and verified, the default
sample classified), then the page's first visit (timed: it fills the page's own caches and imports), then
`--runs` reruns of the page (warm, the median). The landing page's first visit is the app's first run itself.
The modules app.py imports are imported before any clock starts (a server pays that once, at its first
session, for all pages; the time is printed apart). Each run is Streamlit's AppTest: the script's execution
plus AppTest's parsing of what it sent, so an upper bound on the server's time; the CPU time of the same run is
printed beside it (on a shared machine the wall time includes waiting for a core). Budgets: first visit <= 2.0 s, warm <= 0.5 s; exit status 1
when a page misses one or raises, or when the landing page's warm rerun costs more than 2x its two models'
bare forward passes. `--profile N` prints the N entries with the most cumulative time of each
first visit (cProfile of the script thread).
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _quiet import quiet_logs  # noqa: E402

FIRST_VISIT_BUDGET_S = 2.0
WARM_BUDGET_S = 0.5
LANDING_FORWARD_RATIO = 2.0  # the landing page's warm rerun, in units of its two models' bare forward passes


def app_pages() -> list[tuple[str, str]]:
    """(file, title) of every page in app.py's `PAGES` list, in order, the landing page first. Read from the
    source, since app.py runs only under Streamlit, so pages added to the app are measured with no change here."""
    for node in ast.parse((ROOT / "app.py").read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "PAGES" for t in node.targets):
            pages = []
            for call in ast.walk(node.value):
                if isinstance(call, ast.Call) and getattr(call.func, "attr", None) == "Page":
                    keywords = {k.arg: k.value for k in call.keywords}
                    file = call.args[0].value
                    title = keywords["title"].value if "title" in keywords else Path(file).stem
                    landing = isinstance(keywords.get("default"), ast.Constant) and keywords["default"].value is True
                    pages.insert(0 if landing else len(pages), (file, title))
            return pages
    raise SystemExit("app.py has no PAGES list: nothing to measure")


def pair_forward_seconds(at, runs: int) -> float:
    """The bare forward passes (no preprocessing, no softmax) of the two compared models on the current picture,
    each the median of `runs`: what the landing page cannot do without."""
    import torch

    from shufflenet_viz import weights
    from shufflenet_viz.preprocess import preprocess_image
    from ui.state import IMAGE_KEY, MODEL_KEYS

    models = weights.load_all()[0]
    picture = at.session_state[IMAGE_KEY].image
    total = 0.0
    for key in MODEL_KEYS:
        loaded = models[at.session_state[key]]
        x = preprocess_image(picture, loaded.preprocessing)
        with torch.inference_mode():
            loaded.model(x)  # warm-up
            samples = []
            for _ in range(runs):
                started = time.perf_counter()
                loaded.model(x)
                samples.append(time.perf_counter() - started)
        total += statistics.median(samples)
    return total


def visit(page_file: str, landing_file: str, runs: int, profile_entries: int) -> dict:
    """In this process: the app's first run, then the page's first visit and `runs` warm reruns (seconds)."""
    quiet_logs()
    import cProfile
    import io
    import pstats

    from streamlit import config as st_config
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.testing.v1 import AppTest
    from streamlit.testing.v1 import app_test as app_test_module
    from streamlit.testing.v1.local_script_runner import LocalScriptRunner

    started = time.perf_counter()
    import ui  # noqa: F401  (imported with everything app.py imports, before the clock starts)
    imported = time.perf_counter() - started
    from shufflenet_viz.runtime import configure_torch_threads

    configure_torch_threads()
    # AppTest resets Streamlit's pages-folder mode before every run, which a running server leaves for good at
    # its first st.navigation; without this each run would include ui.frame.ensure_shell()'s extra rerun.
    original_init = PagesManager.__init__

    def init_as_on_a_running_server(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    PagesManager.__init__ = init_as_on_a_running_server
    # A server compiles each script once per process; AppTest makes a new script cache for every run.
    server_script_cache = app_test_module.ScriptCache()
    app_test_module.ScriptCache = lambda: server_script_cache

    profiler = cProfile.Profile() if profile_entries else None
    original_thread = LocalScriptRunner._run_script_thread

    def profiled_thread(self):  # the script runs in its own thread, which a profiler must be started in
        profiler.enable()
        try:
            original_thread(self)
        finally:
            profiler.disable()

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=600)
    st_config.set_option("client.showErrorDetails", "full")  # the server's config redacts errors for users

    cpu_seconds = []  # of every timed run, in order

    def timed_run(profiled: bool = False) -> float:
        if profiled:
            LocalScriptRunner._run_script_thread = profiled_thread
        started, started_cpu = time.perf_counter(), time.process_time()
        try:
            at.run()
        finally:
            LocalScriptRunner._run_script_thread = original_thread
        cpu_seconds.append(time.process_time() - started_cpu)
        if at.exception:
            error = at.exception[0]
            where = [line.strip() for line in error.stack_trace if line.strip().startswith("File")][-1:]
            raise RuntimeError(f"{error.message.splitlines()[0][:200]} {' '.join(where)}")
        return time.perf_counter() - started

    result: dict = {"page": page_file, "app_imports": imported}
    try:
        landing = page_file == landing_file
        result["app_first_run"] = timed_run(profiled=profiler is not None and landing)
        if landing:
            result["first_visit"] = result["app_first_run"]
        else:
            at.switch_page(page_file)
            result["first_visit"] = timed_run(profiled=profiler is not None)
        result["first_visit_cpu"] = cpu_seconds[-1]
        at.run()  # widgets whose defaults settle on the first run
        result["warm"] = statistics.median(timed_run() for _ in range(runs))
        result["warm_cpu"] = statistics.median(cpu_seconds[-runs:])
        if landing:
            result["pair_forward"] = pair_forward_seconds(at, runs * 4)
    except RuntimeError as error:
        result["error"] = str(error)
    if profiler is not None:
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(profile_entries)
        result["profile"] = text.getvalue()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="warm reruns per page (median)")
    parser.add_argument("--page", action="append", help="only this page file (repeatable), e.g. pages/flops.py")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="print the top N cProfile entries (cumulative) of each first visit")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)  # one page, a JSON line out
    args = parser.parse_args()

    pages = app_pages()
    landing_file = pages[0][0]
    if args.child:
        print(json.dumps(visit(args.page[0], landing_file, args.runs, args.profile)))
        return 0
    chosen = [(file, title) for file, title in pages if not args.page or file in args.page]
    if not chosen:
        print(f"no page {args.page}; the pages are {[file for file, _ in pages]}", file=sys.stderr)
        return 2

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    print(f"server time per page, each in a fresh process; warm: median of {args.runs} reruns; "
          f"budgets: first visit <= {FIRST_VISIT_BUDGET_S:g} s, warm <= {WARM_BUDGET_S:g} s")
    print(f"(CPU): the process's CPU time during the same run, which waiting for a busy core does not inflate; "
          f"load average now {' / '.join(f'{n:.1f}' for n in os.getloadavg())} on {os.cpu_count()} cores")
    print()
    width = max(len(title) for _, title in chosen) + 2
    print(f"{'page':<{width}}{'first visit':>13}{'(CPU)':>9}{'warm':>9}{'(CPU)':>9}  verdict")
    failures, profiles, app_first_runs, imports, landing_ratio = 0, [], [], [], None
    for file, title in chosen:
        child = subprocess.run([sys.executable, __file__, "--child", "--page", file, "--runs", str(args.runs),
                                "--profile", str(args.profile)], cwd=ROOT, env=env, capture_output=True, text=True)
        lines = child.stdout.strip().splitlines()
        if child.returncode != 0 or not lines:
            print(f"{title:<{width}}the measuring process failed: {child.stderr.strip().splitlines()[-1:]}")
            failures += 1
            continue
        result = json.loads(lines[-1])
        if "profile" in result:
            profiles.append((title, result["profile"]))
        if "error" in result:
            print(f"{title:<{width}}raised: {result['error']}")
            failures += 1
            continue
        app_first_runs.append(result["app_first_run"])
        imports.append(result["app_imports"])
        slow = [name for name, seconds, budget in (("first visit", result["first_visit"], FIRST_VISIT_BUDGET_S),
                                                   ("warm", result["warm"], WARM_BUDGET_S)) if seconds > budget]
        failures += bool(slow)
        verdict = "ok" if not slow else "OVER BUDGET: " + ", ".join(slow)
        print(f"{title:<{width}}{result['first_visit'] * 1000:>11.0f}ms{result['first_visit_cpu'] * 1000:>7.0f}ms"
              f"{result['warm'] * 1000:>7.0f}ms{result['warm_cpu'] * 1000:>7.0f}ms  {verdict}")
        if "pair_forward" in result:
            landing_ratio = (title, result["warm"] / result["pair_forward"], result["pair_forward"])
    if app_first_runs:
        print()
        print(f"app's first run (landing page, models loaded and verified): median "
              f"{statistics.median(app_first_runs) * 1000:.0f} ms over {len(app_first_runs)} fresh processes")
        print(f"before it, once per server: importing the app's modules and libraries (streamlit, torch, plotly, "
              f"captum, pandas, ...): median {statistics.median(imports) * 1000:.0f} ms")
    if landing_ratio:
        title, ratio, pair = landing_ratio
        failures += ratio > LANDING_FORWARD_RATIO
        print(f"{title} warm rerun / its two bare forward passes ({pair * 1000:.1f} ms): {ratio:.1f}x "
              f"({'ok' if ratio <= LANDING_FORWARD_RATIO else 'OVER BUDGET'}: <= {LANDING_FORWARD_RATIO:g}x)")
    print(f"load average at the end: {' / '.join(f'{n:.1f}' for n in os.getloadavg())}")
    for title, profile in profiles:
        print(f"\n--- {title}: first visit, cProfile (cumulative) ---\n{profile.strip()}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
