"""The lesson, the unit page and the slide exports in a real browser, in projector mode at 1280x720: walk the
lesson from step 1 to the end, reload a step's URL and land on that step, click a node of the unit diagram and
see its feature maps, download the HTML and GIF exports, and play the HTML file in Chromium with no network.

Debian's Chromium (`apt-get install chromium`) driven by Playwright; screenshots go to /tmp/shots/.
"""

from __future__ import annotations

import io
from urllib.parse import parse_qs, urlparse

from PIL import Image

from conftest import fail_or_skip
from test_browser import (CHROMIUM, CHROMIUM_ARGS, LOCAL_URL_PREFIXES, PAGE_TIMEOUT_MS, SHOTS, assert_no_exception,
                          assert_server_log_clean, server, wait_until_idle)

__all__ = ["server"]  # the module-scoped app server fixture, shared with test_browser.py
PROJECTOR_VIEWPORT = {"width": 1280, "height": 720}
LESSON_TITLES = ["1x1 convolutions dominate", "Group convolution", "Stacked groups go blind",
                 "The channel shuffle", "The ShuffleNet unit", "The network and its cost", "The result on your picture"]
GIF_TIMEOUT_MS = 300_000  # every frame rendered in a headless Chromium on a shared 2-core machine


def drawn_positions(page) -> list[tuple[float, float]]:
    """Where the browser drew the markers of the animation's first group (their SVG translations, rounded)."""
    transforms = page.evaluate("() => Array.from(document.querySelectorAll('.scatterlayer .trace')[0]"
                               ".querySelectorAll('path.point')).map(e => e.getAttribute('transform'))")
    return [tuple(round(float(v), 1) for v in t[len("translate("):-1].split(",")) for t in transforms]


def click_and_wait(page, locator) -> None:
    locator.click()
    page.wait_for_timeout(500)
    wait_until_idle(page)


