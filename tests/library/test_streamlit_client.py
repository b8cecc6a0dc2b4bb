"""The protocol client's reading of Streamlit's messages, without a server: widgets found by key or label, texts
and exceptions read from elements, widget values turned into the states the browser would send."""

from __future__ import annotations

import pytest
from streamlit.proto.Element_pb2 import Element as ElementProto
from streamlit.proto.WidgetStates_pb2 import WidgetState

from serving.streamlit_client import Element, RunResult, StreamlitSession, element_from_proto


def proto(kind: str, **fields) -> ElementProto:
    element = ElementProto()
    getattr(element, kind).SetInParent()
    for name, value in fields.items():
        setattr(getattr(element, kind), name, value)
    return element


def test_a_keyed_widget_is_found_by_its_key_and_an_unkeyed_one_by_its_label():
    uploader = element_from_proto(proto("file_uploader", id="$$ID-0f3a-lens_upload", label="Upload a photo"))
    button = element_from_proto(proto("button", id="$$ID-9c1e-None", label="Stop waiting"))
    assert (uploader.kind, uploader.key, uploader.label) == ("file_uploader", "lens_upload", "Upload a photo")
    assert button.key == ""  # Streamlit writes "None" where a widget has no key
    result = RunResult(elements=[Element("markdown", text="Picture"), uploader, button])
    assert result.widget_id("lens_upload") == "$$ID-0f3a-lens_upload"
    assert result.widget_id("Stop waiting") == "$$ID-9c1e-None"
    assert result.widget_id("Stop waiting", kind="button") == "$$ID-9c1e-None"
    with pytest.raises(KeyError, match="Queue it again"):
        result.widget_id("Queue it again")
    with pytest.raises(KeyError):
        result.widget_id("lens_upload", kind="button")


def test_texts_progress_and_exceptions_are_read_from_their_elements():
    assert element_from_proto(proto("markdown", body="The models **agree**")).text == "The models **agree**"
    assert element_from_proto(proto("alert", body="Choose a picture")).text == "Choose a picture"
    assert element_from_proto(proto("progress", value=40, text="IG for g=3: 40%")).text == "IG for g=3: 40%"
    failure = element_from_proto(proto("exception", type="ValueError", message="bad window"))
    assert (failure.kind, failure.text) == ("exception", "ValueError: bad window")
    assert element_from_proto(proto("markdown", body="x")).widget_id == ""  # not a widget


def test_a_run_is_ok_only_when_it_finished_by_itself_without_an_exception():
    assert RunResult(status="FINISHED_SUCCESSFULLY").ok
    assert not RunResult(status="FINISHED_SUCCESSFULLY", exceptions=["ValueError: x"]).ok
    assert not RunResult(status="FINISHED_WITH_COMPILE_ERROR").ok
    assert not RunResult().ok  # no script_finished seen
    assert RunResult(texts=["you are 2nd in line"]).has_text("2nd in line")


def test_widget_values_become_the_states_a_browser_sends():
    assert StreamlitSession.widget_state("b", True).WhichOneof("value") == "trigger_value"  # a click, once
    assert StreamlitSession.widget_state("t", False).bool_value is False
    assert StreamlitSession.widget_state("t", False).WhichOneof("value") == "bool_value"
    assert StreamlitSession.widget_state("n", 7).int_value == 7
    assert StreamlitSession.widget_state("x", 0.25).double_value == 0.25
    assert StreamlitSession.widget_state("s", "saliency").string_value == "saliency"
    given = WidgetState(id="u")
    assert StreamlitSession.widget_state("u", given) is given
    with pytest.raises(TypeError, match="WidgetState"):
        StreamlitSession.widget_state("l", ["a", "b"])
