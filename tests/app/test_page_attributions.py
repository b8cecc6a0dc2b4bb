"""The Attributions page with a picture uploaded through the sidebar: the overlays, IG's convergence delta and
the per-group bars are the library's results for that picture, for both models, method and class as chosen."""

import numpy as np
import pytest

from conftest import page_chart, plotly_array
from shufflenet_viz.attributions import attribute, attribute_groups, black_baseline
from shufflenet_viz.images import load_image
from shufflenet_viz.inference import classify
from shufflenet_viz.preprocess import preprocess_image, what_model_sees
from shufflenet_viz.runtime import configure_torch_threads

UPLOADED = "deer.jpg"  # not the sidebar's default sample, so the page must be showing the upload


@pytest.fixture(scope="module")
def uploaded(cifar_pair, sample_image_paths):
    """(picture, [(x, black baseline, prediction)] per model) for the uploaded file, computed directly."""
    configure_torch_threads()  # the app's setting: the same kernels, so the same bits as the page's
    picture = load_image(sample_image_paths[UPLOADED].read_bytes(), UPLOADED).image
    return picture, [(preprocess_image(picture, m.preprocessing), black_baseline(m.preprocessing),
                      classify(m, picture)) for m in cifar_pair]


@pytest.fixture
def page(app_on_page, sample_image_paths, cifar_pair):
    at = app_on_page("pages/attributions.py", sample_image_paths[UPLOADED])
    assert not at.main.error
    return at


def assert_legend_matches_the_overlays(at) -> None:
    """The page's colour sentence names blue (against the class) exactly when an overlay shown has negative
    values, and says there is none otherwise."""
    text = " ".join(m.value for m in at.main.markdown)
    negative = any((plotly_array(page_chart(at, f"at_overlay_{side}")["data"][1]["z"]) < 0).any() for side in (0, 1))
    assert ("blue: **against**" in text) == negative
    assert ("there is no blue" in text) == (not negative)


