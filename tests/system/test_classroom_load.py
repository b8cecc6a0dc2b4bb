"""The protocol-level load test at a small class: 5 simulated students (Locust, Streamlit's own protocol) for 30 s,
against one replica and against two behind the load balancer; no action fails and every one got its
`script_finished`."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path


from conftest import ROOT, fail_or_skip
from serving import config
from serving.classroom import VISITS
from test_browser import free_port, running_app
from test_lecture_hall import running

STUDENTS = 5
SECONDS = 30
# Every student opens the app and uploads a photo, then walks the round; with think times of 2-6 s each one makes
# at least this many visits in 30 s even on a slow machine.
VISITS_AT_LEAST = STUDENTS * 2


def load(url: str, out: Path) -> dict:
    """`python -m serving.classroom_load` against `url` (its own process: Locust's gevent patches what it runs
    in); its summary."""
    summary_path = out / "summary.json"
    finished = subprocess.run([sys.executable, "-m", "serving.classroom_load", "--host", url, "--users",
                               str(STUDENTS), "--seconds", str(SECONDS), "--json", str(summary_path)],
                              cwd=ROOT, capture_output=True, text=True, timeout=SECONDS + 300)
    assert summary_path.exists(), finished.stdout[-2000:] + finished.stderr[-3000:]
    summary = json.loads(summary_path.read_text())
    summary["exit"] = finished.returncode
    return summary


def check(summary: dict) -> None:
    records = summary["records"]
    assert summary["errors"] == 0, summary["error_samples"]
    assert all(record["finished"] for record in records), [r for r in records if not r["finished"]]
    assert summary["exit"] == 0
    by_kind = {kind: sum(1 for record in records if record["kind"] == kind) for kind in
               ["open", "upload", *(visit[0] for visit in VISITS)]}
    assert by_kind["open"] == by_kind["upload"] == STUDENTS, by_kind
    assert sum(by_kind[visit[0]] for visit in VISITS) >= VISITS_AT_LEAST, by_kind
    print(f"\n{STUDENTS} students, {summary['seconds']:.0f} s: {summary['actions']} actions "
          f"({summary['actions_per_s']:.2f}/s); p95 by action: " +
          ", ".join(f"{kind} {numbers['p95_s']:.2f} s" for kind, numbers in summary["kinds"].items()))


def test_five_students_on_one_replica(tmp_path):
    with running_app(tmp_path) as (url, _):
        check(load(url, tmp_path))


def test_five_students_through_the_load_balancer_on_two_replicas(tmp_path):
    if not Path(config.HAPROXY).exists():
        fail_or_skip(f"HAProxy is missing ({config.HAPROXY}): `apt-get install haproxy` (.ci/run does)")
    ports = [free_port() for _ in range(3)]
    deployment = config.plan(tmp_path / "serve", port=ports[0], replica_ports=tuple(ports[1:]))
    started = time.monotonic()
    with running(deployment):
        print(f"\ntwo replicas healthy after {time.monotonic() - started:.0f} s")
        check(load(deployment.url, tmp_path))
