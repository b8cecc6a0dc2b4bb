"""A session that starts without the photo its tab had uploaded (its server restarted, or the load balancer moved the
tab to another replica): the URL's `picture=uploaded` mark makes it say so in one line and show no stand-in
picture; the mark follows the current picture's source on every run."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from conftest import APP_TIMEOUT_S, ROOT, SAMPLES_DIR
from ui.picture import DEFAULT_SAMPLE, LOST_SESSION, LOST_UPLOAD
from ui.state import PICTURE_PARAM, SAMPLE_KEY, UPLOADED_MARK


def warnings_of(at) -> list[str]:
    return [warning.value for warning in at.warning]


def test_a_fresh_session_with_the_upload_mark_asks_for_the_photo_again(upload_picture):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=APP_TIMEOUT_S)
    at.query_params[PICTURE_PARAM] = UPLOADED_MARK
    at.run()
    assert not at.exception
    assert warnings_of(at).count(LOST_UPLOAD) == 1 and LOST_SESSION not in warnings_of(at)
    assert not at.sidebar.get("imgs") and not at.get("imgs")  # no sample passed off as the student's photo
    assert any("Choose a picture in the sidebar" in info.value for info in at.info)
    assert PICTURE_PARAM not in at.query_params  # a reload of the tab does not say it again

    at.switch_page("pages/feature_maps.py").run()  # the line stays until a picture is chosen
    assert not at.exception and warnings_of(at).count(LOST_UPLOAD) == 1

    photo = SAMPLES_DIR / "horse.jpg"
    upload_picture(at, photo.name, photo.read_bytes(), "image/jpeg")
    assert not at.exception and LOST_UPLOAD not in warnings_of(at)
    assert at.query_params[PICTURE_PARAM] == UPLOADED_MARK


def test_the_mark_follows_the_pictures_source(app_test, upload_picture):
    at = app_test()  # a new tab: the default sample, no mark, no line
    assert not at.exception and not at.warning
    assert at.session_state[SAMPLE_KEY] == DEFAULT_SAMPLE and PICTURE_PARAM not in at.query_params
    photo = SAMPLES_DIR / "dog.jpg"
    upload_picture(at, photo.name, photo.read_bytes(), "image/jpeg")
    assert at.query_params[PICTURE_PARAM] == UPLOADED_MARK
    at.switch_page("pages/lesson.py").run()  # another page's own settings do not push the mark out
    assert not at.exception and at.query_params[PICTURE_PARAM] == UPLOADED_MARK
    at.sidebar.selectbox(key=SAMPLE_KEY).select("horse.jpg").run()
    assert not at.exception and PICTURE_PARAM not in at.query_params
