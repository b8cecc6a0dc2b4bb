"""A class at once in the gallery: the lecture hall's load generator (serving/classroom_load.py, Locust, each
student a client of Streamlit's own protocol) brings 60 simulated students into one room by its code within a
minute, one a second; each accepts the notice and uploads a photo, while Chromium shows the projected grid. Every
student's runs finish without an error and say the photo was sent, and the projector is never more than 5 s
behind: each photo is counted on it within 5 s of its "Sent".
Once against one server on SQLite, once through `make serve`'s deployment (two replicas behind HAProxy under
supervisord) on a PostgreSQL started here on loopback.

Prints the figures measured; the projected grids at the end go to /tmp/shots/gallery_class_projector*.png.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from conftest import ROOT, fail_or_skip
from test_browser import (CHROMIUM, CHROMIUM_ARGS, PAGE_TIMEOUT_MS, SHOTS, free_port, running_app,
                          screenshot_whole_page, wait_until_idle)
from test_gallery_life import postgres_cluster
from shufflenet_viz.gallery import rooms, store

STUDENTS = 60
WITHIN_S = 60.0  # every student starts within this minute
BEHIND_MAX_S = 5.0
DEPLOYMENT_START_S = 180  # two replicas importing torch and Streamlit at once on a busy 2-core machine
LOAD_MAX_S = 300  # the whole class, its last student's actions included, on a busy machine: a bound, not a goal
# The projector's own record of what it shows, every 100 ms, in wall-clock milliseconds: kept in the page, so that
# the test process (busy with 60 clients) does not delay the observation.
RECORD_JS = """() => { window.lensCounts = []; setInterval(() => {
  const m = document.querySelector('.st-key-gallery_facts');
  const found = m && m.innerText.match(/On your (\\d+) photos?/);
  window.lensCounts.push([Date.now(), found ? Number(found[1]) : 0]); }, 100); }"""


def gallery_load(url: str, code: str, out: Path) -> dict:
    """The lecture hall's load generator (its own process: Locust's gevent patches what it runs in) bringing the
    class into the room with this code, one student a second; its summary, with each student's record."""
    summary_path = out / "gallery_load.json"
    finished = subprocess.run([sys.executable, "-m", "serving.classroom_load", "--host", url, "--scenario",
                               "gallery", "--room-code", code, "--users", str(STUDENTS), "--spawn-rate",
                               str(STUDENTS / WITHIN_S), "--seconds", str(LOAD_MAX_S), "--json", str(summary_path)],
                              cwd=ROOT, capture_output=True, text=True, timeout=LOAD_MAX_S + 300)
    assert summary_path.exists(), finished.stdout[-2000:] + finished.stderr[-3000:]
    summary = json.loads(summary_path.read_text())
    summary["exit"] = finished.returncode
    return summary


def warm(url: str) -> None:
    """One visit of the landing page, as the teacher's own first visit makes before the class arrives: the server
    verifies and builds the default pair of models (built once per process, on first use)."""
    from serving.streamlit_client import StreamlitSession

    with StreamlitSession(url, timeout_s=180) as visitor:
        assert visitor.open().ok


