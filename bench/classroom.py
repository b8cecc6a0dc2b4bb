"""Capacity of the class deployment: S simulated students against 1 and against 2 replicas behind HAProxy.

Each level starts the deployment `make serve` runs (serving.config: replicas under supervisord behind HAProxy,
on free loopback ports), warms every replica with one student of its own, then runs S students for a bounded
time with `python -m serving.classroom_load` (Locust; each student speaks Streamlit's own protocol: no browser,
so the load on this small machine is the server's). Printed per S: actions per second, p50/p95 per action (from
the rerun request to its `script_finished`), errors, server CPU seconds per action (psutil, the replicas'
processes), memory per replica (peak resident), the load generator's own CPU; then, per replica count, the
largest S whose Classify p95 is at most 2 s with no error, and that S per core.

    .venv/bin/python bench/classroom.py                       # S = 5, 10, 20, 40; 60 s each; 1 and 2 replicas
    .venv/bin/python bench/classroom.py --levels 5,10 --seconds 30 --replicas 1

The machine's other work counts: its load average is printed beside the figures. Results also go to
bench/results/classroom-<time>.json. Needs Debian's haproxy (`apt-get install haproxy`).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from serving import config, control  # noqa: E402  (the repository root is put on the path above)
from serving.classroom import PHOTOS, UPLOAD_KEY, VISITS  # noqa: E402
from serving.streamlit_client import StreamlitSession  # noqa: E402

RESULTS_DIR = ROOT / "bench" / "results"
START_S = 240
WARM_TIMEOUT_S = 240
CLASSIFY_P95_MAX_S = 2.0
MAX_STUDENTS, MAX_SECONDS = 200, 600  # bounds: a run never runs away
SAMPLE_EVERY_S = 1.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def deployed(replicas: int, runtime: Path):
    """The deployment with `replicas` replicas, running until every replica and the load balancer answer; stopped
    with all its programs afterwards."""
    ports = [free_port() for _ in range(replicas + 1)]
    deployment = config.plan(runtime, port=ports[0], replica_ports=tuple(ports[1:]))
    try:
        with control.running(deployment, START_S):
            yield deployment
    except TimeoutError as error:
        raise SystemExit(str(error)) from error


def replica_processes(deployment: config.Deployment) -> dict[str, psutil.Process]:
    return {name: psutil.Process(state.pid) for name, state in control.programs(deployment).items()
            if name.startswith("replica") and state.pid}


def cpu_seconds(process: psutil.Process) -> float:
    """User and system CPU of a process and its children, so far."""
    total = 0.0
    for member in [process, *process.children(recursive=True)]:
        try:
            times = member.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def warm(deployment: config.Deployment) -> None:
    """One student per replica, straight to it: opens, uploads, visits the round once (loads every model and
    fills the caches a class would fill in its first minute)."""
    for port in deployment.replica_ports:
        with StreamlitSession(f"http://127.0.0.1:{port}", timeout_s=WARM_TIMEOUT_S) as student:
            first = student.open(page="classify")
            student.upload(first.widget_id(UPLOAD_KEY), PHOTOS[0].name, PHOTOS[0].read_bytes(), "image/jpeg")
            for _, page, query in VISITS:
                student.rerun(page=page, query=query)


def level(deployment: config.Deployment, students: int, seconds: float, out: Path) -> dict:
    """S students for `seconds` through the load balancer, with the replicas' CPU and memory watched."""
    replicas = replica_processes(deployment)
    cpu_before = {name: cpu_seconds(process) for name, process in replicas.items()}
    peak_rss = {name: 0 for name in replicas}
    summary_path = out / f"load-{len(replicas)}r-{students}s.json"
    load = subprocess.Popen([sys.executable, "-m", "serving.classroom_load", "--host", deployment.url, "--users",
                             str(students), "--seconds", str(seconds), "--json", str(summary_path)],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    load_process = psutil.Process(load.pid)
    load_cpu = 0.0
    while load.poll() is None:
        for name, process in replicas.items():
            try:
                peak_rss[name] = max(peak_rss[name], process.memory_info().rss)
            except psutil.NoSuchProcess:
                pass
        try:
            load_cpu = cpu_seconds(load_process)
        except psutil.NoSuchProcess:
            pass
        time.sleep(SAMPLE_EVERY_S)
    errors = load.stderr.read() if load.stderr else ""
    if not summary_path.exists():
        raise SystemExit(f"the load generator wrote no summary:\n{errors[-3000:]}")
    summary = json.loads(summary_path.read_text())
    server_cpu = sum(cpu_seconds(process) - cpu_before[name] for name, process in replicas.items())
    records = summary.pop("records")
    return {**summary, "replicas": len(replicas), "server_cpu_s": server_cpu,
            "server_cpu_per_action_s": server_cpu / max(1, len(records)),
            "load_generator_cpu_s": load_cpu, "peak_rss_mb": {name: rss / 2**20 for name, rss in peak_rss.items()},
            "load_average": os.getloadavg()}


def row(result: dict) -> str:
    kinds = result["kinds"]

    def p50_p95(kind: str) -> str:
        numbers = kinds.get(kind)
        return f"{numbers['p50_s']:5.2f}/{numbers['p95_s']:5.2f}" if numbers else "    -/    -"

    memory = "/".join(f"{mb:.0f}" for mb in result["peak_rss_mb"].values())
    return (f"{result['users']:>4} {result['actions_per_s']:7.2f} " +
            " ".join(p50_p95(kind) for kind in ["open", "upload", *(visit[0] for visit in VISITS)]) +
            f" {result['errors']:>6} {result['server_cpu_per_action_s']:8.3f} {memory:>11}"
            f" {result['load_generator_cpu_s'] / result['seconds']:6.0%} {result['load_average'][0]:5.1f}")


HEADER = ("   S  act/s " + " ".join(f"{kind[:11]:>11}" for kind in ["open", "upload", *(v[0] for v in VISITS)]) +
          " errors cpu/act  peak MB/rep  loadgen  load")


def capacity(results: list[dict]) -> int:
    """The largest S whose Classify p95 is within CLASSIFY_P95_MAX_S with no error (0: none)."""
    passed = [result["users"] for result in results if result["errors"] == 0 and result["unfinished"] == 0
              and result["kinds"].get("classify", {}).get("p95_s", float("inf")) <= CLASSIFY_P95_MAX_S]
    return max(passed, default=0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--levels", default="5,10,20,40", help="the class sizes S, comma-separated")
    parser.add_argument("--seconds", type=float, default=60, help="how long each class works")
    parser.add_argument("--replicas", default="1,2", help="replica counts, comma-separated")
    arguments = parser.parse_args()
    levels = [int(text) for text in arguments.levels.split(",")]
    replica_counts = [int(text) for text in arguments.replicas.split(",")]
    if not all(1 <= students <= MAX_STUDENTS for students in levels) or not 0 < arguments.seconds <= MAX_SECONDS:
        parser.error(f"levels within 1..{MAX_STUDENTS}, seconds within 1..{MAX_SECONDS}")
    if not Path(config.HAPROXY).exists():
        parser.error(f"HAProxy is missing ({config.HAPROXY}): `apt-get install haproxy`")
    cores = config.available_cpus()
    print(f"{cores} cores; load average at start {os.getloadavg()[0]:.1f}; {arguments.seconds:.0f} s per level; "
          f"times p50/p95 in seconds; cpu/act: replicas' CPU seconds per action; loadgen: the load generator's "
          f"share of one core", flush=True)
    report = {"cores": cores, "seconds_per_level": arguments.seconds, "classify_p95_max_s": CLASSIFY_P95_MAX_S,
              "runs": {}}
    with tempfile.TemporaryDirectory(prefix="classroom-") as scratch:
        for replicas in replica_counts:
            runtime = Path(scratch) / f"serve-{replicas}"
            with deployed(replicas, runtime) as deployment:
                warm(deployment)
                print(f"\n{replicas} replica{'s' if replicas > 1 else ''} behind HAProxy ({deployment.threads} "
                      f"torch thread{'s' if deployment.threads > 1 else ''} each)\n{HEADER}", flush=True)
                results = []
                for students in levels:
                    results.append(level(deployment, students, arguments.seconds, Path(scratch)))
                    print(row(results[-1]), flush=True)
            best = capacity(results)
            report["runs"][str(replicas)] = {"levels": results, "capacity_students": best,
                                             "students_per_core": best / cores}
            print(f"largest S with Classify p95 <= {CLASSIFY_P95_MAX_S:g} s and no error: {best} "
                  f"({best / cores:.1f} students per core)", flush=True)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"classroom-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(report, indent=1))
    print(f"\nresults: {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
