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
    assert page.number_input(key="channels").value == 60
    assert page.number_input(key="groups").value == 3
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
    assert page.selectbox(key="unit").value == "stage2.unit2"
    for side, loaded in enumerate(cifar_pair):
        unit = loaded.model.stage2.unit2
        bottleneck = unit.compress_conv.out_channels
        links = wiring_links(found[f"shuffle_unit_wiring_{side}"])
        expected = shuffle_permutation(bottleneck, loaded.groups) if loaded.groups > 1 else torch.arange(bottleneck)
        assert [links[i] for i in range(bottleneck)] == expected.tolist()
    captions = " ".join(c.value for c in page.caption)
    assert "Identity (one group)" in captions  # g=1
    # g=3, 60 bottleneck channels in the paper's layout: each next group reads 7, 7, 6 channels in some order.
    assert ("Shuffled with the paper's (g, C/g) index map: groups 1 to 3 of the next 1x1 GConv read 7, 7, 6 / "
            "7, 6, 7 / 6, 7, 7 channels from groups 1 to 3, so every group hears every group.") in captions
    text = " ".join(m.value for m in page.markdown)
    assert "paper layout: 1x1 GConv \u2192 BN \u2192 ReLU \u2192 **shuffle** \u2192 3x3 DWConv" in text


def test_other_unit_and_settings(page, cifar_pair):
    page.selectbox(key="unit").set_value("stage4.unit3")
    page.select_slider(key="layers").set_value(4)
    page.number_input(key="channels").set_value(12)
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
    page.number_input(key="channels").set_value(61)
    page.run()
    assert not page.exception
    assert [e.value for e in page.error] == [flow.shuffle_setting_problem(61, 3)]
    assert "shuffle_animation" not in page_charts(page)
    assert "shuffle_figure1" in page_charts(page)  # the rest of the page still works
    page.number_input(key="channels").set_value(60)
    page.run()
    assert not page.error and "shuffle_animation" in page_charts(page)


@pytest.mark.parametrize("groups, per_group", [(3, 2), (4, 2), (4, 3)])
def test_figure1_caption_claims_all_groups_only_when_the_metric_says_so(page, groups, per_group):
    """Issue 14, finding 2. Before: with fewer than g channels per group the metric said '0 of 6' (g=3 x 2),
    '0 of 8' (4 x 2), '0 of 12' (4 x 3) while the caption said every output channel hears all groups."""
    page.select_slider(key="layers").set_value(2)
    page.select_slider(key="fig1_groups").set_value(groups)
    page.select_slider(key="per_group").set_value(per_group)
    page.run()
    assert not page.exception
    channels = groups * per_group
    shown = {m.label: m.value for m in page.metric}["Output channels that hear every group, with shuffle"]
    assert shown == f"0 of {channels}"
    captions = " ".join(c.value for c in page.caption)
    assert "every output channel hears all groups" not in captions
    assert (f"With one shuffle between two group convolutions each output channel hears {per_group} of the "
            f"{groups} groups") in captions
    assert f"at least g = {groups} channels per group" in captions


def test_animation_caption_for_fewer_channels_per_group_than_groups(page):
    """Issue 14, finding 2 (the animation): C=8, g=4 has 2 channels per group, so one shuffle reaches 2 groups."""
    page.number_input(key="channels").set_value(8)
    page.number_input(key="groups").set_value(4)
    page.run()
    assert not page.exception
    captions = " ".join(c.value for c in page.caption)
    assert "sees all groups" not in captions
    assert "holds channels from only 2 of the 4 groups" in captions
    page.number_input(key="channels").set_value(60)
    page.number_input(key="groups").set_value(3)
    page.run()
    assert "holds channels from all 3 groups" in " ".join(c.value for c in page.caption)


