"""The URL helpers on small scripts of their own. Widgets bound to the URL (`bound_*`): a link's values reach them,
an unusable value gets one warning line and is dropped, a value the options no longer hold is reset, and `to_url`
leaves their params to them. The helpers for what a page writes itself (`choice`, `from_url`, `to_url`): a
link's values reach the widgets, a bad value gets one warning line and the default, a changed widget is written
back, and a widget whose key changes keeps a stale value out."""

from streamlit.elements.lib import policies
from streamlit.testing.v1 import AppTest

from ui import url as ui_url


def script():
    import streamlit as st

    from ui import url as ui_url

    ui_url.choice("letter", "letter", ["a", "b", "c"], "a", format=str.upper)
    letter = st.selectbox("Letter", ["a", "b", "c"], key="letter")
    ui_url.choice("width", "width", [0.5, 1.0, 1.5], 1.0)
    width = st.selectbox("Width", [0.5, 1.0, 1.5], key="width")
    # One widget per letter, remembered in the URL under one name.
    ui_url.choice(f"detail_{letter}", "detail", ["p", "q"], "p", marker="detail")
    detail = st.radio("Detail", ["p", "q"], key=f"detail_{letter}")
    # A setting that is no widget's value (the lesson's step), adopted from a link or refused with one line.
    ui_url.from_url("step", "step", lambda raw: int(raw) if 1 <= int(raw) <= 4 else None,
                    lambda raw: f"The link asks for step {raw!r}; there are steps 1 to 4.")
    step = st.session_state.setdefault("step", 1)
    ui_url.to_url({"letter": ("letter", letter), "width": ("width", width), "detail": ("detail", detail),
                   "step": ("step", step)})


def run(params: dict) -> AppTest:
    at = AppTest.from_function(script, default_timeout=60)
    at.query_params.update(params)
    return at.run()


def values(at: AppTest) -> list:
    return [at.selectbox(key="letter").value, at.selectbox(key="width").value, at.session_state["step"]]


def test_text_spells_settings_without_noise():
    assert [ui_url.text(v) for v in (True, False, 0.15000000000000002, 1.0, 0.5, 7, "stage2.unit2")] == [
        "1", "0", "0.15", "1", "0.5", "7", "stage2.unit2"]


def test_without_a_link_the_defaults_are_written():
    at = run({})
    assert not at.exception and not at.warning
    assert values(at) == ["a", 1.0, 1]
    assert at.query_params == {"letter": "a", "width": "1", "detail": "p", "step": "1"}


def test_a_link_sets_every_widget_and_drops_foreign_params(monkeypatch, caplog):
    monkeypatch.setattr(policies, "_shown_default_value_warning", False)  # Streamlit logs it once per process
    policies._LOGGER.addHandler(caplog.handler)  # a logger that does not propagate to pytest's
    try:
        at = run({"letter": "c", "width": "1.50", "detail": "q", "step": "3", "page": "3", "projector": "1"})
    finally:
        policies._LOGGER.removeHandler(caplog.handler)
    assert not at.exception and not at.warning
    assert values(at) == ["c", 1.5, 3]
    assert at.radio(key="detail_c").value == "q"
    assert at.query_params == {"letter": "c", "width": "1.5", "detail": "q", "step": "3", "projector": "1"}
    assert not [r for r in caplog.records if "default value" in r.getMessage()]  # no value set twice


def test_bad_values_get_one_warning_line_each_and_the_defaults():
    at = run({"letter": "z", "width": "2", "detail": "q", "step": "9"})
    assert not at.exception
    assert [w.value for w in at.warning] == [
        "The link asks for letter 'z', which is not one of a (A), b (B), c (C); showing a (A).",
        "The link asks for width '2', which is not one of 0.5, 1, 1.5; showing 1.",
        "The link asks for step '9'; there are steps 1 to 4."]
    assert values(at) == ["a", 1.0, 1] and at.radio(key="detail_a").value == "q"
    assert at.query_params["letter"] == "a" and at.query_params["width"] == "1" and at.query_params["step"] == "1"
    at.run()
    assert not at.warning  # said once; the URL now holds what is shown


def test_a_changed_widget_is_written_and_the_old_link_value_not_taken_again():
    at = run({"letter": "b", "width": "0.5", "detail": "q"})
    assert at.radio(key="detail_b").value == "q"
    at.selectbox(key="width").set_value(1.5).run()
    assert values(at)[1] == 1.5 and at.query_params["width"] == "1.5"
    at.run()
    assert at.selectbox(key="width").value == 1.5  # the link's 0.5, already taken, is not taken again
    # A new letter is a new detail widget: the URL's detail=q was written for the old one, so it starts at p.
    at.selectbox(key="letter").set_value("c").run()
    assert not at.exception and not at.warning
    assert at.radio(key="detail_c").value == "p"
    assert at.query_params["letter"] == "c" and at.query_params["detail"] == "p"


