"""The Channel shuffle page with a picture uploaded through the sidebar: the animation, the index map, the
Figure 1 comparison and the permutation each trained model applies, and a clear message for a bad C."""

import pytest
import torch

from conftest import page_charts, plotly_array
from shufflenet_viz import flow
from shufflenet_viz.model import shuffle_permutation

PAGE = "pages/shuffle.py"


def wiring_links(figure: dict) -> dict[int, int]:
    """output channel -> input channel, from the lines of a permutation wiring figure."""
    links = {}
    for trace in figure["data"]:
        if trace["mode"] == "lines":
            xs = plotly_array(trace["x"])
            for start in range(0, len(xs), 3):
                links[int(xs[start + 1])] = int(xs[start])
    return links


@pytest.fixture(scope="module")
def page(app_on_page, cifar_pair, sample_image_path):
    """The page after a photo was uploaded in the sidebar (one app run shared by this file's tests)."""
    return app_on_page(PAGE, sample_image_path)


def test_default_animation_is_the_stage2_bottleneck(page):
    assert page.number_input(key="shuffle_channels").value == 60
    assert page.number_input(key="shuffle_groups").value == 3
    figure = page_charts(page)["shuffle_animation"]
    assert len(figure["frames"]) == 4 + 3 * 6
    assert [step["label"] for step in figure["layout"]["sliders"][0]["steps"]] == [
        "1 row", "2 reshape", "3 transpose", "4 flatten"]
    assert figure["layout"]["title"]["text"] == "Channel shuffle of C=60 channels in g=3 groups"
    permutation = shuffle_permutation(60, 3).tolist()
    final = {round(x): int(label) for trace in figure["frames"][-1]["data"][:3]
             for x, label in zip(plotly_array(trace["x"]), trace["text"])}
    assert [final[slot] for slot in range(60)] == permutation
    index_map = page.dataframe[0].value
    assert index_map["input channel perm[i]"].tolist() == permutation
    assert index_map["input group"].tolist()[:6] == [1, 2, 3, 1, 2, 3]
    text = " ".join(m.value for m in page.markdown)
    assert flow.describe_permutation(shuffle_permutation(60, 3)) in text


def test_figure1_counts_outputs_that_hear_every_group(page):
    metrics = {m.label: m.value for m in page.metric}
    assert metrics["Output channels that hear every group, without shuffle"] == "0 of 12"
    assert metrics["Output channels that hear every group, with shuffle"] == "12 of 12"
    figure = page_charts(page)["shuffle_figure1"]
    assert [a["text"] for a in figure["layout"]["annotations"]] == ["without shuffle", "with shuffle"]


def test_trained_models_apply_their_shuffle(page, cifar_pair):
    found = page_charts(page)
    assert page.selectbox(key="shuffle_unit").value == "stage2.unit2"
    for side, loaded in enumerate(cifar_pair):
        unit = loaded.model.stage2.unit2
        bottleneck = unit.compress_conv.out_channels
        links = wiring_links(found[f"shuffle_unit_wiring_{side}"])
        expected = shuffle_permutation(bottleneck, loaded.groups) if loaded.groups > 1 else torch.arange(bottleneck)
        assert [links[i] for i in range(bottleneck)] == expected.tolist()
    captions = " ".join(c.value for c in page.caption)
    assert "Identity (one group)" in captions  # g=1
    assert "group 1 takes 7, 7, 6 channels from groups 1 to 3" in captions  # g=3, 60 bottleneck channels


def test_other_unit_and_settings(page, cifar_pair):
    page.selectbox(key="shuffle_unit").set_value("stage4.unit3")
    page.select_slider(key="shuffle_fig1_layers").set_value(4)
    page.number_input(key="shuffle_channels").set_value(12)
    page.run()
    assert not page.exception
    found = page_charts(page)
    assert len(found["shuffle_animation"]["frames"]) == 22
    g3 = cifar_pair[1]
    bottleneck = g3.model.stage4.unit3.compress_conv.out_channels
    links = wiring_links(found["shuffle_unit_wiring_1"])
    assert [links[i] for i in range(bottleneck)] == shuffle_permutation(bottleneck, 3).tolist()
    metrics = {m.label: m.value for m in page.metric}
    assert metrics["Output channels that hear every group, without shuffle"] == "0 of 12"


def test_channels_not_divisible_by_groups_give_a_message(page):
    page.number_input(key="shuffle_channels").set_value(61)
    page.run()
    assert not page.exception
    assert [e.value for e in page.error] == [flow.shuffle_setting_problem(61, 3)]
    assert "shuffle_animation" not in page_charts(page)
    assert "shuffle_figure1" in page_charts(page)  # the rest of the page still works
    page.number_input(key="shuffle_channels").set_value(60)
    page.run()
    assert not page.error and "shuffle_animation" in page_charts(page)
