"""The Classify page with a picture uploaded through the sidebar: what it shows equals the library's answers."""

from dataclasses import replace

import pytest

from conftest import IMAGENET_PAIR, page_chart
from shufflenet_viz.images import load_image
from shufflenet_viz.inference import classify


@pytest.fixture(scope="module")
def classified(app_test, upload_picture, sample_image_path, cifar_pair):
    data = sample_image_path.read_bytes()
    at = upload_picture(app_test(), "dog.jpg", data, "image/jpeg")
    assert not at.exception
    picture = load_image(data, "dog.jpg").image
    return at, [classify(model, picture) for model in cifar_pair]


def test_top5_of_each_model_equals_direct_inference(classified, cifar_pair):
    at, expected = classified
    for side, (model, answer) in enumerate(zip(cifar_pair, expected)):
        bars = page_chart(at, f"top_k_{side}")["data"][0]
        top5 = answer.top(5)
        assert bars["y"][::-1] == [name for name, _ in top5]  # most likely on top
        # float32 kernels may sum in another order from call to call: equal to ~1e-7, not bit for bit
        assert bars["x"][::-1] == pytest.approx([p for _, p in top5], abs=1e-5)
    assert [header.value for header in at.subheader][:2] == [m.label for m in cifar_pair]


def test_agreement_line_names_both_predictions(classified, cifar_pair):
    at, expected = classified
    left, right = (answer.predicted_class for answer in expected)
    if left == right:
        assert len(at.success) == 1 and not at.warning
        assert f"both say **{left}**" in at.success[0].value
    else:
        assert len(at.warning) == 1 and not at.success
        text = at.warning[0].value
        assert text.startswith("The models disagree")
        assert f"says **{left}**" in text and f"says **{right}**" in text


def test_forward_time_and_what_the_model_sees(classified, cifar_pair):
    at, _ = classified
    times = [m.value for m in at.metric if m.label == "Forward pass"]
    assert len(times) == 2
    assert all(t.endswith(" ms") and float(t[:-3]) > 0 for t in times)
    captions = [c for image in at.main.get("image") for c in image.captions]
    for model in cifar_pair:
        spec = model.preprocessing
        assert (f"What the model sees: {spec.native_size}x{spec.native_size} pixels, upsampled to "
                f"{spec.input_size}x{spec.input_size}") in captions


def test_model_cards_show_the_manifest_metrics_when_opened(classified, cifar_pair):
    import ui

    at, _ = classified
    labels = [e.label for e in at.main.expander]
    assert labels == [f"Model card: {m.label}" for m in cifar_pair]
    # Closed cards cost nothing: only the two top-5 charts are sent.
    assert len(at.get("plotly_chart")) == 2 and not [m for m in at.metric if m.label == "Test accuracy"]
    for side in range(2):
        at.session_state[f"{ui.SIDES[side]}_card"] = True  # what a click on the card's title does
    at.run()
    assert not at.exception
    accuracies = [m.value for m in at.metric if m.label == "Test accuracy"]
    assert accuracies == [f"{m.entry['metrics']['test_accuracy']:.2%}" for m in cifar_pair]
    for side, model in enumerate(cifar_pair):
        metrics = model.entry["metrics"]
        heatmap = page_chart(at, f"confusion_{side}")["data"][0]
        assert heatmap["z"] == metrics["confusion_matrix"]
        assert heatmap["x"] == list(model.classes) == heatmap["y"]
        per_class = page_chart(at, f"per_class_{side}")["data"][0]
        assert dict(zip(per_class["y"], per_class["x"])) == metrics["per_class_accuracy"]
    markdown = " ".join(m.value for m in at.main.markdown)
    assert all(m.entry["training"]["hardware"] in markdown for m in cifar_pair)



def link_warnings(at) -> list[str]:
    """The URL's warnings (the agreement line may be a warning too)."""
    return [w.value for w in at.warning if w.value.startswith("The link")]


def test_a_link_opens_a_model_card_and_closing_it_goes_back_into_the_url(app_test, cifar_pair):
    at = app_test()
    at.query_params.update({"left_card": "false", "right_card": "true"})  # a bound expander's spelling
    at.switch_page("pages/classify.py").run()
    assert not at.exception and not link_warnings(at)
    accuracies = [m.value for m in at.metric if m.label == "Test accuracy"]
    assert accuracies == [f"{cifar_pair[1].entry['metrics']['test_accuracy']:.2%}"]  # the right card alone
    assert "confusion_1" in {c.proto.id.rsplit("-", 1)[-1] for c in at.get("plotly_chart")}
    # What a click on each card's title does. A browser's address follows the widgets; AppTest sends the link's
    # query string on every run, so the closed card's parameter leaves it as it leaves a browser's address.
    del at.query_params["right_card"]
    at.session_state["right_card"] = False
    at.session_state["left_card"] = True
    at.run()
    assert not at.exception
    assert [m.value for m in at.metric if m.label == "Test accuracy"] == [
        f"{cifar_pair[0].entry['metrics']['test_accuracy']:.2%}"]
    # Each card is bound to the URL parameter of its key, so opening or closing it goes back into the URL.
    assert [card.proto.query_param_key for card in at.main.expander] == ["left_card", "right_card"]


