"""A class at once: the deployment `make serve` runs (two Streamlit replicas behind HAProxy, kept running by
supervisord), on free loopback ports, driven through the load balancer by clients that speak Streamlit's own
protocol and by a real Chromium.

- 20 uploads in a row from one client all succeed and all land on one replica (HAProxy's counters say so),
  and an upload near server.maxUploadSize passes the load balancer;
- the same replicas behind a round-robin HAProxy without the affinity cookie fail uploads with HTTP 400 (the
  proof that the first test can fail);
- Chromium uploads a photo through the load balancer and walks every page, with no install button and no mirror
  field offered (installing is the server owner's, from the command line);
- a replica killed mid-session is restarted by supervisord; its student's tab reconnects to a live replica and
  is told in one line to upload the photo again, with a working page; a student on the other replica sees no
  error. Chromium shows the same to a student whose next step after the loss is another page (Streamlit's
  frontend reconnects without a rerun, and a page switch drops the URL's mark: the resumed session's id says
  it instead).
"""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image

from conftest import SAMPLES_DIR, app_pages, fail_or_skip
from serving import config, control
from serving.streamlit_client import StreamlitSession, UploadError
from test_browser import (CHROMIUM, CHROMIUM_ARGS, PAGE_TIMEOUT_MS, SHOTS, assert_no_exception, free_port,
                          open_with_photo, screenshot_whole_page, slug, wait_until_idle)
from ui.picture import LOST_SESSION, LOST_UPLOAD
from ui.state import PICTURE_PARAM, UPLOAD_KEY, UPLOADED_MARK

START_S = 180  # two replicas importing torch and Streamlit at once on a busy 2-core machine
RUN_TIMEOUT_S = 180
RESTART_S = 90
HALL_SHOTS = SHOTS / "lecture_hall"
PHOTOS = [SAMPLES_DIR / name for name in ("dog.jpg", "horse.jpg", "cat.jpg")]
NO_PICTURE = "Choose a picture in the sidebar"  # what a page that needs a picture says without one
MARKED = f"{PICTURE_PARAM}={UPLOADED_MARK}"
measured: dict[str, float] = {}  # printed at the end of the module (run with -s to see them)


def requests_per_replica(deployment: config.Deployment) -> dict[str, int]:
    """HAProxy's count of requests per replica."""
    return {name: int(row["req_tot"] or 0) for name, row in control.balancer_statistics(deployment).items()}


def wait_for(condition, timeout_s: float, what: str, logs: Path | None = None) -> float:
    """Poll until `condition()` holds; returns the seconds it took, fails after `timeout_s`."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout_s:
            tails = "".join(f"\n--- {path.name}:\n{path.read_text()[-1500:]}" for path in
                            sorted(logs.glob("*.log"))) if logs else ""
            pytest.fail(f"{what} did not happen within {timeout_s} s{tails}")
        time.sleep(0.2)
    return time.monotonic() - started


@contextmanager
def running(deployment: config.Deployment) -> Iterator[subprocess.Popen]:
    """`control.running`, failing the test (with the ends of the logs) when the deployment does not start."""
    try:
        with control.running(deployment, START_S) as process:
            yield process
    except TimeoutError as error:
        pytest.fail(str(error))


@pytest.fixture(scope="module")
def hall(tmp_path_factory) -> Iterator[config.Deployment]:
    """Two replicas behind HAProxy with the affinity cookie, each warmed up by one session of its own."""
    if not Path(config.HAPROXY).exists():
        fail_or_skip(f"HAProxy is missing ({config.HAPROXY}): `apt-get install haproxy` (.ci/run does)")
    ports = [free_port() for _ in range(3)]
    deployment = config.plan(tmp_path_factory.mktemp("hall") / "serve", port=ports[0], replica_ports=tuple(ports[1:]))
    started = time.monotonic()
    with running(deployment):
        measured["start to healthy (s)"] = time.monotonic() - started
        for port in deployment.replica_ports:  # the first session of a replica loads and checks every model
            with StreamlitSession(f"http://127.0.0.1:{port}", timeout_s=RUN_TIMEOUT_S) as warm:
                assert warm.open().ok
        measured["start to warm (s)"] = time.monotonic() - started
        measured.update(replica_memory_mb(deployment))
        yield deployment
        logs = {path.name: path.read_text() for path in deployment.runtime.glob("replica-*.log")}
    for name, text in logs.items():
        assert "Traceback" not in text, f"{name} logged an exception:\n{text[-3000:]}"
    print("\nlecture hall:", ", ".join(f"{name} {value:.1f}" for name, value in measured.items()))


def replica_memory_mb(deployment: config.Deployment) -> dict[str, float]:
    import psutil

    return {f"{name} RSS (MB)": psutil.Process(state.pid).memory_info().rss / 2**20
            for name, state in control.programs(deployment).items() if name.startswith("replica")}


def upload_statuses(url: str, count: int) -> tuple[list[int], dict[str, str]]:
    """One client uploads `count` photos in a row: the HTTP status of each PUT (200 for a run that finished without
    an exception and made the photo the picture), and the client's cookies."""
    statuses = []
    with StreamlitSession(url, timeout_s=RUN_TIMEOUT_S) as student:
        first = student.open()
        assert first.ok, (first.status, first.exceptions)
        uploader = first.widget_id(UPLOAD_KEY)
        for index in range(count):
            photo = PHOTOS[index % len(PHOTOS)]
            try:
                result = student.upload(uploader, f"{index:02d}_{photo.name}", photo.read_bytes(), "image/jpeg")
            except UploadError as error:
                statuses.append(error.status)
                continue
            assert result.ok, (index, result.status, result.exceptions)
            assert not result.has_text(NO_PICTURE) and MARKED in student.query_string, (index, result.texts)
            statuses.append(200)
        return statuses, student.cookies


