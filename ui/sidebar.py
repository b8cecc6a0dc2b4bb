"""The shared sidebar, drawn on every run before the page: the picture, the two models compared (with the
install of the ImageNet models) and the display mode. What the user picks here lives in `st.session_state`, so
it survives a switch of page; the models compared and projector mode are also kept in every page's URL."""

from __future__ import annotations

import streamlit as st

from shufflenet_viz import weights
from shufflenet_viz.imagenet import CATALOGUE, RECOMMENDED, download_size_text

from .display import dress_page_for_projector
from .models import (ANY_PAIR, PAIR_PRESETS, ModelShelf, available_presets, default_model_names, install_imagenet,
                     install_settings, loaded_models, model_pair, model_problems, pair_label)
from .picture import (UPLOAD_TYPES, current_image, on_camera, on_sample, on_upload, picture_problem, sample_label,
                      sample_names, start_with_default_sample)
from .screen import watch_screen_width
from .state import (CAMERA_KEY, CAMERA_ON_KEY, CHOSEN_KEY, FETCH_MESSAGE_KEY, INSTALL_KEY, MODEL_KEYS,
                    MODEL_PARAMS, PAIR_KEY, PROJECTOR_KEY, PROJECTOR_PARAM, SAMPLE_KEY, UPLOAD_KEY)
from .url import choice, keep_shared


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
    for kind, text in st.session_state.pop(FETCH_MESSAGE_KEY, []):
        getattr(st, kind)(text)
    if not missing:
        return
    settings = install_settings()
    installed = [models.label(name) for name in models if models.entry(name).get("dataset") == "ImageNet-1k"]
    title = "Get the ImageNet models" if settings.allowed else "ImageNet models on this server"
    with st.expander(title, expanded=not installed):
        if settings.problem:
            st.warning(settings.problem)
        if not settings.allowed:
            # A visitor: what the server has, and how its owner installs the rest; no control reaches the network.
            st.markdown(f"This server has {', '.join(installed) if installed else 'no ImageNet model'}. Its owner "
                        f"installs the others ({', '.join(CATALOGUE[name].label for name in missing)}) on the "
                        f"server with `python -m shufflenet_viz weights fetch imagenet --all`.")
            return
        st.markdown("Pretrained on ImageNet-1k by their authors, 224x224, 1000 classes: "
                    + ", ".join(CATALOGUE[name].label for name in missing)
                    + f". {download_size_text([CATALOGUE[n] for n in missing])}; "
                      f"{'from the mirror in the server settings, else ' if settings.mirror else ''}from the "
                      f"publishers, checked against the published hashes, then kept in `{weights.FETCHED_DIR}` "
                      f"(not in git).")
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
    watch_screen_width()
    dress_page_for_projector()