def bound_script():
    import streamlit as st

    from ui import url as ui_url

    big = ui_url.bound_flag(st.toggle, "Big", key="big")
    letter = ui_url.bound_choice(st.selectbox, "Letter", ["a", "b", "c"], key="letter", default="b",
                                 format_func=str.upper)
    size = ui_url.bound_choice(st.radio, "Size", ["m", "l", "xl"] if big else ["s", "m", "l"], key="size",
                               default="m")
    count = ui_url.bound_number(st.slider, "Count", 1, 10, key="count", default=5)
    share = ui_url.bound_number(st.number_input, "Share", 0.0, 1.0, key="share", default=0.5, step=0.05)
    with ui_url.bound_flag(st.expander, "More", key="more"):
        st.write("Inside")
    # A page's own setting beside bound widgets; the bound count passed here as well is the widget's to write.
    ui_url.to_url({"note": ("note", f"{letter}{size}"), "count": ("count", 99)})
    st.session_state["shown"] = (big, letter, size, count, share)


BOUND = ("big", "letter", "size", "count", "share", "more")


def run_bound(params: dict) -> AppTest:
    at = AppTest.from_function(bound_script, default_timeout=60)
    at.query_params.update(params)
    return at.run()


def bound_elements(at: AppTest) -> list:
    return [at.toggle(key="big"), at.selectbox(key="letter"), at.radio(key="size"), at.slider(key="count"),
            at.number_input(key="share"), at.expander[0]]


def test_bound_widgets_are_bound_to_the_param_named_by_their_key():
    """A change of a bound widget goes into the URL through the browser (AppTest does not show it in
    at.query_params): what the app controls is that each widget is bound, under its key."""
    at = run_bound({})
    assert not at.exception and not at.warning
    assert [element.proto.query_param_key for element in bound_elements(at)] == list(BOUND)


def test_without_a_link_bound_widgets_show_their_defaults_and_leave_the_url_to_the_page():
    at = run_bound({})
    assert at.session_state["shown"] == (False, "b", "m", 5, 0.5)
    assert at.expander[0].proto.expanded is False
    assert at.query_params == {"note": "bm"}  # a default is left out of the URL


def test_a_links_values_reach_the_bound_widgets_and_to_url_leaves_them_alone():
    at = run_bound({"big": "true", "letter": "C", "size": "xl", "count": "7", "share": "0.25", "more": "true",
                    "junk": "1", "projector": "1"})
    assert not at.exception and not at.warning
    assert at.session_state["shown"] == (True, "c", "xl", 7, 0.25)
    assert at.expander[0].proto.expanded is True
    # The bound params stay as the link spelled them (count not overwritten by to_url); a param that nothing on
    # the page names goes; projector mode is the sidebar's.
    assert at.query_params == {"big": "true", "letter": "C", "size": "xl", "count": "7", "share": "0.25",
                               "more": "true", "note": "cxl", "projector": "1"}


def test_unusable_bound_values_get_one_warning_line_each_and_are_dropped():
    at = run_bound({"big": "maybe", "letter": "z", "size": "xxl", "count": "11", "share": "nan", "more": "2"})
    assert not at.exception
    assert [w.value for w in at.warning] == [
        "The link sets big = 'maybe'; it must be true or false. It is ignored.",
        "The link asks for letter 'z', which is not one of A, B, C; it is ignored.",
        "The link asks for size 'xxl', which is not one of s, m, l; it is ignored.",
        "The link sets count = '11'; it must be a whole number from 1 to 10. It is ignored.",
        "The link sets share = 'nan'; it must be a number from 0 to 1. It is ignored.",
        "The link sets more = '2'; it must be true or false. It is ignored."]
    assert at.session_state["shown"] == (False, "b", "m", 5, 0.5)
    assert at.query_params == {"note": "bm"}
    at.run()
    assert not at.warning  # said once: the unusable values left the URL


def test_a_bound_choice_the_new_options_no_longer_hold_is_reset_to_its_default():
    at = run_bound({})
    at.radio(key="size").set_value("s").run()
    assert at.session_state["shown"][2] == "s"
    at.toggle(key="big").set_value(True).run()
    assert not at.exception and not at.warning
    assert at.radio(key="size").options == ["m", "l", "xl"] and at.radio(key="size").value == "m"
    assert at.session_state["shown"] == (True, "b", "m", 5, 0.5)
