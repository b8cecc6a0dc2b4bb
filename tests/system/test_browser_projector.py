"""Projector mode as a presentation, in Chromium: every lesson step at 1280x720 and at 1024x768 fits the screen
without scrolling, with the sidebar collapsed, a one-line title, and every plotly text element inside its figure
and clear of the others; every other page
in projector mode keeps its figures' text inside them too; a clicker's PageDown and PageUp turn the lesson's
pages (and so do the arrow keys) and the URL follows.

Debian's Chromium (`apt-get install chromium`) driven by Playwright; the lesson's 1280x720 screens are saved to
/tmp/lesson_shots/step_N.png.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import CHARTLESS, app_pages, fail_or_skip
from test_browser import (CHROMIUM, CHROMIUM_ARGS, PAGE_TIMEOUT_MS, assert_no_exception, assert_server_log_clean,
                          server, wait_until_idle)

__all__ = ["server"]  # the module-scoped app server fixture, shared with test_browser.py
SCREENS = ({"width": 1280, "height": 720}, {"width": 1024, "height": 768})
LESSON_SHOTS = Path("/tmp/lesson_shots")
LESSON_STEPS = 7
EDGE_PX = 1  # anti-aliasing: a glyph's box may reach one pixel past the figure's

# Every plotly text element whose box leaves its figure's box (the chart's first svg.main-svg), as
# "figure-key: text (where)". Empty texts, hidden elements and the hover layer are not drawn, so not checked.
OUTSIDE_TEXTS_JS = """(edge) => {
  const outside = [];
  document.querySelectorAll('[data-testid=stPlotlyChart]').forEach((chart, index) => {
    const svgs = chart.querySelectorAll('svg.main-svg');
    if (!svgs.length) return;
    const box = svgs[0].getBoundingClientRect();
    const key = (chart.closest('[class*=st-key-]') || {className: 'chart ' + index}).className
      .split(' ').filter(c => c.startsWith('st-key-')).join(' ') || 'chart ' + index;
    svgs.forEach(svg => svg.querySelectorAll('text').forEach(text => {
      if (!text.textContent.trim() || text.closest('.hoverlayer')) return;
      const style = getComputedStyle(text);
      if (style.display === 'none' || style.visibility === 'hidden' || style.opacity === '0') return;
      const r = text.getBoundingClientRect();
      if (r.width === 0 && r.height === 0) return;
      if (r.left < box.left - edge || r.right > box.right + edge || r.top < box.top - edge
          || r.bottom > box.bottom + edge) {
        outside.push(`${key}: "${text.textContent.trim()}" at ${Math.round(r.left - box.left)},`
          + `${Math.round(r.top - box.top)} size ${Math.round(r.width)}x${Math.round(r.height)} in a `
          + `${Math.round(box.width)}x${Math.round(box.height)} figure`);
      }
    }));
  });
  return outside;
}"""

# Pairs of plotly text elements of one figure that overlap (a legend over a frame label, say), as
# "figure-key: "a" over "b"".
OVERLAPPING_TEXTS_JS = """(edge) => {
  const overlapping = [];
  document.querySelectorAll('[data-testid=stPlotlyChart]').forEach((chart, index) => {
    const key = (chart.closest('[class*=st-key-]') || {className: ''}).className
      .split(' ').filter(c => c.startsWith('st-key-')).join(' ') || 'chart ' + index;
    const texts = [...chart.querySelectorAll('svg.main-svg text')].filter(text => text.textContent.trim()
      && !text.closest('.hoverlayer') && getComputedStyle(text).visibility !== 'hidden')
      .map(text => [text.textContent.trim(), text.getBoundingClientRect()]);
    texts.forEach(([a, ra], i) => texts.slice(i + 1).forEach(([b, rb]) => {
      const across = Math.min(ra.right, rb.right) - Math.max(ra.left, rb.left);
      const down = Math.min(ra.bottom, rb.bottom) - Math.max(ra.top, rb.top);
      if (across > edge && down > edge) overlapping.push(`${key}: "${a}" over "${b}"`);
    }));
  });
  return overlapping;
}"""
OVERLAP_PX = 3  # glyph boxes include a little space above and below the letters

# How far the page scrolls: Streamlit scrolls inside its main area.
OVERFLOW_JS = """() => Math.max(...[...document.querySelectorAll(
  '[data-testid=stMain], [data-testid=stAppViewContainer]')].map(e => e.scrollHeight - e.clientHeight))"""


def heading(page) -> str:
    return page.get_by_test_id("stMain").locator("h1").first.inner_text()


def open_and_settle(page, url: str) -> None:
    page.goto(url, wait_until="domcontentloaded")
    page.get_by_test_id("stMain").locator("h1").first.wait_for(timeout=PAGE_TIMEOUT_MS)
    wait_until_idle(page)
    page.wait_for_timeout(800)  # charts finish drawing


def sidebar_collapsed(page) -> bool:
    """Whether the sidebar is collapsed and takes no part of the screen."""
    sidebar = page.get_by_test_id("stSidebar")
    return sidebar.get_attribute("data-collapsed") == "true" and not sidebar.is_visible()


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        fail_or_skip(f"{CHROMIUM} is missing: install Debian's Chromium with `apt-get install -y chromium`")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield launched
        finally:
            launched.close()


def new_screen(browser, screen: dict):
    """A fresh tab of the given size, patient with pages that compute on a shared machine."""
    page = browser.new_page(viewport=screen)
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    return page


def figure_text_problems(page, where: str) -> list[str]:
    """Every plotly text element of the page outside its figure, as lines naming `where`."""
    return [f"{where}: {text}" for text in page.evaluate(OUTSIDE_TEXTS_JS, EDGE_PX)]


SCREEN_IDS = [f"{screen['width']}x{screen['height']}" for screen in SCREENS]


@pytest.mark.parametrize("screen", SCREENS, ids=SCREEN_IDS)
def test_every_lesson_step_fits_one_projector_screen(server, browser, cifar_pair, screen):
    url, log_path = server
    LESSON_SHOTS.mkdir(parents=True, exist_ok=True)
    page = new_screen(browser, screen)
    problems = []
    for step in range(1, LESSON_STEPS + 1):
        open_and_settle(page, f"{url}/lesson?step={step}&projector=1")
        assert heading(page).startswith(f"Lesson {step} of {LESSON_STEPS}"), heading(page)
        assert_no_exception(page, f"lesson step {step}", log_path)
        if screen == SCREENS[0]:
            page.screenshot(path=str(LESSON_SHOTS / f"step_{step}.png"))
        if not sidebar_collapsed(page):
            problems.append(f"step {step}: the sidebar is open")
        if not page.get_by_test_id("stExpandSidebarButton").is_visible():
            problems.append(f"step {step}: no visible control brings the sidebar back")
        title = page.get_by_test_id("stMain").locator("h1").first.bounding_box()
        line_height = float(page.evaluate("() => parseFloat(getComputedStyle("
                                          "document.querySelector('[data-testid=stMain] h1')).lineHeight)"))
        if title["height"] > 1.5 * line_height:
            problems.append(f"step {step}: the title takes more than one line ({title['height']:.0f} px)")
        overflow = page.evaluate(OVERFLOW_JS)
        if overflow > 0:
            problems.append(f"step {step}: the page scrolls by {overflow} px")
        problems += figure_text_problems(page, f"step {step}")
        problems += [f"step {step}: {text}" for text in page.evaluate(OVERLAPPING_TEXTS_JS, OVERLAP_PX)]
    page.close()
    assert not problems, "\n".join(problems)
    assert_server_log_clean(log_path)


@pytest.mark.parametrize("screen", SCREENS, ids=SCREEN_IDS)
def test_every_other_page_keeps_its_figures_text_inside_in_projector_mode(server, browser, cifar_pair, screen):
    url, log_path = server
    page = new_screen(browser, screen)
    problems = []
    for file, title in app_pages():
        if Path(file).stem == "lesson":
            continue
        open_and_settle(page, f"{url}/{Path(file).stem}?projector=1")
        assert_no_exception(page, f"page {title}", log_path)
        charts = page.get_by_test_id("stPlotlyChart")
        for index in range(charts.count()):  # plotly draws a chart only once it is scrolled into view
            charts.nth(index).scroll_into_view_if_needed()
        page.wait_for_timeout(800)
        assert charts.count() >= (0 if file in CHARTLESS else 1), title
        problems += figure_text_problems(page, title)
    page.close()
    assert not problems, "\n".join(problems)
    assert_server_log_clean(log_path)


def test_a_clicker_turns_the_lesson_pages(server, browser, cifar_pair):
    url, log_path = server
    page = new_screen(browser, SCREENS[0])
    open_and_settle(page, f"{url}/lesson?step=1&projector=1")
    seen = []
    # A clicker's keys, then the arrow keys (which press the same buttons).
    for key in ("PageDown", "PageDown", "PageDown", "PageUp", "ArrowRight", "ArrowLeft", "ArrowLeft"):
        page.keyboard.press(key)
        page.wait_for_timeout(500)
        wait_until_idle(page)
        step = int(heading(page).split()[1])
        assert f"step={step}" in page.url, page.url
        seen.append(step)
    assert seen == [2, 3, 4, 3, 4, 3, 2]
    assert_no_exception(page, "the lesson after the clicker", log_path)
    page.get_by_test_id("stExpandSidebarButton").click()  # the control at the top left brings the sidebar back
    page.get_by_test_id("stSidebar").get_by_text("Projector mode").wait_for()
    assert not sidebar_collapsed(page)
    page.close()
    assert_server_log_clean(log_path)