def test_twenty_uploads_in_a_row_from_one_client_land_on_one_replica(hall):
    before = requests_per_replica(hall)
    started = time.monotonic()
    statuses, cookies = upload_statuses(hall.url, 20)
    measured["20 uploads (s)"] = time.monotonic() - started
    assert statuses == [200] * 20
    replica = cookies[config.COOKIE_NAME]
    assert replica in hall.replica_names
    after = requests_per_replica(hall)
    served = {name: after[name] - before[name] for name in after}
    # The health request, the websocket and the 20 PUTs: all on the replica the cookie names.
    assert served[replica] >= 22 and all(count == 0 for name, count in served.items() if name != replica), served


def test_an_upload_near_the_upload_limit_passes_the_load_balancer(hall):
    from shufflenet_viz.images import UPLOAD_LIMIT_MB

    side = 2850  # an uncompressed BMP of 24.4 MB: HAProxy sets no body limit, Streamlit's is 25 MB
    buffer = io.BytesIO()
    Image.new("RGB", (side, side), (90, 140, 60)).save(buffer, format="BMP")
    data = buffer.getvalue()
    assert 0.9 * UPLOAD_LIMIT_MB * 2**20 < len(data) < UPLOAD_LIMIT_MB * 2**20
    with StreamlitSession(hall.url, timeout_s=RUN_TIMEOUT_S) as student:
        first = student.open()
        result = student.upload(first.widget_id(UPLOAD_KEY), "large.bmp", data, "image/bmp")
        assert result.ok, (result.status, result.exceptions)
        assert MARKED in student.query_string


def test_without_the_affinity_cookie_uploads_fail_on_every_other_request(hall, tmp_path):
    spread = replace(config.plan(tmp_path / "roundrobin", port=free_port(), replica_ports=hall.replica_ports),
                     affinity=False)
    config.write(spread)
    with open(spread.runtime / "haproxy.log", "w") as log:
        haproxy = subprocess.Popen([spread.haproxy, "-db", "-f", str(spread.haproxy_path)], stdout=log,
                                   stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: control.healthy(spread.port), 30, "the round-robin load balancer's start", spread.runtime)
        statuses, cookies = upload_statuses(spread.url, 6)
        served = requests_per_replica(spread)
    finally:
        haproxy.terminate()
        haproxy.wait(timeout=30)
    assert config.COOKIE_NAME not in cookies
    # The session lives on the replica that holds its websocket; the PUTs alternate between the two.
    assert statuses.count(400) >= 2 and statuses.count(200) >= 2, statuses
    assert all(count > 0 for count in served.values()), served


def test_chromium_through_the_load_balancer_walks_every_page_with_no_installer(hall):
    if not CHROMIUM.exists():
        fail_or_skip(f"{CHROMIUM} is missing: install Debian's Chromium with `apt-get install -y chromium`")
    from playwright.sync_api import expect, sync_playwright

    log_path = hall.runtime / "replica-1.log"  # assert_no_exception quotes a log; the module checks both after
    photo = PHOTOS[1]
    HALL_SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = open_with_photo(browser, hall.url, photo)
            sidebar = page.get_by_test_id("stSidebar")
            cookies = {cookie["name"]: cookie["value"] for cookie in page.context.cookies()}
            assert cookies.get(config.COOKIE_NAME) in hall.replica_names, cookies
            for index, (file, title) in enumerate(app_pages()):
                sidebar.get_by_test_id("stSidebarNav").get_by_text(title, exact=True).click()
                page.wait_for_timeout(500)
                wait_until_idle(page)
                assert_no_exception(page, f"page {title} ({file}) through the load balancer", log_path)
                expect(sidebar.get_by_test_id("stImage")).to_contain_text(photo.name)
                assert MARKED in page.url, page.url
                # Installing is the server owner's: no button for it and no field for a mirror, on any page.
                assert page.get_by_role("button", name="Download and install").count() == 0, title
                assert sidebar.get_by_test_id("stTextInput").count() == 0, title
                assert page.get_by_test_id("stTextInput").filter(has_text=re.compile("mirror", re.I)).count() == 0
                assert "Its owner installs" in sidebar.inner_text(), title
                screenshot_whole_page(page, HALL_SHOTS / f"{index:02d}_{slug(title)}.png")
            assert {cookie["name"]: cookie["value"] for cookie in page.context.cookies()}[config.COOKIE_NAME] \
                == cookies[config.COOKIE_NAME]  # the whole walk on one replica
        finally:
            browser.close()


