"""One pass through the real app in a real browser: start `streamlit run app.py`, open a page by its own URL
first, upload a photo with the file chooser, wait for both models' top-5, then open every page of app.PAGES and
fail on any exception shown.

Debian's Chromium (`apt-get install chromium`) driven by Playwright; screenshots go to /tmp/shots/.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

from conftest import ROOT, SAMPLES_DIR, app_pages, fail_or_skip
from shufflenet_viz.images import load_image
from shufflenet_viz.inference import classify

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHOTS = Path("/tmp/shots")
LOCAL_URL_PREFIXES = ("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:", "about:")
SERVER_START_S = 90
# Pages compute on a shared 2-core machine; the first visit of a page fills its caches.
PAGE_TIMEOUT_MS = 180_000


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def running_app(log_dir: Path, **env_changes):
    """The app served on a free loopback port by `streamlit run app.py`; yields (url, log path), then stops it."""
    port = free_port()
    log_path = log_dir / "server.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
             "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **env_changes})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"streamlit exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                    if response.read().strip() == b"ok":
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"streamlit did not answer within {SERVER_START_S} s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.5)
        yield url, log_path
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The app with the shipped models only; yields (url, log path)."""
    with running_app(tmp_path_factory.mktemp("streamlit")) as served:
        yield served


def wait_until_idle(page, timeout_ms: int = PAGE_TIMEOUT_MS) -> None:
    """Until the script run is over: Streamlit shows its status widget while a run is in progress."""
    deadline = time.monotonic() + timeout_ms / 1000
    quiet_since = None
    while time.monotonic() < deadline:
        running = page.locator('[data-testid="stStatusWidget"]').count() > 0
        stale = page.locator('[data-stale="true"]').count() > 0
        if running or stale:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since > 1.5:
            return
        page.wait_for_timeout(250)
    raise AssertionError(f"the app was still running after {timeout_ms / 1000:.0f} s")


def open_with_photo(browser, url: str, photo: Path, width: int = 1400, height: int = 900):
    """A new page of `browser` at `url`, with `photo` uploaded through the sidebar's uploader and the app idle."""
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": width, "height": height})
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    page.goto(url, wait_until="domcontentloaded")
    sidebar = page.get_by_test_id("stSidebar")
    expect(sidebar.get_by_test_id("stFileUploader")).to_be_visible(timeout=PAGE_TIMEOUT_MS)
    wait_until_idle(page)
    sidebar.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(photo))
    expect(sidebar.get_by_test_id("stImage")).to_contain_text(photo.name, timeout=PAGE_TIMEOUT_MS)
    wait_until_idle(page)
    return page


def assert_no_exception(page, where: str, log_path: Path) -> None:
    shown = page.locator('[data-testid="stException"]')
    texts = [shown.nth(i).inner_text() for i in range(shown.count())]
    assert not texts, f"{where}: exception shown: {texts}\nserver log:\n{log_path.read_text()[-3000:]}"
    assert "Traceback" not in page.content(), f"{where}: a traceback is on the page"


def assert_server_log_clean(log_path: Path) -> None:
    """The server logged no exception during the walk."""
    log = log_path.read_text()
    assert "Traceback" not in log, f"the server logged an exception:\n{log[-3000:]}"


