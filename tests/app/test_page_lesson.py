"""The guided lesson: seven steps walked with Next and Back, each with its figures and no exception; the step
in the URL; a link opens its step; projector mode enlarges the lesson's and the Classify page's figures and
shows the 12-channel animation; step 7's shuffle-off demonstration agrees with a forward pass of the right-hand
model whose shuffles are replaced by the identity, for the CIFAR-10 pair and the official ImageNet pair."""

import copy

import pytest
import torch

from conftest import CIFAR_PAIR_PARAMS, IMAGENET_PAIR, SAMPLES_DIR, page_chart, page_charts, plotly_array
from shufflenet_viz.images import load_image
from shufflenet_viz.inference import classify
from ui.lesson import SHUFFLE_OFF_CLASSES
from shufflenet_viz.figures.common import FONT_SIZE, PROJECTOR_FONT_SIZE

PAGE = "pages/lesson.py"
# Chart keys each step must show.
STEP_CHARTS = {1: ["lesson_pointwise"], 2: ["lesson_group_conv"], 3: ["lesson_blind"], 4: ["lesson_animation"],
               5: ["lesson_unit"], 6: ["lesson_widths"], 7: ["lesson_shuffle_off"]}
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


def identity_shuffle_probabilities(loaded, image) -> dict[str, float]:
    """Class probabilities of `loaded` on `image` with every ChannelShuffle module replaced by nn.Identity: an
    ablation built here, apart from the app's own shuffle switch."""
    from shufflenet_viz.model import ChannelShuffle
    from shufflenet_viz.preprocess import preprocess_image

    model = copy.deepcopy(loaded.model).eval()
    shuffles = [name for name, module in model.named_modules() if isinstance(module, ChannelShuffle)]
    assert shuffles
    for name in shuffles:
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent), child, torch.nn.Identity())
    with torch.no_grad():
        logits = model(preprocess_image(image, loaded.preprocessing))
    return dict(zip(loaded.classes, torch.softmax(logits.double(), dim=1)[0].tolist()))


def assert_step_7_matches_the_identity_shuffle(at, right, image) -> None:
    figure = page_chart(at, "lesson_shuffle_off")
    bars = {trace["name"]: dict(zip(trace["y"], plotly_array(trace["x"]).tolist())) for trace in figure["data"]}
    without = identity_shuffle_probabilities(right, image)
    with_shuffle = dict(zip(right.classes, classify(right, image).probabilities.tolist()))
    assert set(bars) == {"shuffle on", "shuffle off"}
    top_off = sorted(without, key=without.get, reverse=True)[:SHUFFLE_OFF_CLASSES]
    assert set(top_off) <= set(bars["shuffle off"])  # the identity's top classes are drawn
    for name, shown in bars["shuffle off"].items():
        assert shown == pytest.approx(without[name], abs=1e-6), name
    for name, shown in bars["shuffle on"].items():
        assert shown == pytest.approx(with_shuffle[name], abs=1e-6), name
    sentence = " ".join(m.value for m in at.markdown)
    on_name, off_name = max(with_shuffle, key=with_shuffle.get), top_off[0]
    assert f"switching off the shuffle in the trained {right.label}" in sentence
    if on_name != off_name:
        assert f'turns "{on_name}, {with_shuffle[on_name]:.0%}" into "{off_name}, {without[off_name]:.0%}"' in sentence
    else:
        assert f'still answers "{on_name}", but with {without[off_name]:.0%}' in sentence


def test_step_7_switches_off_the_shuffle_of_the_cifar_model(app_test, upload_picture, sample_image_path, cifar_pair):
    at = upload_picture(app_test(), sample_image_path.name, sample_image_path.read_bytes(), "image/jpeg")
    at.query_params.update({**CIFAR_PAIR_PARAMS, "step": "7"})
    at.switch_page(PAGE).run()
    assert not at.exception
    assert_step_7_matches_the_identity_shuffle(at, cifar_pair[1], load_image(sample_image_path.read_bytes(),
                                                                              sample_image_path.name).image)


def test_step_7_switches_off_the_shuffle_of_the_official_imagenet_model(app_test, with_imagenet, imagenet_models):
    import ui

    at = app_test()
    assert [at.selectbox(key=key).value for key in ui.MODEL_KEYS] == list(IMAGENET_PAIR)
    at.selectbox(key=ui.SAMPLE_KEY).set_value("cat.jpg").run()
    at.query_params["step"] = "7"
    at.switch_page(PAGE).run()
    assert not at.exception
    image = load_image((SAMPLES_DIR / "cat.jpg").read_bytes(), "cat.jpg").image
    assert_step_7_matches_the_identity_shuffle(at, imagenet_models[IMAGENET_PAIR[1]], image)


def test_step_7_says_a_one_group_model_has_no_shuffle_to_switch_off(app_test, upload_picture, sample_image_path):
    at = upload_picture(app_test(), sample_image_path.name, sample_image_path.read_bytes(), "image/jpeg")
    at.query_params.update({"left_model": CIFAR_PAIR_PARAMS["right_model"],
                            "right_model": CIFAR_PAIR_PARAMS["left_model"], "step": "7"})
    at.switch_page(PAGE).run()
    assert not at.exception
    bars = {trace["name"]: plotly_array(trace["x"]).tolist() for trace in page_chart(at, "lesson_shuffle_off")["data"]}
    assert bars["shuffle on"] == bars["shuffle off"]
    assert "With g=1 there is one group" in " ".join(m.value for m in at.markdown)


def test_step_7_says_a_model_trained_without_shuffle_has_none_to_switch_off(app_test, upload_picture,
                                                                           sample_image_path):
    at = upload_picture(app_test(), sample_image_path.name, sample_image_path.read_bytes(), "image/jpeg")
    at.query_params.update({"left_model": "cifar10_x0.5_g3_s0", "right_model": "cifar10_x0.5_g3_noshuffle_s0",
                            "step": "7"})
    at.switch_page(PAGE).run()
    assert not at.exception
    bars = {trace["name"]: plotly_array(trace["x"]).tolist() for trace in page_chart(at, "lesson_shuffle_off")["data"]}
    assert bars["shuffle on"] == bars["shuffle off"]
    assert "was trained without a shuffle: there is none to switch off" in " ".join(m.value for m in at.markdown)
