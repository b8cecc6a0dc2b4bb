"""The ImageNet models in the app: osmr's 1x g=1 / g=3 pair (stood in by checkpoints in osmr's layout) as the
default of every page that compares two models, its model cards, and the install as the server owner's action:
no widget takes a mirror location, and a server served beyond loopback offers no install unless its owner's
settings say so."""

import urllib.request
from dataclasses import replace

import pytest
from streamlit.testing.v1.util import patch_config_options

import ui
from conftest import IMAGENET_MIRROR, MIRRORED, OSMR_PAIR, app_pages
from shufflenet_viz import imagenet, weights

# Every page that compares the sidebar's two models, and the models its first view names: both, or the right-hand
# one The unit draws (the lesson names them on its own steps).
COMPARING_PAGES = {"pages/classify.py": (0, 1), "pages/lesson.py": (), "pages/shuffle.py": (0, 1), "pages/unit.py": (1,),
                   "pages/information_flow.py": (0, 1), "pages/flops.py": (0, 1), "pages/feature_maps.py": (0, 1),
                   "pages/attributions.py": (0, 1)}
INSTALL_BUTTON = "Download and install"


def page_text(at) -> str:
    """Everything the page's main area says in words."""
    kinds = ("title", "header", "subheader", "markdown", "caption")
    return "\n".join(element.value for kind in kinds for element in at.main.get(kind))


def test_the_g1_g3_pair_is_the_default_on_every_page_that_compares(with_imagenet_pair, app_test):
    at = app_test()
    labels = [ui.loaded_models().label(name) for name in OSMR_PAIR]
    assert labels == ["ImageNet-1k g=1 (1x, osmr)", "ImageNet-1k g=3 (1x, osmr)"]
    assert at.selectbox(key=ui.PAIR_KEY).value == "g=1 vs g=3, ImageNet-1k, osmr 1x"
    assert at.selectbox(key=ui.PAIR_KEY).options[:3] == ["g=1 vs g=3, ImageNet-1k, osmr 1x",
                                                          "g=3 vs g=8, ImageNet-1k, official 0.5x",
                                                          "g=1 vs g=3, CIFAR-10 1x, trained here with one recipe"]
    for page, sides in COMPARING_PAGES.items():
        at.switch_page(page).run()
        if page == "pages/flops.py":  # it opens on the paper's Table 1; the compared models are one click away
            at.radio(key="count").set_value("models").run()
        assert not at.exception and not at.main.error, page
        assert [at.selectbox(key=key).value for key in ui.MODEL_KEYS] == list(OSMR_PAIR), page
        assert [at.query_params[param] for param in ui.MODEL_PARAMS] == list(OSMR_PAIR), page
        text = page_text(at)
        assert all(labels[side] in text for side in sides), (page, text[:2000])


def test_the_model_cards_of_the_pair_give_the_reported_accuracy_and_source(with_imagenet_pair, app_test):
    at = app_test()
    for side in ui.SIDES:
        at.session_state[f"{side}_card"] = True
    at.run()
    assert not at.exception
    reported = {name: imagenet.CATALOGUE[name].top5_error_percent for name in OSMR_PAIR}
    assert reported == {"imagenet_osmr_g1_w1": 13.89, "imagenet_osmr_g3_w1": 13.48}
    assert [m.value for m in at.metric if m.label == "Top-5 accuracy (reported)"] == ["86.1%", "86.5%"]
    captions = [c.value for c in at.main.caption]
    for name in OSMR_PAIR:
        assert imagenet.CATALOGUE[name].reported in captions
    card = " ".join(m.value for m in at.main.markdown)
    assert card.count("**Published by:** https://github.com/osmr/imgclsmob") == 2
    assert card.count("**Licence:** MIT (osmr/imgclsmob)") == 2


def test_no_widget_on_any_page_takes_a_mirror_location(app_test, nothing_fetched, monkeypatch):
    monkeypatch.delenv(imagenet.OWNER_INSTALL_ENV, raising=False)
    with patch_config_options({"server.address": "127.0.0.1"}):  # the install button on: the most widgets
        at = app_test()
        assert at.button and at.button[0].label == INSTALL_BUTTON
        for page, _ in app_pages():
            at.switch_page(page).run()
            assert not at.exception, page
            fields = [*at.get("text_input"), *at.get("text_area")]
            assert not [field for field in fields if "mirror" in f"{field.label} {field.help}".lower()], page
            assert not at.sidebar.get("text_input") and not at.sidebar.get("text_area"), page


@pytest.fixture()
def no_network(monkeypatch):
    """Every download the server starts is recorded and refused."""
    asked = []

    def refuse(location, *args, **kwargs):
        asked.append(getattr(location, "full_url", location))
        raise OSError("no request may leave the server in this test")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    return asked


@pytest.fixture()
def nothing_fetched(monkeypatch, tmp_path):
    """The app's fetched-models folder is a new, empty one."""
    monkeypatch.setattr(weights, "FETCHED_DIR", tmp_path / "fetched")