def screenshot_whole_page(page, path: Path) -> None:
    """A screenshot of the whole page: Streamlit scrolls inside its main area, so the window is made as tall
    as the content for the shot (at most 8000 px), then restored."""
    viewport = page.viewport_size
    height = page.evaluate("() => Math.max(...[...document.querySelectorAll('[data-testid=stMain], "
                           "[data-testid=stAppViewContainer]')].map(e => e.scrollHeight))")
    page.set_viewport_size({"width": viewport["width"], "height": min(max(viewport["height"], height), 8000)})
    page.wait_for_timeout(1000)  # charts re-layout to the new size
    page.screenshot(path=str(path))
    page.set_viewport_size(viewport)


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def test_upload_then_every_page_in_chromium(server, sample_image_path, cifar_pair):
    if not CHROMIUM.exists():
        fail_or_skip(f"{CHROMIUM} is missing: install Debian's Chromium with `apt-get install -y chromium`")
    from playwright.sync_api import expect, sync_playwright

    url, log_path = server
    picture = load_image(sample_image_path.read_bytes(), sample_image_path.name).image
    expected_top5 = [[name for name, _ in classify(model, picture).top(5)] for model in cifar_pair]
    pages = app_pages()
    assert pages[0][1] == "Classify"
    SHOTS.mkdir(parents=True, exist_ok=True)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})  # a projector's 16:10
            page.set_default_timeout(PAGE_TIMEOUT_MS)
            outside = []  # the app must not call out to the network (fonts, icons, telemetry)
            page.on("request", lambda request: outside.append(request.url)
                    if not request.url.startswith(LOCAL_URL_PREFIXES) else None)
            # The server is fresh: its first request goes straight to a page's own URL (a bookmark), which must
            # get the whole app (sidebar, page list), not the page file alone.
            first_file, first_title = pages[-1]
            page.goto(f"{url}/{Path(first_file).stem}", wait_until="domcontentloaded")
            sidebar = page.get_by_test_id("stSidebar")
            expect(sidebar.get_by_test_id("stFileUploader")).to_be_visible(timeout=PAGE_TIMEOUT_MS)
            expect(sidebar.get_by_test_id("stSidebarNav")).to_contain_text(pages[0][1])
            wait_until_idle(page)
            assert_no_exception(page, f"first request straight to {first_title}", log_path)
            sidebar.get_by_test_id("stSidebarNav").get_by_text(pages[0][1], exact=True).click()
            page.wait_for_timeout(500)
            wait_until_idle(page)

            with page.expect_file_chooser() as chooser:
                dropzone = sidebar.get_by_test_id("stFileUploaderDropzone")
                dropzone.get_by_role("button", name="Upload", exact=True).click()
            chooser.value.set_files(str(sample_image_path))
            expect(sidebar.get_by_test_id("stImage")).to_contain_text(sample_image_path.name,
                                                                      timeout=PAGE_TIMEOUT_MS)
            wait_until_idle(page)
            for side, names in enumerate(expected_top5):
                # Streamlit marks the container of a keyed element with the class st-key-<key>.
                chart = page.locator(f".st-key-top_k_{side}").get_by_test_id("stPlotlyChart")
                expect(chart).to_contain_text("Top 5", timeout=PAGE_TIMEOUT_MS)
                chart_text = chart.text_content()
                assert "Top 5" in chart_text
                assert all(name in chart_text for name in names), (side, names, chart_text)
            assert_no_exception(page, "Classify after the upload", log_path)
            # A model card renders its content when opened.
            page.get_by_text(f"Model card: {cifar_pair[0].label}", exact=True).click()
            expect(page.get_by_test_id("stMetric").filter(has_text="Test accuracy")).to_contain_text(
                f"{cifar_pair[0].entry['metrics']['test_accuracy']:.2%}")
            wait_until_idle(page)
            assert_no_exception(page, "Classify with a model card open", log_path)

            for index, (file, title) in enumerate(pages):
                sidebar.get_by_test_id("stSidebarNav").get_by_text(title, exact=True).click()
                page.wait_for_timeout(500)
                wait_until_idle(page)
                assert_no_exception(page, f"page {title} ({file})", log_path)
                # The uploaded picture is still the current one after the page switch.
                expect(sidebar.get_by_test_id("stImage")).to_contain_text(sample_image_path.name)
                screenshot_whole_page(page, SHOTS / f"{index:02d}_{slug(title)}.png")
            assert not outside, f"the page requested addresses outside this machine: {sorted(set(outside))}"
        finally:
            browser.close()
    assert_server_log_clean(log_path)


