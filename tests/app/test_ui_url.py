"""The URL helpers on a small script of their own: a link's values reach the widgets, a bad value gets one warning
line and the default, a changed widget is written back, and a widget whose key changes keeps a stale value out."""

import pytest
from streamlit.elements.lib import policies
from streamlit.testing.v1 import AppTest

from ui import url as ui_url


def script():
    import streamlit as st

    from ui import url as ui_url

    ui_url.choice("letter", "letter", ["a", "b", "c"], "a", format=str.upper)
    letter = st.selectbox("Letter", ["a", "b", "c"], key="letter")
    ui_url.number("count", "count", 1, 10, 5)
    count = st.number_input("Count", 1, 10, key="count")
    ui_url.number("share", "share", 0.0, 1.0, 0.5, kind=float)
    share = st.slider("Share", 0.0, 1.0, step=0.05, key="share")
    ui_url.flag("on", "on", False)
    on = st.toggle("On", key="on")
    ui_url.choice("width", "width", [0.5, 1.0, 1.5], 1.0)
    width = st.selectbox("Width", [0.5, 1.0, 1.5], key="width")
    # One widget per letter, remembered in the URL under one name.
    ui_url.choice(f"detail_{letter}", "detail", ["p", "q"], "p", marker="detail")
    detail = st.radio("Detail", ["p", "q"], key=f"detail_{letter}")
    # st.pagination always passes a default, so its value from a link is given as that default.
    page = st.pagination(4, default=ui_url.number("page", "page", 1, 4, 1, as_default=True), key="page")
    ui_url.to_url({"letter": ("letter", letter), "count": ("count", count), "share": ("share", share),
                   "on": ("on", on), "width": ("width", width), "detail": ("detail", detail), "page": ("page", page)})


def run(params: dict) -> AppTest:
    at = AppTest.from_function(script, default_timeout=60)
    at.query_params.update(params)
    return at.run()


def values(at: AppTest) -> list:
    return [at.selectbox(key="letter").value, at.number_input(key="count").value, at.slider(key="share").value,
            at.toggle(key="on").value, at.selectbox(key="width").value]


def test_text_spells_settings_without_noise():
    assert [ui_url.text(v) for v in (True, False, 0.15000000000000002, 1.0, 0.5, 7, "stage2.unit2")] == [
        "1", "0", "0.15", "1", "0.5", "7", "stage2.unit2"]


def test_without_a_link_the_defaults_are_written():
    at = run({})
    assert not at.exception and not at.warning
    assert values(at) == ["a", 5, 0.5, False, 1.0]
    assert at.query_params == {"letter": "a", "count": "5", "share": "0.5", "on": "0", "width": "1", "detail": "p",
                               "page": "1"}


def test_a_link_sets_every_widget_and_drops_foreign_params(monkeypatch, caplog):
    monkeypatch.setattr(policies, "_shown_default_value_warning", False)  # Streamlit logs it once per process
    policies._LOGGER.addHandler(caplog.handler)  # a logger that does not propagate to pytest's
    try:
        at = run({"letter": "c", "count": "7", "share": "0.25", "on": "yes", "width": "1.50", "detail": "q",
                  "page": "3", "step": "3", "projector": "1"})
    finally:
        policies._LOGGER.removeHandler(caplog.handler)
    assert not at.exception and not at.warning
    assert values(at) == ["c", 7, 0.25, True, 1.5]
    assert at.radio(key="detail_c").value == "q" and at.pagination(key="page").value == 3
    assert at.query_params == {"letter": "c", "count": "7", "share": "0.25", "on": "1", "width": "1.5",
                               "detail": "q", "page": "3", "projector": "1"}
    assert not [r for r in caplog.records if "default value" in r.getMessage()]  # no value set twice


def test_bad_values_get_one_warning_line_each_and_the_defaults():
    at = run({"letter": "z", "count": "11", "share": "nan", "on": "maybe", "width": "2", "detail": "q", "page": "5"})
    assert not at.exception
    assert [w.value for w in at.warning] == [
        "The link asks for letter 'z', which is not one of a (A), b (B), c (C); showing a (A).",
        "The link sets count = '11'; it must be a whole number from 1 to 10. Showing 5.",
        "The link sets share = 'nan'; it must be a number from 0 to 1. Showing 0.5.",
        "The link sets on = 'maybe'; it must be 1 (on) or 0 (off). Showing off.",
        "The link asks for width '2', which is not one of 0.5, 1, 1.5; showing 1.",
        "The link sets page = '5'; it must be a whole number from 1 to 4. Showing 1."]
    assert values(at) == ["a", 5, 0.5, False, 1.0] and at.radio(key="detail_a").value == "q"
    assert at.query_params["count"] == "5" and at.query_params["letter"] == "a" and at.query_params["page"] == "1"
    at.run()
    assert not at.warning  # said once; the URL now holds what is shown


def test_a_changed_widget_is_written_and_the_old_link_value_not_taken_again():
    at = run({"letter": "b", "count": "2", "detail": "q"})
    assert at.radio(key="detail_b").value == "q"
    at.number_input(key="count").set_value(9).run()
    at.toggle(key="on").set_value(True).run()
    at.pagination(key="page").set_value(4).run()
    assert values(at)[1:4] == [9, 0.5, True]
    assert at.query_params["count"] == "9" and at.query_params["on"] == "1" and at.query_params["page"] == "4"
    # A new letter is a new detail widget: the URL's detail=q was written for the old one, so it starts at p.
    at.selectbox(key="letter").set_value("c").run()
    assert not at.exception and not at.warning
    assert at.radio(key="detail_c").value == "p"
    assert at.query_params["letter"] == "c" and at.query_params["detail"] == "p"


@pytest.mark.parametrize("raw, expected", [("1", True), ("TRUE", True), ("off", False), ("0", False)])
def test_flag_spellings(raw, expected):
    at = run({"on": raw})
    assert not at.warning and at.toggle(key="on").value is expected