@pytest.mark.parametrize("address", [None, "0.0.0.0", "192.0.2.7", "lens.example.org"])
def test_served_beyond_loopback_a_visitor_gets_no_install_and_no_request_leaves(app_test, no_network, nothing_fetched,
                                                                              monkeypatch, tmp_path, address):
    monkeypatch.delenv(imagenet.OWNER_INSTALL_ENV, raising=False)
    monkeypatch.setenv(imagenet.MIRROR_ENV, "http://127.0.0.1:9/internal-probe")
    with patch_config_options({"server.address": address}):
        at = app_test()
        assert not at.exception and not at.button and not at.get("text_input")
        box = next(e for e in at.sidebar.expander if e.label == "ImageNet models on this server")
        line = box.markdown[0].value
        assert line.startswith("This server has no ImageNet model. Its owner installs the others (")
        assert line.endswith("on the server with `python -m shufflenet_viz weights fetch imagenet --all`.")
        at.session_state[ui.INSTALL_KEY] = True  # a click forged into the session
        at.run()
    assert not at.exception and no_network == [] and not (tmp_path / "fetched").exists()
    assert [at.selectbox(key=key).value for key in ui.MODEL_KEYS] == ["cifar10_g1", "cifar10_g3"]


def test_a_visitor_sees_which_models_the_server_has(app_test, with_imagenet, no_network, monkeypatch):
    monkeypatch.delenv(imagenet.OWNER_INSTALL_ENV, raising=False)
    with patch_config_options({"server.address": "0.0.0.0"}):
        at = app_test()
    assert not at.exception and not at.button and no_network == []
    line = next(e for e in at.sidebar.expander if e.label == "ImageNet models on this server").markdown[0].value
    models = ui.loaded_models()
    has = ", ".join(models.label(name) for name in models if name in MIRRORED)
    assert has.count("ImageNet-1k") == 3
    assert line.startswith(f"This server has {has}. Its owner installs the others (ImageNet-1k g=1 (1x, osmr), "
                           f"ImageNet-1k g=3 (1x, osmr)) on the server"), line


def test_the_owner_switch_off_in_the_settings_file_turns_the_button_off_even_on_loopback(app_test, no_network,
                                                                                          nothing_fetched,
                                                                                          monkeypatch):
    monkeypatch.delenv(imagenet.OWNER_INSTALL_ENV, raising=False)
    with patch_config_options({"server.address": "127.0.0.1"}):
        at = app_test()
        assert [b.label for b in at.button] == [INSTALL_BUTTON]
        at.secrets["shufflenet_lens"] = {"owner_install": False}
        at.run()
    assert not at.exception and not at.button


def test_a_setting_that_is_not_on_or_off_keeps_the_button_off_and_says_so(app_test, no_network, nothing_fetched,
                                                                            monkeypatch):
    monkeypatch.setenv(imagenet.OWNER_INSTALL_ENV, "maybe")
    with patch_config_options({"server.address": "127.0.0.1"}):
        at = app_test()
    assert not at.exception and not at.button
    assert at.sidebar.warning[0].value.startswith("The server's owner_install setting is not understood: 'maybe' is "
                                                  "not on or off")


@pytest.mark.parametrize("configured_by", ["environment", "settings file"])
def test_with_the_owners_switch_on_the_button_installs_from_the_configured_mirror(app_test, no_network,
                                                                                   nothing_fetched, monkeypatch,
                                                                                   tmp_path, configured_by):
    for name, checkpoint in list(imagenet.CATALOGUE.items()):  # a publisher's URL is never reached either
        monkeypatch.setitem(imagenet.CATALOGUE, name, replace(checkpoint, url=f"http://127.0.0.1:9/{name}"))
    for variable in (imagenet.OWNER_INSTALL_ENV, imagenet.MIRROR_ENV):
        monkeypatch.delenv(variable, raising=False)
    settings = {"owner_install": True, "mirror": str(IMAGENET_MIRROR)}
    if configured_by == "environment":
        monkeypatch.setenv(imagenet.OWNER_INSTALL_ENV, "1")
        monkeypatch.setenv(imagenet.MIRROR_ENV, str(IMAGENET_MIRROR))
    with patch_config_options({"server.address": "0.0.0.0"}):
        at = app_test()
        if configured_by == "settings file":
            at.secrets["shufflenet_lens"] = settings
            at.run()
        assert [b.label for b in at.button] == [INSTALL_BUTTON]
        at.button[0].click().run()
    assert not at.exception
    assert at.sidebar.success[0].value == f"Installed {', '.join(MIRRORED)}."
    entries = weights.read_manifest(tmp_path / "fetched")
    assert {name: entry["provenance"]["fetched_from"] for name, entry in entries.items()} == {
        name: str(IMAGENET_MIRROR / imagenet.CATALOGUE[name].file_name) for name in MIRRORED}
    # What the mirror lacks, each publisher's place was asked for (here a closed loopback port), and said.
    assert sorted(no_network) == [f"http://127.0.0.1:9/{name}" for name in sorted(OSMR_PAIR)]
    assert all(f"{name}: not in the mirror" in at.sidebar.error[0].value for name in OSMR_PAIR)
    assert [at.selectbox(key=key).value for key in ui.MODEL_KEYS] == ["imagenet_official_g3_w0.5",
                                                                     "imagenet_official_g8_w0.5"]