def choose(page, label: str, option: str) -> None:
    """Pick `option` in the main area's selectbox labelled `label`, as a user does: open it, click the option."""
    box = page.get_by_test_id("stMain").get_by_test_id("stSelectbox").filter(
        has=page.get_by_test_id("stWidgetLabel").get_by_text(label, exact=True))
    box.click()
    page.get_by_role("option", name=option, exact=True).click()
    page.wait_for_timeout(500)
    wait_until_idle(page)


def test_every_view_of_the_explore_pages_in_chromium(server, cifar_pair):
    """Feature maps, Attributions and Information flow with a photo of one's own: every point of a unit, every
    attribution method and both measurement spans render for g=1 and g=3, with no exception or error box."""
    if not CHROMIUM.exists():
        fail_or_skip(f"{CHROMIUM} is missing: install Debian's Chromium with `apt-get install -y chromium`")
    from playwright.sync_api import expect, sync_playwright

    from shufflenet_viz.attributions import METHODS
    from shufflenet_viz.features import POINT_LABELS, STEM

    url, log_path = server
    photo = SAMPLES_DIR / "horse.jpg"
    labels = [model.label for model in cifar_pair]
    SHOTS.mkdir(parents=True, exist_ok=True)

    def check(page, where: str, charts_at_least: int, names_models: bool = True) -> None:
        assert_no_exception(page, where, log_path)
        errors = page.get_by_test_id("stMain").get_by_test_id("stAlertContentError")
        assert errors.count() == 0, f"{where}: error shown: {errors.all_inner_texts()}"
        charts = page.get_by_test_id("stMain").get_by_test_id("stPlotlyChart").count()
        assert charts >= charts_at_least, f"{where}: {charts} charts, expected at least {charts_at_least}"
        main_text = page.get_by_test_id("stMain").inner_text()
        assert not names_models or all(label in main_text for label in labels), f"{where}: a model is missing"

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = open_with_photo(browser, f"{url}/feature_maps", photo, 1600, 1000)
            sidebar = page.get_by_test_id("stSidebar")

            # Feature maps: every point of a unit (grid and the large channel per model), then the stem.
            for point, label in POINT_LABELS.items():
                if point == STEM:
                    continue
                choose(page, "Point", label)
                check(page, f"feature maps, {label}", charts_at_least=4)
            choose(page, "Layer", STEM)
            check(page, "feature maps, stem", charts_at_least=4)
            screenshot_whole_page(page, SHOTS / "explore_feature_maps_stem.png")

            # Attributions: every method, both models, plus the per-group bars below.
            sidebar.get_by_test_id("stSidebarNav").get_by_text("Attributions", exact=True).click()
            page.wait_for_timeout(500)
            wait_until_idle(page)
            for method in METHODS.values():
                choose(page, "Method", method)
                check(page, f"attributions, {method}", charts_at_least=4)
                for side in (0, 1):
                    expect(page.locator(f".st-key-at_overlay_{side}").get_by_test_id("stPlotlyChart")).to_be_visible()
                    expect(page.locator(f".st-key-at_groups_{side}").get_by_test_id("stPlotlyChart")).to_be_visible()
                if method == METHODS["integrated_gradients"]:
                    expect(page.get_by_test_id("stMetric").filter(has_text="IG convergence delta")).to_have_count(2)
                screenshot_whole_page(page, SHOTS / f"explore_attributions_{slug(method)}.png")

            # Information flow: both spans of the measurement, with the structure and the ablation.
            sidebar.get_by_test_id("stSidebarNav").get_by_text("Information flow", exact=True).click()
            page.wait_for_timeout(500)
            wait_until_idle(page)
            check(page, "information flow, the next unit", charts_at_least=3, names_models=False)
            page.get_by_test_id("stMain").get_by_text("the rest of the stage", exact=True).click()
            page.wait_for_timeout(500)
            wait_until_idle(page)
            check(page, "information flow, the rest of the stage", charts_at_least=3, names_models=False)
            expect(page.get_by_test_id("stMetric").filter(has_text="influence crossing groups")).to_have_count(3)
            screenshot_whole_page(page, SHOTS / "explore_information_flow.png")
        finally:
            browser.close()
    assert_server_log_clean(log_path)
