"""A student's phone, in Chromium's phone emulation (390x844 CSS pixels, device scale 3, touch): upload a phone's
own photo (4032x3024, rotated by its EXIF tag) from the main area of Classify, see the result without closing
anything, then visit every page and every lesson step the way a student does (the menu at the top left, the
lesson's Next button): no page scrolls sideways, every plotly text element lies inside its figure, no exception.

Prints the time from the upload to the result and each page switch; saves the screens to /tmp/shots/phone/.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from PIL import Image

from conftest import SAMPLES_DIR, app_pages, fail_or_skip
from test_browser import (CHROMIUM, CHROMIUM_ARGS, PAGE_TIMEOUT_MS, assert_no_exception, assert_server_log_clean,
                          screenshot_whole_page, server, slug, wait_until_idle)
from test_browser_projector import figure_text_problems

__all__ = ["server"]  # the module-scoped app server fixture, shared with test_browser.py
PHONE = dict(viewport={"width": 390, "height": 844}, device_scale_factor=3, is_mobile=True, has_touch=True)
# Streamlit closes its sidebar after a page is picked when the browser says it is a phone's.
PHONE_BROWSER = "Pixel 7"  # the user agent of Chrome on Android, from Playwright's device list
PHONE_SHOTS = Path("/tmp/shots/phone")
PHOTO_SIZE = (4032, 3024)  # a phone camera's 12 megapixels, stored sideways
EXIF_ORIENTATION, ROTATED_90_CW = 0x0112, 6  # the tag a phone writes when it was held upright
LESSON_STEPS = 7
SHOT_STEPS = (3, 4, 5)
SHOT_PAGES = ("Feature maps", "Attributions")

# How far the page can scroll sideways (0: not at all), on the document and on Streamlit's scrolling main area.
SIDEWAYS_JS = """() => Math.max(document.scrollingElement.scrollWidth - window.innerWidth,
  ...[...document.querySelectorAll('[data-testid=stMain], [data-testid=stAppViewContainer]')]
    .map(e => e.scrollWidth - e.clientWidth))"""
# Whether the element's centre, scrolled into view, is the element itself (nothing, no sidebar, covers it) and
# lies inside the window.
UNCOVERED_JS = """(element) => {
  const r = element.getBoundingClientRect();
  const x = r.left + r.width / 2, y = r.top + Math.min(r.height / 2, 20);
  if (x < 0 || y < 0 || x > window.innerWidth || y > window.innerHeight) return false;
  const top = document.elementFromPoint(x, y);
  return top !== null && element.contains(top);
}"""


def phone(playwright) -> dict:
    """The browser context of a phone held upright: 390x844 CSS pixels at scale 3, touch, a phone's Chrome."""
    return {**PHONE, "user_agent": playwright.devices[PHONE_BROWSER]["user_agent"]}


def phone_photo(path: Path) -> Path:
    """A 4032x3024 JPEG built from a shipped sample, stored sideways with the EXIF tag that turns it upright."""
    upright = Image.open(SAMPLES_DIR / "dog.jpg").convert("RGB").resize((PHOTO_SIZE[1], PHOTO_SIZE[0]))
    sideways = upright.transpose(Image.Transpose.ROTATE_90)  # as the sensor stored it; the tag turns it back
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = ROTATED_90_CW
    sideways.save(path, format="JPEG", quality=90, exif=exif.tobytes())
    return path


def settle(page) -> None:
    page.wait_for_timeout(500)
    wait_until_idle(page)


def open_page_from_menu(page, title: str) -> float:
    """Switch page as a phone's visitor does, through the menu at the top left; the seconds until the page is
    drawn."""
    page.get_by_test_id("stExpandSidebarButton").click()
    link = page.get_by_test_id("stSidebarNav").get_by_text(title, exact=True)
    link.wait_for(state="visible")
    started = time.monotonic()
    link.click()
    page.get_by_test_id("stMain").locator("h1").first.wait_for()
    settle(page)
    return time.monotonic() - started - 1.5  # wait_until_idle waits 1.5 s of quiet before it returns


def screen_problems(page, where: str) -> list[str]:
    """What a phone's visitor would see wrong on the page shown: sideways scrolling, figure text outside its
    figure, the sidebar left open."""
    charts = page.get_by_test_id("stPlotlyChart")
    for index in range(charts.count()):  # plotly draws a chart only once it is scrolled into view
        charts.nth(index).scroll_into_view_if_needed()
    page.wait_for_timeout(800)
    problems = figure_text_problems(page, where)
    sideways = page.evaluate(SIDEWAYS_JS)
    if sideways > 0:
        problems.append(f"{where}: the page scrolls sideways by {sideways} px")
    if page.get_by_test_id("stSidebar").is_visible():
        problems.append(f"{where}: the sidebar covers the page")
    return problems


