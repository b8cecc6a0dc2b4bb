"""Every page in a real browser with the ImageNet models installed (the official 0.5x g=3 / g=8 pair is the
default): the landing page answers the sample cat right, and every page of app.PAGES renders at 224x224 with
1000 classes without an exception or an error box. Screenshots go to /tmp/shots/imagenet_*.png."""

from __future__ import annotations

from playwright.sync_api import expect, sync_playwright

from conftest import app_pages, fail_or_skip
from test_browser import (CHROMIUM, CHROMIUM_ARGS, LOCAL_URL_PREFIXES, PAGE_TIMEOUT_MS, SHOTS, assert_no_exception,
                          assert_server_log_clean, running_app, screenshot_whole_page, slug, wait_until_idle)


def test_every_page_with_the_imagenet_pair_in_chromium(imagenet_models, imagenet_dir, tmp_path):
    if not CHROMIUM.exists():
        fail_or_skip(f"{CHROMIUM} is missing: install Debian's Chromium with `apt-get install -y chromium`")
    labels = [imagenet_models[name].label for name in ("imagenet_official_g3_w0.5", "imagenet_official_g8_w0.5")]
    SHOTS.mkdir(parents=True, exist_ok=True)
    with running_app(tmp_path, SHUFFLENET_LENS_FETCHED=str(imagenet_dir)) as (url, log_path), \
            sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.set_default_timeout(PAGE_TIMEOUT_MS)
            outside = []
            page.on("request", lambda request: outside.append(request.url)
                    if not request.url.startswith(LOCAL_URL_PREFIXES) else None)
            page.goto(url, wait_until="domcontentloaded")
            sidebar = page.get_by_test_id("stSidebar")
            expect(page.get_by_test_id("stMain")).to_contain_text("both say Egyptian cat", timeout=PAGE_TIMEOUT_MS)
            wait_until_idle(page)
            main_text = page.get_by_test_id("stMain").inner_text()
            assert all(label in main_text for label in labels), "the official ImageNet pair is not the default"
            for index, (file, title) in enumerate(app_pages()):
                sidebar.get_by_test_id("stSidebarNav").get_by_text(title, exact=True).click()
                page.wait_for_timeout(500)
                wait_until_idle(page)
                assert_no_exception(page, f"page {title} ({file})", log_path)
                errors = page.get_by_test_id("stMain").get_by_test_id("stAlertContentError")
                assert errors.count() == 0, f"{title}: error shown: {errors.all_inner_texts()}"
                screenshot_whole_page(page, SHOTS / f"imagenet_{index:02d}_{slug(title)}.png")
            assert not outside, f"the page requested addresses outside this machine: {sorted(set(outside))}"
        finally:
            browser.close()
    assert_server_log_clean(log_path)
