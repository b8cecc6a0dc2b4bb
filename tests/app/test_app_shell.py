"""The shell: the shared sidebar's picture (upload, camera, sample) across pages, refusals, and the model pair."""

import hashlib
import shutil

import pytest

import ui
from conftest import APP_TIMEOUT_S, CIFAR_PAIR, ROOT, app_pages
from shufflenet_viz import weights
from shufflenet_viz.images import ImageError, load_image


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sidebar_caption(at) -> str:
    captions = [caption for image in at.sidebar.get("image") for caption in image.captions]
    assert len(captions) == 1, captions
    return captions[0]


def test_first_load_shows_the_default_sample_and_the_default_pair(app_test, cifar_pair):
    at = app_test()
    assert not at.exception
    current = at.session_state[ui.IMAGE_KEY]
    assert current.name == ui.DEFAULT_SAMPLE and current.source == "sample"
    assert current.sha256 == sha256((ui.SAMPLES_DIR / ui.DEFAULT_SAMPLE).read_bytes())
    assert at.selectbox(key=ui.SAMPLE_KEY).value == ui.DEFAULT_SAMPLE
    assert [at.selectbox(key=key).value for key in ui.MODEL_KEYS] == [m.name for m in cifar_pair]
    assert sidebar_caption(at).startswith(ui.DEFAULT_SAMPLE)
    # The camera is not requested until the user asks for it.
    assert len(at.camera_input) == 0


@pytest.mark.parametrize("page_file, title", app_pages()[1:])
def test_a_first_request_straight_to_a_page_gets_the_shell(page_file, title):
    """A fresh process (AppTest starts each run as one) whose first request is a page's own URL: the `pages/`
    folder puts Streamlit in its old folder mode, which would run the page file alone, without the sidebar."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=APP_TIMEOUT_S)
    at.switch_page(page_file).run()
    assert not at.exception
    assert at.sidebar.get("file_uploader"), "the shared sidebar is missing"
    assert [box.value for box in at.selectbox if box.key in ui.MODEL_KEYS] == list(CIFAR_PAIR)
    assert at.session_state[ui.IMAGE_KEY].name == ui.DEFAULT_SAMPLE
    assert at.title and at.title[0].value.startswith(title.split()[0]), [t.value for t in at.title]


def test_the_models_compared_are_in_every_pages_url(cifar_pair):
    """A bookmark reopens the same comparison: a link's left_model/right_model pick the sidebar's models on any
    page, a model that is not installed gets one warning line and the default, and a pick is written back."""
    from streamlit.testing.v1 import AppTest

    pick = ["cifar10_x0.5_g3_s0", "cifar10_x0.5_g3_noshuffle_s0"]
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=APP_TIMEOUT_S)
    at.query_params.update(dict(zip(ui.MODEL_PARAMS, pick)))
    at.switch_page("pages/flops.py").run()
    assert not at.exception and not at.warning
    assert [at.selectbox(key=key).value for key in ui.MODEL_KEYS] == pick
    assert [at.query_params[param] for param in ui.MODEL_PARAMS] == pick
    assert at.selectbox(key=ui.PAIR_KEY).value.startswith("g=3 trained with vs without shuffle")

    at.selectbox(key=ui.MODEL_KEYS[1]).set_value("cifar10_g1").run()
    assert [at.query_params[param] for param in ui.MODEL_PARAMS] == [pick[0], "cifar10_g1"]

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=APP_TIMEOUT_S)
    at.query_params.update({"left_model": "imagenet_nonsense"})
    at.switch_page("pages/unit.py").run()
    assert not at.exception
    warned = [w.value for w in at.warning if "left_model" in w.value]
    assert len(warned) == 1 and warned[0].startswith("The link asks for left_model 'imagenet_nonsense', which is "
                                                     "not one of "), warned
    assert f"; showing {CIFAR_PAIR[0]} (" in warned[0] and warned[0].endswith(")."), warned
    assert [at.selectbox(key=key).value for key in ui.MODEL_KEYS] == list(CIFAR_PAIR)
    assert at.query_params["left_model"] == CIFAR_PAIR[0]


def test_the_url_describes_the_page_shown_with_the_models_compared_and_projector_mode(cifar_pair):
    """The sidebar writes the models compared and projector mode into every page's URL; a switch of page takes
    the previous page's own settings (the lesson's step) out of it, and projector mode switched off leaves it."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=APP_TIMEOUT_S)
    at.query_params.update({"step": "2", "projector": "1"})
    at.switch_page("pages/lesson.py").run()
    assert not at.exception and not at.warning
    assert at.session_state[ui.PROJECTOR_KEY] is True
    assert (at.query_params["step"], at.query_params[ui.PROJECTOR_PARAM]) == ("2", "1")
    assert [at.query_params[param] for param in ui.MODEL_PARAMS] == list(CIFAR_PAIR)

    at.switch_page("pages/flops.py").run()
    assert not at.exception
    assert "step" not in at.query_params
    assert [at.query_params[param] for param in ui.MODEL_PARAMS] == list(CIFAR_PAIR)
    assert at.query_params[ui.PROJECTOR_PARAM] == "1"

    at.toggle(key=ui.PROJECTOR_KEY).set_value(False).run()
    assert not at.exception
    assert ui.PROJECTOR_PARAM not in at.query_params
    assert [at.query_params[param] for param in ui.MODEL_PARAMS] == list(CIFAR_PAIR)