def test_lesson_unit_click_and_exports_in_chromium(server, tmp_path, cifar_pair):
    if not CHROMIUM.exists():
        fail_or_skip(f"{CHROMIUM} is missing: install Debian's Chromium with `apt-get install -y chromium`")
    from playwright.sync_api import expect, sync_playwright

    url, log_path = server
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context(viewport=PROJECTOR_VIEWPORT, accept_downloads=True)
            page = context.new_page()
            page.set_default_timeout(PAGE_TIMEOUT_MS)
            outside = []
            page.on("request", lambda request: outside.append(request.url)
                    if not request.url.startswith(LOCAL_URL_PREFIXES) else None)

            # The lesson, step by step, from a bookmark of step 1 in projector mode.
            page.goto(f"{url}/lesson?step=1&projector=1", wait_until="domcontentloaded")
            expect(page.get_by_test_id("stMain").locator("h1").first).to_have_text(
                f"Lesson 1 of 7: {LESSON_TITLES[0]}", timeout=PAGE_TIMEOUT_MS)
            wait_until_idle(page)
            # A projector shows the page: projector mode starts with the sidebar collapsed.
            expect(page.get_by_test_id("stSidebar")).to_have_attribute("data-collapsed", "true")
            for step, title in enumerate(LESSON_TITLES, start=1):
                expect(page.get_by_test_id("stMain").locator("h1").first).to_have_text(
                    f"Lesson {step} of {len(LESSON_TITLES)}: {title}")
                assert page.url.split("?")[1].count(f"step={step}") == 1, page.url
                assert "projector=1" in page.url
                assert page.get_by_test_id("stMain").get_by_test_id("stPlotlyChart").count() >= 1, title
                assert_no_exception(page, f"lesson step {step}", log_path)
                page.wait_for_timeout(800)  # charts finish drawing
                page.screenshot(path=str(SHOTS / f"lesson_step_{step}.png"))
                if step < len(LESSON_TITLES):
                    click_and_wait(page, page.locator(".st-key-lesson_next").get_by_role("button"))
            expect(page.locator(".st-key-lesson_next").get_by_role("button")).to_be_disabled()

            # Back to step 4, then a reload of that URL (a new session) lands on step 4 again.
            for _ in range(3):
                click_and_wait(page, page.locator(".st-key-lesson_back").get_by_role("button"))
            expect(page.get_by_test_id("stMain").locator("h1").first).to_have_text(f"Lesson 4 of 7: {LESSON_TITLES[3]}")
            assert "step=4" in page.url
            page.reload(wait_until="domcontentloaded")
            expect(page.get_by_test_id("stMain").locator("h1").first).to_have_text(
                f"Lesson 4 of 7: {LESSON_TITLES[3]}", timeout=PAGE_TIMEOUT_MS)
            wait_until_idle(page)

            # The exports of step 4: the HTML file at once, the GIF after it is rendered.
            with page.expect_download() as html_download:
                page.locator(".st-key-lesson_export_html").get_by_role("button").click()
            html_path = tmp_path / "shuffle.html"
            html_download.value.save_as(html_path)
            click_and_wait(page, page.locator(".st-key-lesson_export_make_gif").get_by_role("button"))
            gif_button = page.locator(".st-key-lesson_export_gif").get_by_role("button")
            expect(gif_button).to_be_visible(timeout=GIF_TIMEOUT_MS)
            with page.expect_download() as gif_download:
                gif_button.click()
            gif = Image.open(io.BytesIO(gif_download.value.path().read_bytes()))
            assert gif.format == "GIF" and gif.n_frames == 22 and gif.size[0] == 1280
            assert_no_exception(page, "lesson exports", log_path)

            # The unit page: click the 3x3 DWConv box, see its feature maps.
            page.goto(f"{url}/unit?projector=1&unit=stage2.unit2", wait_until="domcontentloaded")
            expect(page.get_by_test_id("stMain").locator("h1").first).to_have_text("The ShuffleNet unit",
                                                                                  timeout=PAGE_TIMEOUT_MS)
            wait_until_idle(page)
            chart = page.locator(".st-key-unit_chart")
            chart.scroll_into_view_if_needed()
            markers = chart.locator("g.scatterlayer g.trace").last.locator("path.point")
            expect(markers).to_have_count(9)  # input, 7 parts of the branch, add + ReLU
            markers.nth(4).scroll_into_view_if_needed()
            box = markers.nth(4).bounding_box()  # input, 1x1 GConv, BN ReLU, shuffle, 3x3 DWConv
            page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            page.wait_for_timeout(500)
            wait_until_idle(page)
            expect(page.get_by_test_id("stMain")).to_contain_text("Feature maps at \u201c3x3 DWConv\u201d")
            # The node selectbox is bound to the URL: the clicked box is named as the selectbox shows it.
            assert parse_qs(urlparse(page.url).query)["node"] == ["3x3 DWConv (depthwise_conv)"]
            maps = page.locator(".st-key-unit_node_maps").get_by_test_id("stPlotlyChart")
            expect(maps).to_contain_text("3x3 DWConv: 60x8x8")
            maps.scroll_into_view_if_needed()
            page.screenshot(path=str(SHOTS / "unit_node_feature_maps.png"))
            assert_no_exception(page, "unit page after a click", log_path)
            assert not outside, f"the app requested addresses outside this machine: {sorted(set(outside))}"
            context.close()

            # The HTML export plays in a browser with every network request refused.
            offline = browser.new_context(viewport=PROJECTOR_VIEWPORT, offline=True)
            player = offline.new_page()
            requested = []
            player.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file:")
                         else (requested.append(route.request.url), route.abort()))
            player.goto(html_path.as_uri())
            player.wait_for_function("() => window.Plotly && document.querySelector('.plotly-graph-div')._fullLayout")
            start = drawn_positions(player)
            player.get_by_text("\u25B6 Play").click()
            player.wait_for_timeout(4000)
            end = drawn_positions(player)
            assert len(start) == len(end) > 0 and start != end, "the animation did not move the channels"
            assert not requested, f"the exported HTML asked for {requested}"
            player.screenshot(path=str(SHOTS / "export_html_offline.png"))
            offline.close()
        finally:
            browser.close()
    assert_server_log_clean(log_path)
