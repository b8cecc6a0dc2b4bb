"""The shared sidebar, drawn on every run before the page: the picture, the two models compared (with the
install of the ImageNet models) and the display mode. What the user picks here lives in `st.session_state`, so
it survives a switch of page; the models compared and projector mode are also kept in every page's URL."""

from __future__ import annotations

import streamlit as st

from shufflenet_viz import weights
from shufflenet_viz.imagenet import CATALOGUE, RECOMMENDED, download_size_text

from .models import (ANY_PAIR, PAIR_PRESETS, ModelShelf, available_presets, default_model_names, install_imagenet,
                     loaded_models, model_pair, model_problems, pair_label)
from .picture import (UPLOAD_TYPES, current_image, on_camera, on_sample, on_upload, picture_problem, sample_label,
                      sample_names, start_with_default_sample)
from .state import (CAMERA_KEY, CAMERA_ON_KEY, CHOSEN_KEY, FETCH_MESSAGE_KEY, INSTALL_KEY, MIRROR_KEY, MODEL_KEYS,
                    MODEL_PARAMS, PAIR_KEY, PROJECTOR_KEY, PROJECTOR_PARAM, SAMPLE_KEY, UPLOAD_KEY)
from .url import choice, keep_shared

PROJECTOR_ROOT_FONT_PX = 20  # the page's text in projector mode (Streamlit's default is 16)


def draw_sidebar(page: str) -> None:
    """The shared sidebar, before the page `page` (its path) runs: picture (upload, camera, sample), the two
    models compared and the display mode, the last two also written into the URL."""
    with st.sidebar:
        _picture_inputs()
        _model_inputs()
        _display_inputs()
    keep_shared(page)


def _picture_inputs() -> None:
    start_with_default_sample()
    st.header("Picture")
    st.file_uploader("Upload a photo", type=list(UPLOAD_TYPES), key=UPLOAD_KEY, on_change=on_upload,
                     help="JPEG, PNG, WebP, BMP, GIF or TIFF. The picture stays while you switch pages.")
    if st.toggle("Use the camera", key=CAMERA_ON_KEY, help="Asks the browser for the camera only when on."):
        st.camera_input("Take a photo", key=CAMERA_KEY, on_change=on_camera)
    st.selectbox("Or pick a sample", sample_names(), index=None, key=SAMPLE_KEY, on_change=on_sample,
                 format_func=sample_label, placeholder="Choose a sample picture")

    problem = picture_problem()
    if problem:
        st.error(problem)
    current = current_image()
    if current is None:
        st.info("No picture yet: upload one, take one, or pick a sample.")
        return
    st.image(current.thumbnail_jpeg, caption=f"{current.name} ({current.image.width}x{current.image.height})",
             output_format="JPEG")
    for note in current.notes:
        st.info(note)


def _on_pair() -> None:
    for label, left, right in PAIR_PRESETS:
        if label == st.session_state.get(PAIR_KEY):
            st.session_state[MODEL_KEYS[0]], st.session_state[MODEL_KEYS[1]] = left, right
            st.session_state[CHOSEN_KEY] = (left, right)


def _on_model() -> None:
    st.session_state[CHOSEN_KEY] = tuple(st.session_state.get(key) for key in MODEL_KEYS)
    st.session_state[PAIR_KEY] = pair_label(*st.session_state[CHOSEN_KEY])


def _model_inputs() -> None:
    st.header("Models compared")
    models, problems = loaded_models(), model_problems()
    if problems:
        with st.expander(f"Not loaded: {', '.join(problems)}", expanded=not models):
            for name, message in problems.items():
                st.warning(f"**{name}**: {message}")
    if not models:
        st.error("No verified model is available; the pages that run a model will say so.")
        _imagenet_inputs(models)
        return
    names = sorted(models, key=lambda n: (models.entry(n).get("dataset", ""), models.label(n)))
    defaults = default_model_names(list(models))
    for key, param, kept, default in zip(MODEL_KEYS, MODEL_PARAMS, st.session_state.get(CHOSEN_KEY) or defaults,
                                         defaults):
        # A run that ends before the sidebar is drawn (a rerun after an upload, a page switch) can leave the
        # browser without these widgets' values, and Streamlit would fall back to the first model: the pair as
        # last picked is kept apart from the widgets and given back to them.
        if kept in models:
            st.session_state[key] = kept
        choice(key, param, names, default, models.label)
    st.session_state[CHOSEN_KEY] = tuple(st.session_state[key] for key in MODEL_KEYS)
    presets = [label for label, *_ in available_presets(models)]
    current = pair_label(*(st.session_state[key] for key in MODEL_KEYS))
    st.session_state[PAIR_KEY] = current if current in presets else ANY_PAIR
    st.selectbox("Comparison", [*presets, ANY_PAIR], key=PAIR_KEY, on_change=_on_pair,
                 help="The comparisons the app is built for, or any two models you pick below.")
    for key, label in zip(MODEL_KEYS, ("Left model", "Right model")):
        st.selectbox(label, names, key=key, on_change=_on_model, format_func=models.label)
    left, right = model_pair()
    if left.name == right.name:
        st.caption("Both sides show the same model; pick another for a comparison.")
    _imagenet_inputs(models)


def _imagenet_inputs(models: ModelShelf) -> None:
    missing = [name for name in RECOMMENDED if name not in models]
    message = st.session_state.pop(FETCH_MESSAGE_KEY, None)
    if message:
        getattr(st, message[0])(message[1])
    if not missing:
        return
    with st.expander("Get the ImageNet models", expanded=not any(models.entry(n).get("dataset") == "ImageNet-1k"
                                                                  for n in models)):
        st.markdown("Pretrained on ImageNet-1k by their authors, 224x224, 1000 classes: "
                    + ", ".join(CATALOGUE[name].label for name in missing)
                    + f". {download_size_text([CATALOGUE[n] for n in missing])}; checked "
                      f"against the published hashes, then kept in `{weights.FETCHED_DIR}` (not in git).")
        st.text_input("Mirror (optional)", key=MIRROR_KEY, placeholder="a folder or http(s) URL",
                      help="Tried before the publishers' servers: a folder or URL holding the published files "
                           "under their names (e.g. megvii_shufflenetv1_g3_0.5x.pth.tar).")
        # A flag set by the click rather than the button's value: a run that Streamlit restarts before it
        # reaches the sidebar (see ensure_shell) would otherwise lose the click.
        st.button("Download and install", icon=":material/download:", on_click=st.session_state.__setitem__,
                  args=(INSTALL_KEY, True))
        if st.session_state.pop(INSTALL_KEY, False):
            install_imagenet(missing)


def _display_inputs() -> None:
    st.header("Display")
    if PROJECTOR_KEY not in st.session_state:
        st.session_state[PROJECTOR_KEY] = st.query_params.get(PROJECTOR_PARAM) == "1"
    st.toggle("Projector mode", key=PROJECTOR_KEY,
              help="Larger type, markers and lines, legible from the back of a room at 1280x720; the shuffle "
                   "animation starts with 12 channels.")
    if st.session_state[PROJECTOR_KEY]:
        # Streamlit sizes text in rem; its generous top padding would push a slide's figure off a 720 px screen.
        st.html(f"<style>html {{ font-size: {PROJECTOR_ROOT_FONT_PX}px; }} "
                f"[data-testid=stMainBlockContainer] {{ padding-top: 2.5rem; }}</style>")