def sixty_students(url: str, database: str, shot: str, out: Path) -> str:
    """Open a room without approval in this database, run the class against the app at `url` while Chromium
    projects the grid from it, check it, and return the figures measured as one line (the load generator's
    summary goes to `out`)."""
    from playwright.sync_api import sync_playwright

    engine = store.open_store(database)
    room = rooms.open_room(engine, ("cifar10_g1", "cifar10_g3"), moderated=False).room
    engine.dispose()
    SHOTS.mkdir(parents=True, exist_ok=True)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            projector = browser.new_page(viewport={"width": 1280, "height": 720})
            projector.set_default_timeout(PAGE_TIMEOUT_MS)
            projector.goto(f"{url}/gallery?show={room.join_code}&projector=1", wait_until="domcontentloaded")
            projector.locator(".st-key-gallery_facts").wait_for()
            wait_until_idle(projector)
            projector.evaluate(RECORD_JS)

            started = time.monotonic()
            summary = gallery_load(url, room.join_code, out)
            finished = time.monotonic()
            projector.wait_for_timeout((BEHIND_MAX_S + 1) * 1000)
            seen = [(moment / 1000, count) for moment, count in projector.evaluate("() => window.lensCounts")]
            screenshot_whole_page(projector, SHOTS / shot)
            facts = projector.locator(".st-key-gallery_facts").inner_text()
        finally:
            browser.close()

    records, students = summary["records"], summary["students"]
    assert summary["errors"] == 0, [record for record in records if record["error"]][:10]
    assert all(record["finished"] for record in records), [record for record in records if not record["finished"]]
    unsent = [student for student in students if student["sent_at"] is None]
    assert len(students) == STUDENTS and not unsent, unsent[:10]
    assert summary["exit"] == 0
    # Every student's last action is its photo's upload, and its run said "Sent" (the load generator checks it).
    assert sum(1 for record in records if record["kind"] == "send_photo") == STUDENTS
    starts = sorted(student["started_at"] for student in students)
    start_spread = starts[-1] - starts[0]
    assert start_spread <= WITHIN_S + 1, f"the {STUDENTS} students started over {start_spread:.0f} s"
    # The i-th photo sent is counted on the projector within 5 s of its "Sent".
    lags = []
    for rank, moment in enumerate(sorted(student["sent_at"] for student in students), start=1):
        caught_up = next((when for when, shown in seen if when >= moment and shown >= rank), None)
        assert caught_up is not None, f"photo {rank} never counted on the projector"
        lags.append(caught_up - moment)
    late = [f"photo {rank}: {lag:.1f} s" for rank, lag in enumerate(lags, start=1) if lag > BEHIND_MAX_S]
    assert not late, f"the projector fell more than {BEHIND_MAX_S:.0f} s behind: {late}"
    assert re.search(rf"On your {STUDENTS} photos", facts), facts
    lags.sort()
    return (f"{STUDENTS} students started within {start_spread:.0f} s, all sent in {finished - started:.0f} s, 0 "
            f"errors; the projector counted each photo {lags[len(lags) // 2]:.1f} s (median) / {lags[-1]:.1f} s "
            f"(max) after its 'Sent'; {facts.splitlines()[0]}")


def require_chromium() -> None:
    if not CHROMIUM.exists():
        fail_or_skip(f"{CHROMIUM} is missing: install Debian's Chromium with `apt-get install -y chromium`")


def test_sixty_students_on_one_server_with_sqlite(tmp_path):
    require_chromium()
    database = f"sqlite:///{tmp_path / 'gallery.db'}"
    with running_app(tmp_path, SHUFFLENET_LENS_GALLERY_DB=database) as (url, log_path):
        warm(url)
        figures = sixty_students(url, database, "gallery_class_projector.png", tmp_path)
    assert "Traceback" not in log_path.read_text(), log_path.read_text()[-3000:]
    print(f"\none server, SQLite: {figures}")


@contextmanager
def class_deployment(database: str):
    """`make serve`'s deployment (two replicas behind HAProxy, under supervisord) on free loopback ports, every
    replica on this gallery database; yields it once every replica and the load balancer answer."""
    from serving import config, control

    if not Path(config.HAPROXY).exists() and not shutil.which("haproxy"):
        fail_or_skip("HAProxy is missing: install Debian's package with `apt-get install -y haproxy`")
    runtime = Path(tempfile.mkdtemp(prefix="lens-serve-"))  # short: it holds supervisord's unix socket
    deployment = config.plan(runtime, port=free_port(), replica_ports=(free_port(), free_port()))
    try:
        with control.running(deployment, DEPLOYMENT_START_S, {store.DATABASE_ENV: database}):
            yield deployment
    except TimeoutError as error:
        pytest.fail(str(error))
    finally:
        shutil.rmtree(runtime, ignore_errors=True)


def requests_per_replica(deployment) -> dict[str, int]:
    """HAProxy's count of requests per replica."""
    from serving import control

    return {name: int(row["req_tot"] or 0) for name, row in control.balancer_statistics(deployment).items()}


def test_sixty_students_through_the_load_balancer_on_two_replicas_and_postgresql(tmp_path):
    # The lecture hall: students reach whichever replica HAProxy gives them, the projector one of the two; every
    # photo is on the projected grid within 5 s all the same, because the replicas share one PostgreSQL.
    require_chromium()
    with postgres_cluster() as (database, _data), class_deployment(database) as deployment:
        for port in deployment.replica_ports:
            warm(f"http://127.0.0.1:{port}")
        figures = sixty_students(deployment.url, database, "gallery_class_projector_replicas.png", tmp_path)
        served = requests_per_replica(deployment)
        logs = {path.name: path.read_text() for path in deployment.runtime.glob("replica-*.log")}
    assert len(served) == 2 and all(count > STUDENTS // 4 for count in served.values()), served
    for name, log in logs.items():
        assert "Traceback" not in log, f"{name}:\n{log[-3000:]}"
    print(f"\ntwo replicas behind HAProxy, PostgreSQL (requests per replica {served}): {figures}")
