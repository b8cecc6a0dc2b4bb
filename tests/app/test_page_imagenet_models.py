"""Feature maps, Attributions and FLOPs with the official ImageNet models (0.5x g=3 and g=8, 224x224, 1000
classes, the official unit layout) as the app's default pair: shuffle points where these models shuffle,
28x28 stage-2 maps, a chosen class out of 1000, and the models' own cost."""

import numpy as np
import pytest

from conftest import page_chart, plotly_array
from shufflenet_viz.features import capture_features, channel_groups_at, shuffle_neighbour_points
from shufflenet_viz.figures.features import mosaic
from shufflenet_viz.images import load_image
from shufflenet_viz.preprocess import preprocess_image

PAIR = ("imagenet_official_g3_w0.5", "imagenet_official_g8_w0.5")
PHOTO = "dog.jpg"


@pytest.fixture
def open_page(with_imagenet, app_on_page, sample_image_paths):
    def open_(page_file: str):
        at = app_on_page(page_file, sample_image_paths[PHOTO])
        assert not at.main.error
        return at
    return open_


def test_feature_maps_follow_the_official_layout_at_224(open_page, imagenet_models, sample_image_paths):
    at = open_page("pages/feature_maps.py")
    assert [h.value for h in at.subheader] == [imagenet_models[name].label for name in PAIR]
    captions = " ".join(c.value for c in at.caption)
    assert captions.count("This model shuffles after the 3x3 depthwise conv + BN (official layout)") == 2
    # 0.5x g=8, stage 2: 48 bottleneck channels, 6 per group, so a group hears 6 of the 8 groups, not all.
    assert "each of the 3 groups of the second 1x1 GConv reads channels from 3 of the 3 groups" in captions
    assert "each of the 8 groups of the second 1x1 GConv reads channels from 6 of the 8 groups" in captions
    picture = load_image(sample_image_paths[PHOTO].read_bytes(), PHOTO).image
    for side, name in enumerate(PAIR):
        loaded = imagenet_models[name]
        unit = loaded.model.get_submodule("stage2.unit2")
        assert shuffle_neighbour_points(unit) == ("depthwise_bn", "shuffle")
        features = capture_features(loaded.model, preprocess_image(picture, loaded.preprocessing))
        before, after = features["stage2.unit2.depthwise_bn"], features["stage2.unit2.shuffle"]
        assert before.shape[-2:] == (28, 28)  # stage 2 at 224x224 input
        cells = plotly_array(page_chart(at, f"fm_after_{side}")["data"][0]["customdata"])
        shown = min(96, after.shape[1])
        np.testing.assert_array_equal(cells[..., 1], mosaic(after[0, :shown].numpy().astype(np.float64)).pixels)
        groups = channel_groups_at(loaded.model, "stage2.unit2.shuffle")
        assert np.array_equal(after[0].numpy(), before[0, groups.source].numpy())  # the inverse map's sources
        assert f"Channels {shown} of {after.shape[1]} on this page (28x28 each)" in captions


def test_attributions_for_a_class_chosen_out_of_1000(open_page, imagenet_models):
    at = open_page("pages/attributions.py")
    assert at.selectbox(key="method").value == "saliency"  # at 224x224 the page opens with one gradient
    assert at.toggle(key="groups").value is False  # at 224x224 the per-group pass waits to be asked for
    assert not [c for c in at.get("plotly_chart") if "at_groups_" in c.proto.id]
    at.toggle(key="groups").set_value(True)
    at.selectbox(key="method").set_value("saliency")
    at.radio(key="target").set_value("chosen").run()
    classes = at.selectbox(key="class").options
    assert len(classes) == 1000
    chosen = imagenet_models[PAIR[0]].classes[235]
    at.selectbox(key="class").set_value(chosen).run()
    assert not at.exception and not at.main.error
    assert sum(f"Explaining **{chosen}**" in c.value for c in at.caption) == 2
    for side in (0, 1):
        heatmap = page_chart(at, f"at_overlay_{side}")["data"][1]
        assert plotly_array(heatmap["z"]).size == 224 * 224
        assert len(page_chart(at, f"at_groups_{side}")["data"][0]["x"]) == (3, 8)[side]  # no 1000-bar chart


def test_flops_of_the_compared_official_models(open_page):
    at = open_page("pages/flops.py")
    at.radio(key="count").set_value("models").run()
    assert not at.exception
    assert [m.value for m in at.metric if m.label == "Multiply-adds"] == ["37.6 M", "40.5 M"]
    captions = [c.value for c in at.caption]
    assert "37,589,856 multiply-adds, 717,324 parameters at 224x224 with 1,000 classes." in captions
    assert "40,469,760 multiply-adds, 1,010,448 parameters at 224x224 with 1,000 classes." in captions
