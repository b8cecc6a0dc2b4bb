"""The Feature maps page with a picture uploaded through the sidebar: what its grids show is exactly the
captured tensors of that picture, tile for tile, with group frames, pages and orderings as chosen."""

from urllib.parse import parse_qsl

import numpy as np
import pytest

from conftest import page_chart, plotly_array
from shufflenet_viz.features import ORDERINGS, POINT_LABELS, capture_features, channel_order
from shufflenet_viz.figures.features import FRAME_NAME, GROUP_BAR_NAME, mosaic
from shufflenet_viz.images import load_image
from shufflenet_viz.preprocess import preprocess_image
from shufflenet_viz.runtime import configure_torch_threads

UPLOADED = "horse.jpg"  # not the sidebar's default sample, so the page must be showing the upload


def shown_cells(figure: dict) -> np.ndarray:
    """The heatmap's customdata: [..., 0] channel index, [..., 1] value (NaN in the gaps)."""
    return plotly_array(figure["data"][0]["customdata"])


def tiles_by_role(figure: dict, role: str) -> dict[str, int]:
    return {trace["name"]: trace["meta"]["tiles"] for trace in figure["data"][1:] if trace["meta"]["role"] == role}


def expected_cells(feature, channels) -> np.ndarray:
    tiles = feature[0, channels].numpy().astype(np.float64)
    ids = np.broadcast_to(np.asarray(channels, dtype=np.float64)[:, None, None], tiles.shape)
    return np.dstack([mosaic(ids).pixels, mosaic(tiles).pixels])


def captions(at) -> list[str]:
    return [c.value for c in at.caption]


@pytest.fixture(scope="module")
def uploaded_features(cifar_pair, sample_image_paths):
    configure_torch_threads()  # the app's setting: the same kernels, so the same bits as the page's
    picture = load_image(sample_image_paths[UPLOADED].read_bytes(), UPLOADED).image
    return [capture_features(m.model, preprocess_image(picture, m.preprocessing)) for m in cifar_pair]


@pytest.fixture
def page(app_on_page, sample_image_paths, cifar_pair):
    return app_on_page("pages/feature_maps.py", sample_image_paths[UPLOADED])


def test_shuffle_pair_shows_the_uploaded_pictures_channels_before_and_after(page, cifar_pair, uploaded_features):
    at = page
    assert [h.value for h in at.subheader] == [m.label for m in cifar_pair]
    for side, (loaded, features) in enumerate(zip(cifar_pair, uploaded_features)):
        channels = features["stage2.unit2.shuffle"].shape[1]
        assert channels == (36, 60)[side]
        before, after = page_chart(at, f"fm_before_{side}"), page_chart(at, f"fm_after_{side}")
        for figure, point in ((before, "compress_relu"), (after, "shuffle")):
            expected = expected_cells(features[f"stage2.unit2.{point}"], np.arange(channels))
            np.testing.assert_array_equal(shown_cells(figure), expected)
        per_group = channels // loaded.groups
        expected_frames = {f"group {k + 1}": per_group for k in range(loaded.groups)}
        assert tiles_by_role(before, FRAME_NAME) == expected_frames == tiles_by_role(after, FRAME_NAME)
        # g=3: the bars under the shuffled tiles show the new groups; g=1 has nothing that moves.
        assert tiles_by_role(after, GROUP_BAR_NAME) == ({} if loaded.groups == 1 else
                                                        {f"group {k + 1} (bar)": per_group for k in range(3)})
    after_g3 = page_chart(at, "fm_after_1")
    frames = [t for t in after_g3["data"][1:] if t["meta"]["role"] == FRAME_NAME]
    first_left_edges = [np.nanmin(plotly_array(t["x"])) for t in frames]
    assert first_left_edges == sorted(first_left_edges)  # tiles 0, 1, 2 carry groups 1, 2, 3: interleaved
    assert any("It carries channel 20 of the first 1x1 GConv's output (group 2)" in c for c in captions(at))


