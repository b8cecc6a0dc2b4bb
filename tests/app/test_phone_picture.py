"""A phone (a browser that says "Mobile" in its user agent, or reports a narrow window): the picture's upload and
camera are in the main area of every page that needs a picture, wired to the sidebar's picture; the desktop
layout keeps them in the sidebar only. AppTest has no browser, so the phone is what the app reads of one."""

from __future__ import annotations

import json

import pytest

from conftest import page_chart
from ui import screen
from ui.state import IMAGE_KEY, MAIN_CAMERA_ON_KEY, MAIN_UPLOAD_KEY, UPLOAD_KEY

PICTURE_PAGES = ("pages/classify.py", "pages/lesson.py", "pages/unit.py", "pages/feature_maps.py")


@pytest.fixture()
def phone(monkeypatch):
    monkeypatch.setattr(screen, "_says_mobile", lambda: True)


def main_uploaders(at) -> list:
    return [uploader for uploader in at.get("file_uploader") if uploader.key == MAIN_UPLOAD_KEY]


def test_a_phone_uploads_from_the_main_area_and_every_page_shares_the_picture(phone, app_test, sample_image_path):
    at = app_test()
    assert not at.exception
    assert len(main_uploaders(at)) == 1 and at.toggle(key=MAIN_CAMERA_ON_KEY).value is False
    at.file_uploader(key=MAIN_UPLOAD_KEY).set_value((sample_image_path.name, sample_image_path.read_bytes(),
                                                    "image/jpeg"))
    at.run()
    assert not at.exception
    assert at.session_state[IMAGE_KEY].name == sample_image_path.name and at.session_state[IMAGE_KEY].source == "upload"
    assert at.session_state[UPLOAD_KEY] is None  # the sidebar's own uploader is untouched
    # The answer for the uploaded picture, with plotly's toolbar hidden on the phone.
    chart = next(chart for chart in at.get("plotly_chart") if chart.proto.id.endswith("top_k_0"))
    assert json.loads(chart.proto.config)["displayModeBar"] is False
    assert "The models" in (at.success or at.warning)[0].value
    for page in PICTURE_PAGES[1:]:
        at.switch_page(page).run()
        assert not at.exception, page
        assert len(main_uploaders(at)) == 1, page
        assert at.session_state[IMAGE_KEY].name == sample_image_path.name, page


def test_a_refused_file_is_explained_in_the_main_area(phone, app_test):
    at = app_test()
    at.file_uploader(key=MAIN_UPLOAD_KEY).set_value(("notes.jpg", b"not a picture", "image/jpeg"))
    at.run()
    assert not at.exception
    assert any("notes.jpg" in error.value or "picture" in error.value for error in at.main.error), \
        [error.value for error in at.main.error]
    assert at.session_state[IMAGE_KEY].source == "sample"  # the previous picture stays


def test_a_desktop_keeps_the_picture_in_the_sidebar(app_test):
    at = app_test()
    assert not at.exception and not main_uploaders(at)
    top_k = page_chart(at, "top_k_0")
    assert top_k["data"]  # the page is drawn as before
    chart = next(chart for chart in at.get("plotly_chart") if chart.proto.id.endswith("top_k_0"))
    assert "displayModeBar" not in json.loads(chart.proto.config or "{}")