def test_integrated_gradients_overlays_delta_and_group_bars(page, cifar_pair, uploaded):
    at = page
    picture, per_model = uploaded
    assert [h.value for h in at.subheader] == [m.label for m in cifar_pair]
    deltas = [m.value for m in at.metric if m.label == "IG convergence delta"]
    assert len(deltas) == 2
    captions = " ".join(c.value for c in at.caption)
    for side, (loaded, (x, black, answer)) in enumerate(zip(cifar_pair, per_model)):
        target = answer.predicted_index
        assert f"Explaining **{answer.predicted_class}**" in captions
        expected = attribute(loaded.model, x, "integrated_gradients", target, n_steps=50, baseline=black)
        assert deltas[side] == f"{expected.convergence_delta:+.2e}"
        assert f"{expected.relative_delta:.2%} of score(picture) - score(baseline) (50 steps)" in captions
        overlay = page_chart(at, f"at_overlay_{side}")
        image, heatmap = overlay["data"]
        np.testing.assert_array_equal(plotly_array(image["z"]), what_model_sees(picture, loaded.preprocessing))
        np.testing.assert_allclose(plotly_array(heatmap["z"]).reshape(64, 64), expected.map, rtol=1e-6, atol=1e-9)
        assert heatmap["colorbar"]["ticktext"] == ["against", "0", "for"]  # the sign legend
        assert (plotly_array(heatmap["z"]) < 0).any()  # IG carries a sign: there is blue to explain

        bars = page_chart(at, f"at_groups_{side}")["data"]
        assert len(bars) == 1 and bars[0]["x"] == [f"group {k + 1}" for k in range(loaded.groups)]
        groups = attribute_groups(loaded.model, x, "stage4.unit4", target, n_steps=50, baseline=black)
        # Bar heights: each group's sum of |channel attribution|; labels: its share of all channels' sum.
        sizes = [np.abs(groups.per_channel[k * (groups.per_channel.size // loaded.groups):
                                           (k + 1) * (groups.per_channel.size // loaded.groups)]).sum()
                 for k in range(loaded.groups)]
        np.testing.assert_allclose(plotly_array(bars[0]["y"]), sizes, rtol=1e-6, atol=1e-9)
        assert bars[0]["text"] == [f"{size / np.abs(groups.per_channel).sum():.0%}" for size in sizes]
        np.testing.assert_allclose(plotly_array(bars[0]["customdata"]), groups.per_group, rtol=1e-6, atol=1e-9)
    assert_legend_matches_the_overlays(at)
    downloads = at.get("download_button")
    assert [d.proto.label for d in downloads] == ["PNG", "Raw values (NumPy)", "PNG", "Raw values (NumPy)"]


def test_gradcam_for_a_chosen_class_in_both_models(page, cifar_pair, uploaded):
    at = page
    _, per_model = uploaded
    at.selectbox(key="method").set_value("gradcam").run()
    at.selectbox(key="cam_unit").set_value("stage3.unit8")
    at.radio(key="target").set_value("chosen").run()
    at.selectbox(key="class").set_value("ship").run()
    assert not at.exception and not at.main.error
    assert not [m for m in at.metric if m.label == "IG convergence delta"]
    assert sum("Explaining **ship**" in c.value for c in at.caption) == 2
    for side, (loaded, (x, black, _)) in enumerate(zip(cifar_pair, per_model)):
        ship = loaded.classes.index("ship")
        expected = attribute(loaded.model, x, "gradcam", ship, unit="stage3.unit8")
        heatmap = page_chart(at, f"at_overlay_{side}")["data"][1]
        np.testing.assert_allclose(plotly_array(heatmap["z"]).reshape(64, 64), expected.map, rtol=1e-5, atol=1e-9)
        assert heatmap["colorbar"]["ticktext"][0] == "0"  # no sign: the scale starts at zero
        assert len(page_chart(at, f"at_groups_{side}")["data"][0]["x"]) == loaded.groups
        assert (plotly_array(heatmap["z"]) >= 0).all()
    assert_legend_matches_the_overlays(at)


def test_every_method_renders_for_both_models(page, cifar_pair):
    at = page
    for method, settle in (("saliency", {}), ("smoothgrad", {"samples": 4}),
                           ("occlusion", {"window": 16, "stride": 16})):
        for key, value in settle.items():  # before the widgets appear, so the defaults never run
            at.session_state[key] = value
        at.selectbox(key="method").set_value(method).run()
        assert not at.exception and not at.main.error and not at.main.warning, method
        assert len([c for c in at.get("plotly_chart") if "at_overlay_" in c.proto.id]) == 2, method
        assert_legend_matches_the_overlays(at)
    occlusion_caption = " ".join(c.value for c in at.caption)
    assert all(f"{m.label}: 4 x 4 = 16 window positions on 64x64" in occlusion_caption for m in cifar_pair)
    assert [s.value for s in at.slider if s.key in ("window", "stride")] == [16, 16]


def test_occlusion_caption_and_groups_caption_state_the_computed_numbers(page, cifar_pair, uploaded):
    """Issue 14, findings 6 and 3: window 8, stride 3 is 20 x 20 = 400 windows (Captum's count), and the
    per-group caption names the shares of |attribution| with the pooled stem channels at stage2.unit1."""
    at = page
    at.session_state["window"] = 8
    at.session_state["stride"] = 3
    at.selectbox(key="method").set_value("occlusion")
    at.selectbox(key="group_unit").set_value("stage2.unit1").run()
    assert not at.exception and not at.main.error
    text = " ".join(c.value for c in at.caption)
    assert all(f"{m.label}: 20 x 20 = 400 window positions on 64x64" in text for m in cifar_pair)
    _, per_model = uploaded
    for side, (loaded, (x, black, answer)) in enumerate(zip(cifar_pair, per_model)):
        groups = attribute_groups(loaded.model, x, "stage2.unit1", answer.predicted_index, n_steps=50,
                                  baseline=black)
        stem = np.abs(groups.per_channel[-24:]).sum() / np.abs(groups.per_channel).sum()
        assert f"the 24 pooled stem channels (no group) {stem:.0%}" in text
        bars = page_chart(at, f"at_groups_{side}")["data"][0]
        assert bars["x"][-1] == "no group (pooled stem channels)" and bars["text"][-1] == f"{stem:.0%}"


def test_a_link_restores_method_options_class_and_groups(app_with_link, sample_image_paths, cifar_pair,
                                                         uploaded):
    at = app_with_link("pages/attributions.py", sample_image_paths[UPLOADED],
                       {"method": "Grad-CAM", "cam_unit": "stage3.unit8", "target": "a class I choose",
                        "class": "ship", "opacity": "0.5", "group_unit": "stage2.unit1", "groups": "false"})
    assert not at.exception and not at.warning and not at.main.error
    assert (at.selectbox(key="method").value, at.selectbox(key="cam_unit").value) == ("gradcam", "stage3.unit8")
    assert (at.radio(key="target").value, at.selectbox(key="class").value) == ("chosen", "ship")
    assert at.slider(key="opacity").value == 0.5
    assert at.selectbox(key="group_unit").value == "stage2.unit1" and at.toggle(key="groups").value is False
    _, per_model = uploaded
    for side, (loaded, (x, _, _)) in enumerate(zip(cifar_pair, per_model)):
        expected = attribute(loaded.model, x, "gradcam", loaded.classes.index("ship"), unit="stage3.unit8")
        heatmap = page_chart(at, f"at_overlay_{side}")["data"][1]
        np.testing.assert_allclose(plotly_array(heatmap["z"]).reshape(64, 64), expected.map, rtol=1e-5, atol=1e-9)
        assert heatmap["opacity"] == 0.5
    assert not [c for c in at.get("plotly_chart") if "at_groups_" in c.proto.id]  # Layer IG switched off
    # Every setting is a widget bound to the URL parameter of its own name, so a change goes back into the URL.
    bound = {"method": at.selectbox, "cam_unit": at.selectbox, "target": at.radio, "class": at.selectbox,
             "opacity": at.slider, "group_unit": at.selectbox, "groups": at.toggle}
    assert {key: widget(key=key).proto.query_param_key for key, widget in bound.items()} == {key: key for key in bound}
    at.slider(key="opacity").set_value(0.3).run()
    at.selectbox(key="method").set_value("saliency").run()
    assert not at.exception and not at.warning
    assert (at.selectbox(key="method").value, at.slider(key="opacity").value, at.selectbox(key="class").value) == \
        ("saliency", 0.3, "ship")
    assert not [w for w in at.selectbox if w.key == "cam_unit"] and "cam_unit" not in at.query_params
    heatmap = page_chart(at, "at_overlay_0")["data"][1]
    assert heatmap["opacity"] == 0.3


def test_options_of_the_same_name_in_two_methods_have_parameters_of_their_own(app_with_link, sample_image_paths,
                                                                              cifar_pair):
    """IG's steps run from 10 to 1,000 and SmoothGrad-IG's from 5 to 50; IG's baseline and Occlusion's window fill
    are two settings: a link sets each without touching the other."""
    at = app_with_link("pages/attributions.py", sample_image_paths[UPLOADED],
                       {"method": "SmoothGrad", "base": "Integrated Gradients", "samples": "4", "sg_steps": "5",
                        "steps": "100", "baseline": "mean colour (zero after normalisation)", "fill": "black image",
                        "groups": "false"})
    assert not at.exception and not at.warning and not at.main.error
    assert (at.radio(key="base").value, at.slider(key="samples").value, at.slider(key="sg_steps").value) == \
        ("integrated_gradients", 4, 5)
    assert (at.slider(key="sg_steps").proto.query_param_key, at.slider(key="sg_steps").max) == ("sg_steps", 50)
    at.selectbox(key="method").set_value("integrated_gradients").run()
    assert not at.exception and not at.warning
    assert (at.slider(key="steps").value, at.radio(key="baseline").value) == (100, "mean")
    assert (at.slider(key="steps").proto.query_param_key, at.slider(key="steps").max) == ("steps", 1000)
    assert "(100 steps)" in " ".join(c.value for c in at.caption)
    at.selectbox(key="method").set_value("occlusion").run()
    assert not at.exception and not at.warning
    assert at.radio(key="fill").value == "black"
    assert at.radio(key="fill").proto.query_param_key == "fill"


def test_bad_values_in_a_link_get_one_warning_each_and_the_defaults(app_with_link, sample_image_paths,
                                                                   cifar_pair):
    at = app_with_link("pages/attributions.py", sample_image_paths[UPLOADED],
                       {"method": "magic", "steps": "5", "target": "a class I choose", "class": "unicorn",
                        "opacity": "2", "groups": "false"})
    assert not at.exception and not at.main.error
    warnings = [w.value for w in at.warning]
    assert len(warnings) == 4
    assert warnings[0] == ("The link asks for method 'magic', which is not one of Integrated Gradients, Saliency, "
                           "SmoothGrad, Grad-CAM, Occlusion; it is ignored.")
    assert at.selectbox(key="method").value == "integrated_gradients"  # 64x64 models open with IG
    assert warnings[1] == "The link sets steps = '5'; it must be a whole number from 10 to 1,000. It is ignored."
    assert warnings[2] == ("The link asks for class 'unicorn', which is not one of airplane, automobile ... truck "
                           "(10 in all); it is ignored.")
    assert warnings[3] == "The link sets opacity = '2'; it must be a number from 0 to 1. It is ignored."
    assert len([m for m in at.metric if m.label == "IG convergence delta"]) == 2  # the page still explains
    assert sum("Explaining **airplane**" in c.value for c in at.caption) == 2
    assert (at.slider(key="steps").value, at.selectbox(key="class").value, at.slider(key="opacity").value) == \
        (50, "airplane", 0.7)