def test_largest_layer_is_paginated_and_sorted_by_strength(page, cifar_pair, uploaded_features):
    at = page
    at.selectbox(key="layer").set_value("stage4.unit4")
    at.selectbox(key="point").set_value("output").run()
    assert at.radio(key="order").disabled is False  # the order is a choice outside the shuffle pair
    at.radio(key="order").set_value("mean_abs").run()
    assert not at.exception
    pages = {p.key: p.num_pages for p in at.get("pagination")}
    assert pages == {"left_page": 6, "right_page": 10}
    assert [p.proto.query_param_key for p in at.get("pagination")] == ["left_page", "right_page"]
    assert "Channels 96 of 576 on this page (2x2 each)" in " ".join(captions(at))
    assert "Channels 96 of 960 on this page (2x2 each)" in " ".join(captions(at))
    for side, features in enumerate(uploaded_features):
        feature = features["stage4.unit4.output"]
        order = channel_order(feature, "mean_abs")
        np.testing.assert_array_equal(shown_cells(page_chart(at, f"fm_grid_{side}")),
                                      expected_cells(feature, order[:96]))
        strongest = feature[0, order[0]]
        assert f"Values from {strongest.min():.3f} to {strongest.max():.3f}" in " ".join(captions(at))

    at.get("pagination")[1].set_value(10).run()
    assert not at.exception
    feature = uploaded_features[1]["stage4.unit4.output"]
    last_page = channel_order(feature, "mean_abs")[864:]
    figure = page_chart(at, "fm_grid_1")
    np.testing.assert_array_equal(shown_cells(figure), expected_cells(feature, last_page))
    assert sum(tiles_by_role(figure, FRAME_NAME).values()) == 96


def test_partial_last_page_stem_and_channel_inspector(page, cifar_pair, uploaded_features):
    at = page
    at.selectbox(key="layer").set_value("stage2.unit3")
    at.selectbox(key="point").set_value("output").run()
    at.pagination(key="right_page").set_value(3).run()
    assert not at.exception
    figure = page_chart(at, "fm_grid_1")
    assert sum(tiles_by_role(figure, FRAME_NAME).values()) == 240 - 2 * 96
    assert "Channels 48 of 240 on this page (8x8 each): 192, 193" in " ".join(captions(at))

    at.number_input(key="right_channel").set_value(200).run()
    values = uploaded_features[1]["stage2.unit3.output"][0, 200]
    large = page_chart(at, "right_channel_figure")
    np.testing.assert_allclose(plotly_array(large["data"][0]["z"]), values.numpy(), rtol=1e-6)
    assert large["layout"]["title"]["text"] == "Channel 200, group 3"

    at.selectbox(key="layer").set_value("stem").run()
    assert not at.exception
    for side in (0, 1):
        stem = page_chart(at, f"fm_grid_{side}")
        assert tiles_by_role(stem, FRAME_NAME) == {"no group (dense conv)": 24}
        np.testing.assert_array_equal(shown_cells(stem),
                                      expected_cells(uploaded_features[side]["stem"], np.arange(24)))


def test_frames_show_where_channels_came_from_bars_who_reads_them(page, cifar_pair):
    """Issue 14, finding 4: at stage3.unit1's output (branch then pooled shortcut) channel 100 came from group 2
    and the next 1x1 GConv reads it in group 1; stage2.unit1's ungrouped first conv gives grey frames."""
    at = page
    at.selectbox(key="layer").set_value("stage3.unit1")
    at.selectbox(key="point").set_value("output").run()
    at.number_input(key="right_channel").set_value(100).run()
    assert not at.exception
    large = page_chart(at, "right_channel_figure")
    assert large["layout"]["title"]["text"] == "Channel 100: from group 2, read by group 1"
    grid_g3 = page_chart(at, "fm_grid_1")  # first page: channels 0..95 of 480
    assert tiles_by_role(grid_g3, FRAME_NAME) == {"group 1": 80, "group 2": 16}  # branch groups of 80
    assert tiles_by_role(grid_g3, GROUP_BAR_NAME) == {"group 1 (bar)": 96}  # the next unit reads 160 per group
    # Frames (80 per block): 0 1 2 | 0 1 2 (shortcut); bars (160 per block): 0 0 1 | 1 2 2: four blocks differ.
    assert any("differs from the frame for 320 of 480 channels" in c for c in captions(at))

    at.selectbox(key="layer").set_value("stage2.unit1")
    at.selectbox(key="point").set_value("compress_relu").run()
    assert not at.exception
    dense = page_chart(at, "fm_grid_1")
    assert tiles_by_role(dense, FRAME_NAME) == {"no group (dense conv)": 60}
    assert sum(tiles_by_role(dense, GROUP_BAR_NAME).values()) == 60  # read, once shuffled, by the 3 groups
    assert any("Frames are grey (no group)" in c for c in captions(at))


