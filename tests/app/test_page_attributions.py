"""The Attributions page with a picture uploaded through the sidebar: the overlays, IG's convergence delta and
the per-group bars are the library's results for that picture, for both models, method and class as chosen."""

import numpy as np
import pytest

from conftest import CIFAR_PAIR_PARAMS, page_chart, plotly_array
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
    downloads = at.get("download_button")
    assert [d.proto.label for d in downloads] == ["PNG", ".npy", "PNG", ".npy"]


def test_gradcam_for_a_chosen_class_in_both_models(page, cifar_pair, uploaded):
    at = page
    _, per_model = uploaded
    at.selectbox(key="at_method").set_value("gradcam").run()
    at.selectbox(key="at_cam_unit").set_value("stage3.unit8")
    at.radio(key="at_target_kind").set_value("chosen").run()
    at.selectbox(key="at_class").set_value("ship").run()
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


def test_every_method_renders_for_both_models(page, cifar_pair):
    at = page
    for method, settle in (("saliency", {}), ("smoothgrad", {"at_sg_samples": 4}),
                           ("occlusion", {"at_occ_window": 16, "at_occ_stride": 16})):
        for key, value in settle.items():  # before the widgets appear, so the defaults never run
            at.session_state[key] = value
        at.selectbox(key="at_method").set_value(method).run()
        assert not at.exception and not at.main.error and not at.main.warning, method
        assert len([c for c in at.get("plotly_chart") if "at_overlay_" in c.proto.id]) == 2, method
    occlusion_caption = " ".join(c.value for c in at.caption)
    assert all(f"{m.label}: 4 x 4 = 16 window positions on 64x64" in occlusion_caption for m in cifar_pair)
    assert [s.value for s in at.slider if s.key in ("at_occ_window", "at_occ_stride")] == [16, 16]


def test_occlusion_caption_and_groups_caption_state_the_computed_numbers(page, cifar_pair, uploaded):
    """Issue 14, findings 6 and 3: window 8, stride 3 is 20 x 20 = 400 windows (Captum's count), and the
    per-group caption names the shares of |attribution| with the pooled stem channels at stage2.unit1."""
    at = page
    at.session_state["at_occ_window"] = 8
    at.session_state["at_occ_stride"] = 3
    at.selectbox(key="at_method").set_value("occlusion")
    at.selectbox(key="at_group_unit").set_value("stage2.unit1").run()
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
                       {"method": "gradcam", "cam_unit": "stage3.unit8", "target": "chosen", "class": "ship",
                        "opacity": "0.5", "group_unit": "stage2.unit1", "groups": "0"})
    assert not at.exception and not at.warning and not at.main.error
    assert (at.selectbox(key="at_method").value, at.selectbox(key="at_cam_unit").value) == ("gradcam", "stage3.unit8")
    assert (at.radio(key="at_target_kind").value, at.selectbox(key="at_class").value) == ("chosen", "ship")
    assert at.slider(key="at_opacity").value == 0.5
    assert at.selectbox(key="at_group_unit").value == "stage2.unit1" and at.toggle(key="at_groups_on").value is False
    _, per_model = uploaded
    for side, (loaded, (x, _, _)) in enumerate(zip(cifar_pair, per_model)):
        expected = attribute(loaded.model, x, "gradcam", loaded.classes.index("ship"), unit="stage3.unit8")
        heatmap = page_chart(at, f"at_overlay_{side}")["data"][1]
        np.testing.assert_allclose(plotly_array(heatmap["z"]).reshape(64, 64), expected.map, rtol=1e-5, atol=1e-9)
        assert heatmap["opacity"] == 0.5
    assert not [c for c in at.get("plotly_chart") if "at_groups_" in c.proto.id]  # Layer IG switched off
    at.slider(key="at_opacity").set_value(0.3).run()
    at.selectbox(key="at_method").set_value("saliency").run()
    assert not at.exception and not at.warning
    assert dict(at.query_params) == {**CIFAR_PAIR_PARAMS, "method": "saliency", "target": "chosen", "class": "ship",
                                     "opacity": "0.3", "group_unit": "stage2.unit1", "groups": "0"}


def test_bad_values_in_a_link_get_one_warning_each_and_the_defaults(app_with_link, sample_image_paths,
                                                                   cifar_pair):
    at = app_with_link("pages/attributions.py", sample_image_paths[UPLOADED],
                       {"method": "magic", "steps": "5", "target": "chosen", "class": "unicorn", "opacity": "2",
                        "groups": "0"})
    assert not at.exception and not at.main.error
    warnings = [w.value for w in at.warning]
    assert len(warnings) == 4
    assert "method 'magic', which is not one of integrated_gradients (Integrated Gradients)" in warnings[0]
    assert "showing integrated_gradients (Integrated Gradients)." in warnings[0]  # 64x64 models open with IG
    assert "steps = '5'; it must be a whole number from 10 to 1,000. Showing 50." in warnings[1]
    assert "class 'unicorn', which is not one of airplane, automobile ... truck (10 in all); showing airplane." \
        in warnings[2]
    assert "opacity = '2'; it must be a number from 0 to 1. Showing 0.7." in warnings[3]
    assert len([m for m in at.metric if m.label == "IG convergence delta"]) == 2  # the page still explains
    assert sum("Explaining **airplane**" in c.value for c in at.caption) == 2
    assert (at.query_params["method"], at.query_params["steps"], at.query_params["class"],
            at.query_params["opacity"]) == ("integrated_gradients", "50", "airplane", "0.7")