def test_official_imagenet_models_show_their_own_shuffle(with_imagenet, app_on_page, sample_image_path,
                                                         imagenet_models):
    import ui

    at = app_on_page(PAGE, sample_image_path)
    at.selectbox(key=ui.MODEL_KEYS[0]).set_value("imagenet_official_g3_w0.5")
    at.selectbox(key=ui.MODEL_KEYS[1]).set_value("imagenet_official_g8_w0.5")
    at.run()
    assert not at.exception
    found = page_charts(at)
    for side, name in enumerate(("imagenet_official_g3_w0.5", "imagenet_official_g8_w0.5")):
        loaded = imagenet_models[name]
        channels, groups = loaded.model.stage2.unit2.mid_channels, loaded.groups
        links = wiring_links(found[f"shuffle_unit_wiring_{side}"])
        # The official (C/g, g) reshape: output channel i is input channel (i % (C/g)) * g + i // (C/g).
        expected = [(i % (channels // groups)) * groups + i // (channels // groups) for i in range(channels)]
        assert [links[i] for i in range(channels)] == expected
        assert "after the 3x3 DWConv + BN" in found[f"shuffle_unit_wiring_{side}"]["layout"]["title"]["text"]
    text = " ".join(m.value for m in at.markdown)
    assert "official layout: 1x1 GConv \u2192 BN \u2192 ReLU \u2192 3x3 DWConv \u2192 BN \u2192 **shuffle**" in text
    captions = " ".join(c.value for c in at.caption)
    assert "the official code's (C/g, g) index map, the inverse of the paper's" in captions


def test_a_link_restores_every_setting_and_a_change_goes_back_into_the_url(app_with_link, sample_image_path,
                                                                           cifar_pair):
    at = app_with_link(PAGE, sample_image_path,
                       {"channels": "12", "groups": "4", "layers": "3", "fig1_groups": "4", "per_group": "2",
                        "unit": "stage3.unit2"})
    assert not at.exception and not at.warning
    assert [at.number_input(key=key).value for key in ("channels", "groups")] == [12, 4]
    assert [at.select_slider(key=key).value for key in ("layers", "fig1_groups", "per_group")] == [3, 4, 2]
    assert at.selectbox(key="unit").value == "stage3.unit2"
    found = page_charts(at)
    assert found["shuffle_animation"]["layout"]["title"]["text"] == "Channel shuffle of C=12 channels in g=4 groups"
    assert {m.label: m.value for m in at.metric}["Output channels that hear every group, without shuffle"] == "0 of 8"
    bottleneck = cifar_pair[1].model.stage3.unit2.compress_conv.out_channels
    links = wiring_links(found["shuffle_unit_wiring_1"])
    assert [links[i] for i in range(bottleneck)] == shuffle_permutation(bottleneck, 3).tolist()

    at.number_input(key="groups").set_value(3).run()
    at.selectbox(key="unit").set_value("stage4.unit1").run()
    assert not at.exception and not at.warning
    # Each widget is bound to the URL parameter of its key: a change goes back into the URL under that name.
    widgets = {"channels": at.number_input(key="channels"), "groups": at.number_input(key="groups"),
               "layers": at.select_slider(key="layers"), "fig1_groups": at.select_slider(key="fig1_groups"),
               "per_group": at.select_slider(key="per_group"), "unit": at.selectbox(key="unit")}
    assert {param: widget.proto.query_param_key for param, widget in widgets.items()} == {
        param: param for param in widgets}
    assert {param: widget.value for param, widget in widgets.items()} == {
        "channels": 12, "groups": 3, "layers": 3, "fig1_groups": 4, "per_group": 2, "unit": "stage4.unit1"}


def test_bad_values_in_a_link_get_one_warning_each_and_the_defaults(app_with_link, sample_image_path):
    at = app_with_link(PAGE, sample_image_path,
                       {"channels": "0", "layers": "5", "unit": "stage9.unit1"})
    assert not at.exception
    warnings = [w.value for w in at.warning]
    assert len(warnings) == 3
    assert "channels = '0'; it must be a whole number from 1 to" in warnings[0] and "It is ignored." in warnings[0]
    assert "layers '5', which is not one of 2, 3, 4; it is ignored." in warnings[1]
    assert "unit 'stage9.unit1'" in warnings[2] and "it is ignored" in warnings[2]
    assert at.number_input(key="channels").value == 60
    assert at.select_slider(key="layers").value == 2
    assert at.selectbox(key="unit").value == "stage2.unit2"
    assert {"shuffle_animation", "shuffle_figure1", "shuffle_unit_wiring_1"} <= set(page_charts(at))
    # The defaults are shown, and a URL never spells a default: the refused values are gone from it.
    assert not {"channels", "layers", "unit"} & set(at.query_params)