def test_uploaded_picture_survives_page_switches(app_test, upload_picture, sample_image_path):
    data = sample_image_path.read_bytes()
    at = upload_picture(app_test(), "my dog.jpg", data, "image/jpeg")
    assert not at.exception and not at.error
    assert at.session_state[ui.IMAGE_KEY].sha256 == sha256(data)
    assert at.selectbox(key=ui.SAMPLE_KEY).value is None  # the picker no longer names the current picture
    for page in ("pages/flops.py", "pages/classify.py"):
        at.switch_page(page).run()
        assert not at.exception
        assert at.session_state[ui.IMAGE_KEY].sha256 == sha256(data)
        assert at.session_state[ui.IMAGE_KEY].name == "my dog.jpg"
        assert sidebar_caption(at).startswith("my dog.jpg")


def test_a_new_upload_replaces_the_previous_one(app_test, upload_picture, sample_image_paths):
    at = upload_picture(app_test(), "dog.jpg", sample_image_paths["dog.jpg"].read_bytes(), "image/jpeg")
    horse = sample_image_paths["horse.jpg"].read_bytes()
    at = upload_picture(at, "horse.jpg", horse, "image/jpeg")
    assert at.session_state[ui.IMAGE_KEY].sha256 == sha256(horse)
    assert sidebar_caption(at).startswith("horse.jpg")


def test_a_refused_upload_shows_the_loaders_message_and_keeps_the_previous_picture(
        app_test, upload_picture, sample_image_path):
    good = sample_image_path.read_bytes()
    at = upload_picture(app_test(), "dog.jpg", good, "image/jpeg")
    bad = b"<!DOCTYPE html><html><body>not a picture</body></html>"
    with pytest.raises(ImageError) as refusal:
        load_image(bad, "page.png")
    at = upload_picture(at, "page.png", bad, "image/png")
    assert not at.exception
    assert [error.value for error in at.sidebar.error] == [str(refusal.value)]
    assert "HTML" in str(refusal.value)
    assert at.session_state[ui.IMAGE_KEY].sha256 == sha256(good)
    assert sidebar_caption(at).startswith("dog.jpg")
    # The page still shows the previous picture's results, without a traceback.
    assert at.get("plotly_chart")
    # A good file after the refusal clears the message.
    at = upload_picture(at, "dog again.jpg", good, "image/jpeg")
    assert not at.sidebar.error
    assert at.session_state[ui.IMAGE_KEY].name == "dog again.jpg"


def test_loader_notes_are_shown_in_the_sidebar(app_test, upload_picture, sample_image_path):
    from PIL import Image
    import io

    tiny = io.BytesIO()
    Image.open(sample_image_path).resize((24, 16)).save(tiny, "PNG")
    expected_notes = load_image(tiny.getvalue(), "tiny.png").notes
    assert expected_notes, "a 24x16 picture should come with a note"
    at = upload_picture(app_test(), "tiny.png", tiny.getvalue(), "image/png")
    infos = [info.value for info in at.sidebar.info]
    assert all(note in infos for note in expected_notes)


def test_picking_a_sample_and_taking_a_photo(app_test, sample_image_paths):
    at = app_test()
    at.selectbox(key=ui.SAMPLE_KEY).set_value("bird.jpg").run()
    assert at.session_state[ui.IMAGE_KEY].sha256 == sha256(sample_image_paths["bird.jpg"].read_bytes())
    at.toggle(key=ui.CAMERA_ON_KEY).set_value(True).run()
    photo = sample_image_paths["horse.jpg"].read_bytes()
    at.camera_input(key=ui.CAMERA_KEY).set_value(("photo.jpg", photo, "image/jpeg")).run()
    assert not at.exception
    current = at.session_state[ui.IMAGE_KEY]
    assert current.source == "camera" and current.sha256 == sha256(photo)
    assert at.selectbox(key=ui.SAMPLE_KEY).value is None


def test_a_missing_model_is_named_in_the_sidebar_and_the_app_keeps_working(
        app_test, cifar_pair, tmp_path, monkeypatch):
    g1, g3 = cifar_pair
    shutil.copy(weights.WEIGHTS_DIR / "manifest.json", tmp_path / "manifest.json")
    shutil.copy(weights.WEIGHTS_DIR / g1.entry["file"], tmp_path / g1.entry["file"])  # g3's file is missing
    monkeypatch.setattr(weights, "WEIGHTS_DIR", tmp_path)
    at = app_test()
    assert not at.exception
    labels = [expander.label for expander in at.sidebar.expander]
    assert any(label.startswith("Not loaded:") and g3.name in label for label in labels), labels
    warnings = [warning.value for warning in at.sidebar.warning]
    assert any(g3.name in text and "is missing" in text for text in warnings), warnings
    # The remaining model fills both sides, and the landing page still classifies.
    assert [at.selectbox(key=key).value for key in ui.MODEL_KEYS] == [g1.name, g1.name]
    assert len(at.get("plotly_chart")) >= 2