def test_a_killed_replica_is_restarted_and_only_its_students_upload_again(hall):
    students = []
    try:
        while len({student.cookies[config.COOKIE_NAME] for student in students}) < 2:  # one on each replica
            assert len(students) < 6, "the load balancer put every new client on one replica"
            student = StreamlitSession(hall.url, timeout_s=RUN_TIMEOUT_S)
            students.append(student)
            first = student.open()
            result = student.upload(first.widget_id(UPLOAD_KEY), "dog.jpg", PHOTOS[0].read_bytes(), "image/jpeg")
            assert result.ok and MARKED in student.query_string
        lost, kept = students[-1], next(student for student in students if student.cookies[config.COOKIE_NAME]
                                         != students[-1].cookies[config.COOKIE_NAME])
        victim = lost.cookies[config.COOKIE_NAME]
        port = hall.replica_ports[hall.replica_names.index(victim)]
        old_pid = control.programs(hall)[victim].pid
        killed = time.monotonic()
        os.kill(old_pid, signal.SIGKILL)

        # The other replica's student goes on, picture and all.
        other = kept.rerun(page="feature_maps")
        assert other.ok and not other.has_text(LOST_UPLOAD) and not other.has_text(NO_PICTURE), other.texts

        # The lost tab reconnects as the browser does (its websocket closed): to a live replica, a new session.
        back = lost.reconnect()
        measured["killed to student served again (s)"] = time.monotonic() - killed
        assert back.ok, (back.status, back.exceptions)
        assert sum(LOST_UPLOAD in text for text in back.texts) == 1, back.texts
        assert back.has_text(NO_PICTURE)  # the page works, and says where a picture comes from
        assert MARKED not in lost.query_string  # the mark leaves the URL: reloading the tab does not say it again

        def restarted() -> bool:
            state = control.programs(hall)[victim]
            return state.state == "RUNNING" and state.pid not in (0, old_pid) and control.healthy(port)

        wait_for(restarted, RESTART_S, f"supervisord's restart of {victim}", hall.runtime)
        measured["killed to restarted and healthy (s)"] = time.monotonic() - killed
        wait_for(lambda: control.balancer_statistics(hall)[victim]["status"] == "UP", 10, f"HAProxy seeing {victim} up")

        again = lost.upload(back.widget_id(UPLOAD_KEY), "horse.jpg", PHOTOS[1].read_bytes(), "image/jpeg")
        assert again.ok and not again.has_text(LOST_UPLOAD) and MARKED in lost.query_string, again.texts
        after = kept.rerun(page="")
        assert after.ok and not after.has_text(LOST_UPLOAD) and not after.has_text(NO_PICTURE), after.texts
    finally:
        for student in students:
            student.close()


def test_chromium_on_a_killed_replica_is_told_once_on_its_next_page_and_uploads_again(hall):
    if not CHROMIUM.exists():
        fail_or_skip(f"{CHROMIUM} is missing: install Debian's Chromium with `apt-get install -y chromium`")
    from playwright.sync_api import expect, sync_playwright

    HALL_SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = open_with_photo(browser, hall.url, PHOTOS[1])
            sidebar = page.get_by_test_id("stSidebar")
            victim = {cookie["name"]: cookie["value"] for cookie in page.context.cookies()}[config.COOKIE_NAME]
            old_pid = control.programs(hall)[victim].pid
            os.kill(old_pid, signal.SIGKILL)
            wait_for(lambda: control.programs(hall)[victim].pid not in (0, old_pid), RESTART_S,
                     f"supervisord's restart of {victim}", hall.runtime)

            sidebar.get_by_test_id("stSidebarNav").get_by_text("Feature maps", exact=True).click()
            expect(page.get_by_text(LOST_SESSION)).to_be_visible(timeout=PAGE_TIMEOUT_MS)
            wait_until_idle(page)
            assert page.get_by_text(LOST_SESSION).count() == 1
            assert_no_exception(page, "Feature maps after the replica was lost", hall.runtime / f"{victim}.log")
            assert sidebar.get_by_test_id("stImage").count() == 0  # no picture passed off as the student's
            screenshot_whole_page(page, HALL_SHOTS / "lost_replica_next_page.png")

            sidebar.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(PHOTOS[0]))
            expect(sidebar.get_by_test_id("stImage")).to_contain_text(PHOTOS[0].name, timeout=PAGE_TIMEOUT_MS)
            wait_until_idle(page)
            assert page.get_by_text(LOST_SESSION).count() == 0 and MARKED in page.url
            assert_no_exception(page, "Feature maps after the upload again", hall.runtime / f"{victim}.log")
            screenshot_whole_page(page, HALL_SHOTS / "lost_replica_uploaded_again.png")
        finally:
            browser.close()