def test_a_unit_point_links_to_its_node_in_the_unit_diagram(app_on_page, app_with_link, sample_image_path,
                                                            cifar_pair):
    at = app_on_page("pages/feature_maps.py", sample_image_path)
    at.selectbox(key="layer").set_value("stage3.unit2").run()
    at.selectbox(key="point").set_value("depthwise_bn").run()
    assert not at.exception
    links = [link for link in at.get("page_link")]
    assert len(links) == 2
    for link, loaded in zip(links, cifar_pair):
        assert link.proto.page.endswith("unit")  # the page's URL path
        # Spelled as the unit page's widgets show them: the model's label, the node's words and key.
        assert dict(parse_qsl(link.proto.query_string)) == {"model": loaded.label, "unit": "stage3.unit2",
                                                            "node": "BN (depthwise_bn)"}
    # Followed, the link opens that node of that model's unit.
    unit_page = app_with_link("pages/unit.py", sample_image_path, dict(parse_qsl(links[0].proto.query_string)))
    assert not unit_page.exception and not unit_page.warning
    assert [unit_page.selectbox(key=key).value for key in ("model", "unit", "node")] == [
        cifar_pair[0].name, "stage3.unit2", "depthwise_bn"]


def test_a_link_restores_layer_point_order_page_and_channel(app_with_link, sample_image_paths, cifar_pair,
                                                            uploaded_features):
    # A link spells the point and the order as their widgets show them.
    at = app_with_link("pages/feature_maps.py", sample_image_paths[UPLOADED],
                       {"layer": "stage3.unit1", "point": POINT_LABELS["output"], "order": ORDERINGS["mean_abs"],
                        "right_page": "2", "right_channel": "100"})
    assert not at.exception and not at.warning
    assert (at.selectbox(key="layer").value, at.selectbox(key="point").value) == ("stage3.unit1", "output")
    assert at.radio(key="order").value == "mean_abs"
    assert at.pagination(key="right_page").value == 2
    assert at.number_input(key="right_channel").value == 100
    strongest = channel_order(uploaded_features[1]["stage3.unit1.output"], "mean_abs")
    assert ("Channels 96 of 480 on this page (4x4 each): " + ", ".join(str(c) for c in strongest[96:104])) in \
        " ".join(captions(at))
    large = page_chart(at, "right_channel_figure")
    assert large["layout"]["title"]["text"] == "Channel 100: from group 2, read by group 1"
    # Another order is a fresh grid: page 1 and its strongest channel, not the link's old page and channel.
    at.radio(key="order").set_value("index").run()
    assert not at.exception and not at.warning
    assert (at.pagination(key="right_page").value, at.number_input(key="right_channel").value) == (1, 0)
    at.number_input(key="right_channel").set_value(7).run()
    assert at.number_input(key="right_channel").value == 7 and at.selectbox(key="layer").value == "stage3.unit1"
    # Every setting is bound to the URL parameter of its key, so each change goes back into the URL.
    assert [at.selectbox(key=key).proto.query_param_key for key in ("layer", "point")] == ["layer", "point"]
    assert at.radio(key="order").proto.query_param_key == "order"
    assert [at.pagination(key=key).proto.query_param_key for key in ("left_page", "right_page")] == [
        "left_page", "right_page"]
    assert [at.number_input(key=key).proto.query_param_key for key in ("left_channel", "right_channel")] == [
        "left_channel", "right_channel"]


def test_bad_values_in_a_link_get_one_warning_each_and_the_defaults(app_with_link, sample_image_paths):
    at = app_with_link("pages/feature_maps.py", sample_image_paths[UPLOADED],
                       {"layer": "stage9.unit1", "order": "random", "right_channel": "99999"})
    assert not at.exception
    warnings = [w.value for w in at.warning]
    assert len(warnings) == 3
    assert "layer 'stage9.unit1', which is not one of stem, stage2.unit1" in warnings[0]
    assert warnings[0].endswith("; it is ignored.")
    assert f"order 'random', which is not one of {ORDERINGS['index']}, " in warnings[1]
    assert "right_channel = '99999'; it must be a whole number from 0 to 59. It is ignored." in warnings[2]
    assert at.selectbox(key="layer").value == "stage2.unit2" and at.selectbox(key="point").value == "shuffle_pair"
    assert {"fm_before_0", "fm_after_0", "fm_before_1", "fm_after_1"} <= {
        c.proto.id.rsplit("-", 1)[-1] for c in at.get("plotly_chart")}
    assert at.radio(key="order").value == "index" and at.number_input(key="right_channel").value == 1
    # The defaults are shown, and a URL never spells a default: the refused values are gone from it.
    assert not {"layer", "point", "order", "right_channel"} & set(at.query_params)