def test_a_bad_card_value_in_a_link_gets_one_warning_and_the_card_stays_closed(app_test, cifar_pair):
    at = app_test()
    at.query_params.update({"left_card": "open"})
    at.switch_page("pages/classify.py").run()
    assert not at.exception
    assert link_warnings(at) == ["The link sets left_card = 'open'; it must be true or false. It is ignored."]
    assert not [m for m in at.metric if m.label == "Test accuracy"]
    assert len([m for m in at.metric if m.label == "Forward pass"]) == 2  # the page still answers
    assert not {"left_card", "right_card"} & set(at.query_params)  # closed is the default, never in a URL


# --- with the ImageNet models installed ---------------------------------------------------------------------

SAMPLE_ANSWERS = {"cat.jpg": ("Egyptian cat", "tabby", "tiger cat"), "dog.jpg": ("German shepherd",),
                  "coffee_cup.jpg": ("espresso",)}


def test_with_imagenet_installed_a_visitor_first_sees_a_right_answer(app_test, with_imagenet):
    import ui

    at = app_test()
    assert not at.exception
    assert at.selectbox(key=ui.PAIR_KEY).value == "g=3 vs g=8, ImageNet-1k, official 0.5x"
    assert [at.selectbox(key=key).value for key in ui.MODEL_KEYS] == list(IMAGENET_PAIR)
    for sample, classes in SAMPLE_ANSWERS.items():
        at.selectbox(key=ui.SAMPLE_KEY).set_value(sample).run()
        assert not at.exception and len(at.success) == 1, sample
        said = at.success[0].value.split("both say **")[1].split("**")[0]
        assert said in classes, (sample, at.success[0].value)
        for side in range(2):
            assert len(page_chart(at, f"top_k_{side}")["data"][0]["y"]) == 5  # five bars, never 1000


def test_comparison_presets_set_both_models(app_test, with_imagenet):
    import ui

    at = app_test()
    presets = at.selectbox(key=ui.PAIR_KEY).options
    # osmr's 1x pair is not installed here, so the official pair comes first and is the default.
    assert presets[:2] == ["g=3 vs g=8, ImageNet-1k, official 0.5x",
                           "g=1 vs g=3, CIFAR-10 1x, trained here with one recipe"] and presets[-1] == ui.ANY_PAIR
    assert presets[2:-1] == [label for label, *_ in ui.available_presets(ui.loaded_models())][2:]
    at.selectbox(key=ui.PAIR_KEY).set_value(presets[1]).run()
    assert [at.selectbox(key=key).value for key in ui.MODEL_KEYS] == ["cifar10_g1", "cifar10_g3"]
    at.selectbox(key=ui.MODEL_KEYS[1]).set_value("imagenet_osmr_g3_w0.25").run()  # any two: dataset mixed
    assert not at.exception and at.selectbox(key=ui.PAIR_KEY).value == ui.ANY_PAIR
    assert at.main.subheader[1].value == "ImageNet-1k g=3 (0.25x, osmr)"


def test_model_card_of_a_published_model_names_its_source(app_test, with_imagenet):
    at = app_test()
    at.session_state["left_card"] = True
    at.run()
    assert not at.exception
    assert [m.value for m in at.metric if m.label == "Top-1 accuracy (reported)"] == ["57.3%"]
    card = " ".join(m.value for m in at.main.markdown)
    assert "MIT (megvii-model/ShuffleNet-Series)" in card and "BGR" in card
    assert "shuffle after the 3x3 depthwise conv" in card


def test_the_sidebar_button_installs_the_imagenet_models(app_test, tmp_path, monkeypatch):
    """On the owner's own machine (a server on loopback) the button installs from the mirror the server's
    environment names; what the mirror lacks is named, and the app keeps working."""
    import ui
    from streamlit.testing.v1.util import patch_config_options

    from conftest import IMAGENET_MIRROR, MIRRORED, OSMR_PAIR
    from shufflenet_viz import imagenet, weights

    monkeypatch.setattr(weights, "FETCHED_DIR", tmp_path / "fetched")
    for name, checkpoint in list(imagenet.CATALOGUE.items()):  # the publishers are never reached from a test
        monkeypatch.setitem(imagenet.CATALOGUE, name, replace(checkpoint, url="http://127.0.0.1:9/gone"))
    monkeypatch.setenv(imagenet.MIRROR_ENV, str(tmp_path / "empty"))
    with patch_config_options({"server.address": "127.0.0.1"}):
        at = app_test()
        assert [at.selectbox(key=key).value for key in ui.MODEL_KEYS] == ["cifar10_g1", "cifar10_g3"]
        assert not at.text_input  # the mirror is the server's setting, never a visitor's field
        at.button[0].click().run()  # offline: a clear message, nothing installed, the app keeps working
        assert not at.exception and not (tmp_path / "fetched").exists()
        error = at.sidebar.error[0].value
        assert "not in the mirror" in error and "--mirror DIR" in error and imagenet.MIRROR_ENV in error
        monkeypatch.setenv(imagenet.MIRROR_ENV, str(IMAGENET_MIRROR))
        at.button[0].click().run()
    assert not at.exception
    assert [at.selectbox(key=key).value for key in ui.MODEL_KEYS] == list(ui.PAIR_PRESETS[1][1:])
    assert at.sidebar.success[0].value == f"Installed {', '.join(MIRRORED)}."
    assert sorted(weights.read_manifest(tmp_path / "fetched")) == sorted(MIRRORED)
    assert all(name in at.sidebar.error[0].value for name in OSMR_PAIR)
