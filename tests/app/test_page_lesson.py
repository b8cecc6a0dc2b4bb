"""The guided lesson: seven steps walked with Next and Back, each with its figures and no exception; the step
in the URL; a link opens its step; projector mode enlarges the lesson's and the Classify page's figures and
shows the 12-channel animation."""

import pytest

from conftest import page_chart, page_charts
from shufflenet_viz.figures.common import FONT_SIZE, PROJECTOR_FONT_SIZE

PAGE = "pages/lesson.py"
# Chart keys each step must show.
STEP_CHARTS = {1: ["lesson_pointwise"], 2: ["lesson_group_conv"], 3: ["lesson_blind"], 4: ["lesson_animation"],
               5: ["lesson_unit"], 6: ["lesson_widths"], 7: ["lesson_top_k_0", "lesson_top_k_1"]}
TITLES = ["1x1 convolutions dominate", "Group convolution", "Stacked groups go blind", "The channel shuffle",
          "The ShuffleNet unit", "The network and its cost", "The result on your picture"]


@pytest.fixture(scope="module")
def lesson(app_on_page, cifar_pair, sample_image_path):
    return app_on_page(PAGE, sample_image_path)


def test_walk_from_first_to_last_step_and_back(lesson, cifar_pair):
    for step in range(1, 8):
        assert lesson.title[0].value == f"Lesson {step} of 7: {TITLES[step - 1]}"
        assert lesson.query_params["step"] == str(step)
        assert set(STEP_CHARTS[step]) <= set(page_charts(lesson)), step
        assert lesson.button(key="lesson_back").disabled == (step == 1)
        assert lesson.button(key="lesson_next").disabled == (step == 7)
        if step < 7:
            lesson.button(key="lesson_next").click().run()
            assert not lesson.exception, step
    assert [s.value.split(":")[0] for s in lesson.subheader] == [m.label for m in cifar_pair]
    lesson.button(key="lesson_back").click().run()
    assert lesson.title[0].value.endswith(TITLES[5]) and lesson.query_params["step"] == "6"


def test_steps_show_the_right_numbers(app_test, upload_picture, sample_image_path):
    at = upload_picture(app_test(), sample_image_path.name, sample_image_path.read_bytes(), "image/jpeg")
    at.query_params["step"] = "3"
    at.switch_page(PAGE).run()
    assert not at.exception and at.title[0].value.endswith(TITLES[2])
    assert {m.label: m.value for m in at.metric} == {"Output channels that hear every group": "0 of 12"}
    at.button(key="lesson_next").click().run()
    assert "12 of 12 output channels, against 0 without" in " ".join(m.value for m in at.markdown)
    figure = page_chart(at, "lesson_animation")
    assert figure["layout"]["title"]["text"] == "Channel shuffle of C=24 channels in g=3 groups"
    at.segmented_control(key="lesson_shuffle_view").set_value("figure1").run()
    assert "lesson_figure1" in page_charts(at) and "lesson_animation" not in page_charts(at)


@pytest.mark.parametrize("raw", ["9", "zero"])
def test_a_bad_step_in_a_link_is_refused(app_test, upload_picture, sample_image_path, raw):
    at = upload_picture(app_test(), sample_image_path.name, sample_image_path.read_bytes(), "image/jpeg")
    at.query_params["step"] = raw
    at.switch_page(PAGE).run()
    assert not at.exception
    assert "steps 1 to 7" in at.warning[0].value
    assert at.title[0].value.endswith(TITLES[0]) and at.query_params["step"] == "1"


def test_projector_mode_from_the_url(app_test, upload_picture, sample_image_path):
    at = upload_picture(app_test(), sample_image_path.name, sample_image_path.read_bytes(), "image/jpeg")
    assert page_chart(at, "top_k_0")["layout"]["font"]["size"] == FONT_SIZE
    at.toggle(key="lens_projector").set_value(True).run()
    assert page_chart(at, "top_k_0")["layout"]["font"]["size"] == PROJECTOR_FONT_SIZE  # the Classify page
    at.query_params["step"] = "4"
    at.switch_page(PAGE).run()
    figure = page_chart(at, "lesson_animation")
    assert figure["layout"]["title"]["text"] == "Channel shuffle of C=12 channels in g=3 groups"
    assert figure["layout"]["font"]["size"] == PROJECTOR_FONT_SIZE
    assert at.query_params["projector"] == "1"


def test_a_bookmark_opens_the_step_in_projector_mode():
    from streamlit.testing.v1 import AppTest

    from conftest import APP_TIMEOUT_S, ROOT

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=APP_TIMEOUT_S)
    at.query_params.update({"step": "6", "projector": "1"})
    at.switch_page(PAGE).run()
    assert not at.exception
    assert at.title[0].value.endswith(TITLES[5])
    assert at.toggle(key="lens_projector").value is True
    assert page_chart(at, "lesson_widths")["layout"]["font"]["size"] == PROJECTOR_FONT_SIZE
