"""Projector mode reaches every chart of every page: each page of app.py (the Lesson at every step) is opened with
the CIFAR-10 pair in two sessions, one plain and one from a `?projector=1` link, and every plotly chart the
projector session shows has the projector's type size, larger than the same chart's in the plain session."""

from __future__ import annotations

import re

import pytest

from conftest import APP_TIMEOUT_S, CHARTLESS, CIFAR_PAIR_PARAMS, ROOT, app_pages, page_charts
from shufflenet_viz.figures.common import PROJECTOR_FONT_SIZE
from ui.state import PROJECTOR_KEY, PROJECTOR_PARAM

LESSON = "pages/lesson.py"
PROJECTOR_PARAMS = {PROJECTOR_PARAM: "1"}
PLOTLY_DEFAULT_FONT_SIZE = 12  # what plotly draws when a figure names no size


@pytest.fixture(scope="module")
def sessions(cifar_pair):
    """Two app sessions with the CIFAR-10 pair, run once on the landing page: {False: plain, True: opened from a
    link with ?projector=1}. While they live, an error on a page is shown in full (the app's config hides it)."""
    from streamlit import config
    from streamlit.testing.v1 import AppTest

    shown = config.get_option("client.showErrorDetails")
    apps = {}
    try:
        for projector in (False, True):
            at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=APP_TIMEOUT_S)
            config.set_option("client.showErrorDetails", "full")
            at.query_params.update({**CIFAR_PAIR_PARAMS, **(PROJECTOR_PARAMS if projector else {})})
            at.run()
            assert not at.exception, at.exception
            apps[projector] = at
        yield apps
    finally:
        config.set_option("client.showErrorDetails", shown)


def open_view(at, page: str, params: dict[str, str]):
    """The session switched to the page, opened with these URL settings (and the CIFAR pair), run once."""
    at.query_params.update({**CIFAR_PAIR_PARAMS, **params})
    at.switch_page(page).run()
    assert not at.exception, f"{page} {params}: {[(e.message, e.stack_trace[-3:]) for e in at.exception]}"
    return at


def font_size(figure: dict) -> float:
    return figure.get("layout", {}).get("font", {}).get("size", PLOTLY_DEFAULT_FONT_SIZE)


def compare_view(sessions, page: str, params: dict[str, str]) -> int:
    """Open the view in both sessions; every chart in projector mode is drawn with the projector's type, larger
    than the plain chart. Returns how many charts were compared."""
    plain = page_charts(open_view(sessions[False], page, params))
    projected = page_charts(open_view(sessions[True], page, params))
    assert sessions[True].toggle(key=PROJECTOR_KEY).value is True
    assert sessions[False].toggle(key=PROJECTOR_KEY).value is False
    view = f"{page} {params}"
    assert sorted(projected) == sorted(plain), f"{view}: projector mode shows other charts"
    for key, figure in projected.items():
        assert font_size(figure) == PROJECTOR_FONT_SIZE, f"{view}: chart {key!r} is not styled for the projector"
        assert font_size(figure) > font_size(plain[key]), f"{view}: chart {key!r} has no larger type"
    return len(projected)


def lesson_steps(sessions) -> int:
    """The Lesson's number of steps, as its first step's title says ("Lesson 1 of 7: ...")."""
    title = open_view(sessions[False], LESSON, {"step": "1"}).title[0].value
    steps = re.match(r"Lesson 1 of (\d+):", title)
    assert steps, title
    return int(steps.group(1))


@pytest.mark.parametrize("page", [file for file, _ in app_pages()])
def test_every_chart_of_the_page_is_styled_for_the_projector(sessions, page):
    if page == LESSON:
        steps = lesson_steps(sessions)
        assert steps >= 2
        for step in range(1, steps + 1):
            assert compare_view(sessions, page, {"step": str(step)}) >= 1, f"lesson step {step} shows no chart"
    elif page in CHARTLESS:
        assert compare_view(sessions, page, {}) == 0, f"{page} now shows a chart: check it here"
    else:
        assert compare_view(sessions, page, {}) >= 1, f"{page} shows no chart"


def test_every_page_of_the_app_is_visited():
    pages = [file for file, _ in app_pages()]
    assert LESSON in pages and len(pages) >= 10
    assert all((ROOT / page).is_file() for page in pages)