def test_a_students_phone_uploads_a_photo_and_reads_every_page(server, tmp_path, cifar_pair):
    if not CHROMIUM.exists():
        fail_or_skip(f"{CHROMIUM} is missing: install Debian's Chromium with `apt-get install -y chromium`")
    from playwright.sync_api import expect, sync_playwright

    url, log_path = server
    photo = phone_photo(tmp_path / "IMG_4032.jpg")
    PHONE_SHOTS.mkdir(parents=True, exist_ok=True)
    problems, switches, pages_with_the_photo = [], {}, []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_context(**phone(playwright)).new_page()
            page.set_default_timeout(PAGE_TIMEOUT_MS)
            page.goto(url, wait_until="domcontentloaded")
            main = page.get_by_test_id("stMain")
            uploader = main.locator(".st-key-main_picture_inputs").get_by_test_id("stFileUploader")
            expect(uploader).to_be_visible(timeout=PAGE_TIMEOUT_MS)  # once the page knows the screen is narrow
            settle(page)
            assert not page.get_by_test_id("stSidebar").is_visible(), "the sidebar is open on a phone"

            with page.expect_file_chooser() as chooser:
                uploader.get_by_role("button", name="Upload", exact=True).click()
            started = time.monotonic()
            chooser.value.set_files(str(photo))
            expect(main.get_by_test_id("stImage").first).to_contain_text(photo.name, timeout=PAGE_TIMEOUT_MS)
            result = main.locator(".st-key-classify_answer")
            expect(result).to_contain_text("The models", timeout=PAGE_TIMEOUT_MS)
            upload_to_result = time.monotonic() - started
            settle(page)
            assert_no_exception(page, "Classify after the upload", log_path)
            # The answer is on screen at once, uncovered: no sidebar to close, no scrolling.
            assert page.evaluate(UNCOVERED_JS, result.element_handle()), "the result is covered or off screen"
            thumbnail = main.get_by_test_id("stImage").first.locator("img").bounding_box()
            assert thumbnail["height"] > thumbnail["width"], f"the photo is not upright: {thumbnail}"
            problems += screen_problems(page, "Classify")
            screenshot_whole_page(page, PHONE_SHOTS / "classify_after_upload.png")

            for file, title in app_pages()[1:]:
                switches[title] = open_page_from_menu(page, title)
                assert_no_exception(page, title, log_path)
                chooser_here = main.locator(".st-key-main_picture_inputs")
                if chooser_here.count():  # a page that needs a picture: still the one uploaded on Classify
                    expect(chooser_here).to_contain_text(photo.name)
                    pages_with_the_photo.append(title)
                problems += screen_problems(page, title)
                if title in SHOT_PAGES:
                    screenshot_whole_page(page, PHONE_SHOTS / f"{slug(title)}.png")
                if Path(file).stem != "lesson":
                    continue
                for step in range(1, LESSON_STEPS + 1):
                    if step > 1:
                        started = time.monotonic()
                        main.locator(".st-key-lesson_next button").click()
                        expect(main.locator("h1").first).to_contain_text(f"Lesson {step} of")
                        settle(page)
                        switches[f"Lesson step {step}"] = time.monotonic() - started - 1.5
                    assert_no_exception(page, f"lesson step {step}", log_path)
                    problems += screen_problems(page, f"lesson step {step}")
                    if step in SHOT_STEPS:
                        screenshot_whole_page(page, PHONE_SHOTS / f"lesson_step_{step}.png")
        finally:
            browser.close()
    print(f"\nphone 390x844: upload to result {upload_to_result:.2f} s; page switches "
          + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in switches.items())
          + f"; median {sorted(switches.values())[len(switches) // 2]:.2f} s")
    assert not problems, "\n".join(problems)
    assert {"Lesson", "The unit", "Feature maps", "Attributions"} <= set(pages_with_the_photo), pages_with_the_photo
    assert_server_log_clean(log_path)


@pytest.mark.parametrize("path", ["shuffle", "lesson?step=4"])
def test_a_phone_reaches_the_figures_by_link(server, path, cifar_pair):
    """A link opened on a phone (a new session): the page is redrawn for the narrow screen at once."""
    if not CHROMIUM.exists():
        fail_or_skip(f"{CHROMIUM} is missing: install Debian's Chromium with `apt-get install -y chromium`")
    from playwright.sync_api import sync_playwright

    url, log_path = server
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_context(**phone(playwright)).new_page()
            page.set_default_timeout(PAGE_TIMEOUT_MS)
            page.goto(f"{url}/{path}", wait_until="domcontentloaded")
            page.locator("[data-lens-screen=narrow]").wait_for(state="attached")
            settle(page)
            assert_no_exception(page, path, log_path)
            problems = screen_problems(page, path)
            toolbars = page.locator(".modebar-container .modebar").count()
        finally:
            browser.close()
    assert not problems, "\n".join(problems)
    assert toolbars == 0, f"plotly's toolbar is shown {toolbars} times on a phone"
    assert_server_log_clean(log_path)
