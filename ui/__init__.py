"""The Streamlit layer shared by every page: the verified models, the sidebar, the current picture, the model pair.

Pages import this module and call `require_image()`, `model_pair()`, `loaded_models()` and the cached
per-image helpers; `app.py` calls `sidebar()` once per run, before the page runs. Everything a user picks
in the sidebar lives in `st.session_state`, so it survives a switch of page.
"""

from __future__ import annotations

import io
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

# Libraries that take a second or more to import, imported here once per server with the app's other modules
# instead of by the first visit of a page that needs them: Captum (it imports matplotlib.pyplot) and pandas
# (st.dataframe converts every table through pyarrow, which imports it).
import captum.attr  # noqa: F401
import pandas  # noqa: F401
import streamlit as st
from PIL import Image
from streamlit.runtime.pages_manager import PagesManager

from shufflenet_viz import weights
from shufflenet_viz.figures.common import projector_style
from shufflenet_viz.figures.classify import PAIR_COLOURS, confusion_figure, per_class_accuracy_figure, top_k_figure
from shufflenet_viz.images import ImageError, load_image
from shufflenet_viz.inference import Classification, classify
from shufflenet_viz.preprocess import what_model_sees
from shufflenet_viz.weights import LoadedModel

SAMPLES_DIR = Path(__file__).resolve().parents[1] / "samples"
SAMPLE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
DEFAULT_SAMPLE = "cat.jpg"  # a new session starts with a picture, so every page has something to show
UPLOAD_TYPES = ("jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff")
# The comparisons offered as one choice, first installed first: (label, left model, right model).
PAIR_PRESETS: tuple[tuple[str, str, str], ...] = (
    ("g=3 vs g=8, ImageNet-1k, official 0.5x", "imagenet_official_g3_w0.5", "imagenet_official_g8_w0.5"),
    ("g=1 vs g=3, CIFAR-10, trained here with one recipe", "cifar10_g1", "cifar10_g3"),
    *((f"g={g} trained with vs without shuffle, CIFAR-10 0.5x (experiment)", f"cifar10_x0.5_g{g}_s0",
       f"cifar10_x0.5_g{g}_noshuffle_s0") for g in (3, 8)),
    *((f"g=1 vs g=3, ImageNet-1k (osmr, {width})", f"imagenet_osmr_g1_w{width}", f"imagenet_osmr_g3_w{width}")
      for width in ("1", "0.5", "0.25")),
)
ANY_PAIR = "Any two models"
THUMBNAIL_SIDE = 480  # the sidebar shows at most ~300 CSS px; encoded once per picture, not on every run
TOP_K = 5
SEEN_SIDE = 256  # "what the model sees" is blown up to about this many pixels, nearest neighbour
CARD_MAX_CLASSES = 20  # beyond this a per-class chart or confusion matrix is unreadable (ImageNet: 1000)

# Session-state keys (widgets and values), all here so that no page invents its own spelling.
IMAGE_KEY = "lens_image"
ERROR_KEY = "lens_image_error"
UPLOAD_KEY = "lens_upload"
CAMERA_ON_KEY = "lens_camera_on"
CAMERA_KEY = "lens_camera"
SAMPLE_KEY = "lens_sample"
MODEL_KEYS = ("lens_model_left", "lens_model_right")
CHOSEN_KEY = "lens_models_chosen"  # (left, right) as last picked, apart from the widgets' own state
SIDES = ("left", "right")  # the two models compared, as URL params name them: left_model, right_page, ...
MODEL_PARAMS = tuple(f"{side}_model" for side in SIDES)  # in every page's URL: a bookmark reopens the pair
PAIR_KEY = "lens_pair"
MIRROR_KEY = "lens_mirror"
FETCH_MESSAGE_KEY = "lens_fetch_message"
INSTALL_KEY = "lens_install_imagenet"


@dataclass(frozen=True)
class CurrentImage:
    """The picture every page works on: upright RGB, the sha256 of its file, a name and the loader's notes."""

    image: Image.Image
    sha256: str
    name: str
    notes: tuple[str, ...]
    source: str  # "upload", "camera" or "sample"
    thumbnail_jpeg: bytes


# --- the frame ----------------------------------------------------------------------------------------


def ensure_shell() -> None:
    """Make sure this page runs inside app.py (its sidebar and page list); pages call it first.

    A folder named `pages/` beside app.py starts Streamlit in its old folder mode, which lasts until the first
    `st.navigation` call of the process. So on a fresh server, a first request straight to a page's URL (a
    bookmark of /flops, say) would run that page file alone. Leaving that mode, as `st.navigation` itself does,
    and rerunning makes app.py serve the same page (same URL, same page hash) with its sidebar.
    """
    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


# --- models ---------------------------------------------------------------------------------------------

@st.cache_resource(show_spinner="Verifying the models...")
def _load_all(weights_dirs: tuple[str, ...]) -> tuple[dict[str, weights.VerifiedEntry], dict[str, str]]:
    # Once per process and set of folders: every file's sha256 is checked here; a model is unpickled and built
    # on its first use (`_built`), so that a server with a dozen models answers its first visitor at once.
    verified, problems = {}, {}
    for folder in weights_dirs:
        more, more_problems = weights.verify_all(Path(folder))
        verified.update({name: item for name, item in more.items() if name not in verified})
        problems.update({name: problem for name, problem in more_problems.items() if name not in verified})
    return verified, problems


# Bounded: 64 models, more than a server holds; each is frozen and shared read-only by all sessions.
@st.cache_resource(max_entries=64, show_spinner="Loading the model...")
def _built(name: str, folder: str) -> LoadedModel:
    return weights.load_model(name, Path(folder))


class ModelShelf(Mapping):
    """The verified models by name, each built on its first use; names, labels and manifest entries are
    known without building anything."""

    def __init__(self, verified: dict[str, weights.VerifiedEntry]):
        self._verified = verified

    def __getitem__(self, name: str) -> LoadedModel:
        item = self._verified[name]
        return _built(name, str(item.folder))

    def __contains__(self, name) -> bool:  # without building the model
        return name in self._verified

    def __iter__(self):
        return iter(self._verified)

    def __len__(self) -> int:
        return len(self._verified)

    def label(self, name: str) -> str:
        return self._verified[name].label

    def entry(self, name: str) -> dict:
        return self._verified[name].entry


def _model_dirs() -> tuple[str, ...]:
    return tuple(str(folder) for folder in weights.model_dirs())


def loaded_models() -> ModelShelf:
    """Every verified model by name, shipped then fetched (the one cached loader; refused models are absent)."""
    return ModelShelf(_load_all(_model_dirs())[0])


def model_problems() -> dict[str, str]:
    """Why each model of the manifests that is not loaded was missing or refused, by name."""
    return _load_all(_model_dirs())[1]


def available_presets(names) -> list[tuple[str, str, str]]:
    """The comparison presets whose two models are both loaded."""
    return [preset for preset in PAIR_PRESETS if preset[1] in names and preset[2] in names]


def _default_model_names(names: list[str]) -> list[str]:
    """The default left and right models: the first installed preset (ImageNet official pair, else the
    CIFAR-10 g=1 / g=3 pair), else the first two models."""
    presets = available_presets(names)
    if presets:
        return list(presets[0][1:])
    return [names[0], names[min(1, len(names) - 1)]]


def model_pair() -> tuple[LoadedModel, LoadedModel]:
    """The two models the user compares (left, right); stops the page with a message when none is loaded."""
    models = loaded_models()
    if not models:
        st.error("No model could be loaded, so this page has nothing to run. The sidebar says why; restore the "
                 "files in `weights/` (or retrain with the command it names) and reload the page.")
        st.stop()
    names = list(models)
    defaults = _default_model_names(names)
    picked = [st.session_state.get(key) for key in MODEL_KEYS]
    left, right = (name if name in models else default for name, default in zip(picked, defaults))
    try:
        return models[left], models[right]
    except weights.WeightsError as error:  # its file passed the checksum but does not build
        st.error(f"{error} Pick another model in the sidebar.")
        st.stop()


# --- the picture ----------------------------------------------------------------------------------------

def current_image() -> CurrentImage | None:
    """The picture chosen in the sidebar, or None before any picture could be loaded."""
    return st.session_state.get(IMAGE_KEY)


def require_image() -> CurrentImage:
    """The current picture; without one, tells the user how to choose one and stops the page."""
    current = current_image()
    if current is None:
        st.info("Choose a picture in the sidebar: upload a photo, take one with the camera, or pick a sample.")
        st.stop()
    return current


def _thumbnail(image: Image.Image) -> bytes:
    small = image.copy()
    small.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
    buffer = io.BytesIO()
    small.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def _use_file(data: bytes, name: str, source: str) -> bool:
    """Make these bytes the current picture; on a refusal keep the previous one and remember the message."""
    try:
        loaded = load_image(data, name)
    except ImageError as error:
        st.session_state[ERROR_KEY] = str(error)
        return False
    st.session_state[IMAGE_KEY] = CurrentImage(loaded.image, loaded.sha256, name, tuple(loaded.notes), source,
                                               _thumbnail(loaded.image))
    st.session_state.pop(ERROR_KEY, None)
    return True


def _on_upload() -> None:
    uploaded = st.session_state.get(UPLOAD_KEY)
    if uploaded is None:  # the user removed the file: the picture stays, a refusal message goes
        st.session_state.pop(ERROR_KEY, None)
        return
    if _use_file(uploaded.getvalue(), uploaded.name, "upload"):
        st.session_state[SAMPLE_KEY] = None  # the sample picker no longer names the current picture


def _on_camera() -> None:
    photo = st.session_state.get(CAMERA_KEY)
    if photo is None:
        return
    if _use_file(photo.getvalue(), "camera photo", "camera"):
        st.session_state[SAMPLE_KEY] = None


def _on_sample() -> None:
    name = st.session_state.get(SAMPLE_KEY)
    if name is None:
        return
    path = SAMPLES_DIR / name
    try:
        data = path.read_bytes()
    except OSError as error:
        st.session_state[ERROR_KEY] = f"The sample {name} cannot be read ({error.strerror or error}); pick another."
        return
    _use_file(data, name, "sample")


def sample_names() -> list[str]:
    """File names of the sample pictures, sorted."""
    if not SAMPLES_DIR.is_dir():
        return []
    return sorted(p.name for p in SAMPLES_DIR.iterdir() if p.suffix.lower() in SAMPLE_SUFFIXES)


def _sample_label(name: str) -> str:
    return Path(name).stem.replace("_", " ")


def _image_inputs() -> None:
    samples = sample_names()
    if IMAGE_KEY not in st.session_state and ERROR_KEY not in st.session_state and DEFAULT_SAMPLE in samples:
        st.session_state[SAMPLE_KEY] = DEFAULT_SAMPLE
        _on_sample()

    st.header("Picture")
    st.file_uploader("Upload a photo", type=list(UPLOAD_TYPES), key=UPLOAD_KEY, on_change=_on_upload,
                     help="JPEG, PNG, WebP, BMP, GIF or TIFF. The picture stays while you switch pages.")
    if st.toggle("Use the camera", key=CAMERA_ON_KEY, help="Asks the browser for the camera only when on."):
        st.camera_input("Take a photo", key=CAMERA_KEY, on_change=_on_camera)
    st.selectbox("Or pick a sample", samples, index=None, key=SAMPLE_KEY, on_change=_on_sample,
                 format_func=_sample_label, placeholder="Choose a sample picture")

    error = st.session_state.get(ERROR_KEY)
    if error:
        st.error(error)
    current = current_image()
    if current is None:
        st.info("No picture yet: upload one, take one, or pick a sample.")
        return
    st.image(current.thumbnail_jpeg, caption=f"{current.name} ({current.image.width}x{current.image.height})",
             output_format="JPEG")
    for note in current.notes:
        st.info(note)


def _pair_label(left: str, right: str) -> str:
    for label, preset_left, preset_right in PAIR_PRESETS:
        if (left, right) == (preset_left, preset_right):
            return label
    return ANY_PAIR


def _on_pair() -> None:
    for label, left, right in PAIR_PRESETS:
        if label == st.session_state.get(PAIR_KEY):
            st.session_state[MODEL_KEYS[0]], st.session_state[MODEL_KEYS[1]] = left, right
            st.session_state[CHOSEN_KEY] = (left, right)


def _on_model() -> None:
    st.session_state[CHOSEN_KEY] = tuple(st.session_state.get(key) for key in MODEL_KEYS)
    st.session_state[PAIR_KEY] = _pair_label(*st.session_state[CHOSEN_KEY])


def _install_imagenet(missing: list[str]) -> None:
    """Fetch the missing recommended ImageNet models with a progress bar; the message stays for the next run."""
    from shufflenet_viz.imagenet import CATALOGUE, fetch_imagenet

    mirror = (st.session_state.get(MIRROR_KEY) or "").strip() or None
    bar = st.progress(0.0, text="Starting the download...")
    installed, failures = [], []
    for index, name in enumerate(missing):
        checkpoint = CATALOGUE[name]

        def progress(done: int, total: int | None, index=index, checkpoint=checkpoint) -> None:
            share = done / total if total else 0.0
            bar.progress(min(1.0, (index + share) / len(missing)),
                         text=f"{checkpoint.label}: {done / 1e6:.1f} MB" + (f" of {total / 1e6:.1f}" if total else ""))

        try:
            installed.append(fetch_imagenet(checkpoint, mirror=mirror, progress=progress))
        except weights.WeightsError as error:
            failures.append(str(error))
    bar.empty()
    if failures:
        st.error(" ".join(failures) + " On the server, `python -m shufflenet_viz weights fetch imagenet --all "
                 "--mirror DIR` installs them from a folder (or URL) holding the published files; "
                 "SHUFFLENET_LENS_MIRROR sets the mirror for this button too.")
    if installed:
        st.session_state[FETCH_MESSAGE_KEY] = ("success", f"Installed {', '.join(installed)}.")
        _load_all.clear()  # every session lists the new models on its next run; loaded models stay valid
        st.session_state.pop(PAIR_KEY, None)
        st.session_state.pop(CHOSEN_KEY, None)
        for key in MODEL_KEYS:
            st.session_state.pop(key, None)
        st.rerun()


def _imagenet_inputs(models: ModelShelf) -> None:
    from shufflenet_viz.imagenet import CATALOGUE, RECOMMENDED

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
                    + f". About {sum(CATALOGUE[n].max_bytes for n in missing) / 1e6:.0f} MB at most; checked "
                      f"against the published hashes, then kept in `{weights.FETCHED_DIR}` (not in git).")
        st.text_input("Mirror (optional)", key=MIRROR_KEY, placeholder="a folder or http(s) URL",
                      help="Tried before the publishers' servers: a folder or URL holding the published files "
                           "under their names (e.g. megvii_shufflenetv1_g3_0.5x.pth.tar).")
        # A flag set by the click rather than the button's value: a run that Streamlit restarts before it
        # reaches the sidebar (see ensure_shell) would otherwise lose the click.
        st.button("Download and install", icon=":material/download:", on_click=st.session_state.__setitem__,
                  args=(INSTALL_KEY, True))
        if st.session_state.pop(INSTALL_KEY, False):
            _install_imagenet(missing)


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
    from ui import url as ui_url  # it builds on this module

    defaults = _default_model_names(list(models))
    for key, param, kept, default in zip(MODEL_KEYS, MODEL_PARAMS, st.session_state.get(CHOSEN_KEY) or defaults,
                                         defaults):
        # A run that ends before the sidebar is drawn (a rerun after an upload, a page switch) can leave the
        # browser without these widgets' values, and Streamlit would fall back to the first model: the pair as
        # last picked is kept apart from the widgets and given back to them.
        if kept in models:
            st.session_state[key] = kept
        ui_url.choice(key, param, names, default, models.label)
    st.session_state[CHOSEN_KEY] = tuple(st.session_state[key] for key in MODEL_KEYS)
    presets = [label for label, *_ in available_presets(models)]
    current = _pair_label(*(st.session_state[key] for key in MODEL_KEYS))
    st.session_state[PAIR_KEY] = current if current in presets else ANY_PAIR
    st.selectbox("Comparison", [*presets, ANY_PAIR], key=PAIR_KEY, on_change=_on_pair,
                 help="The comparisons the app is built for, or any two models you pick below.")
    for key, label in zip(MODEL_KEYS, ("Left model", "Right model")):
        st.selectbox(label, names, key=key, on_change=_on_model, format_func=models.label)
    left, right = model_pair()
    if left.name == right.name:
        st.caption("Both sides show the same model; pick another for a comparison.")
    _imagenet_inputs(models)


def sidebar() -> None:
    """The shared sidebar: picture (upload, camera, sample) and the two models compared."""
    with st.sidebar:
        _image_inputs()
        _model_inputs()
        _display_inputs()


# --- projector mode -------------------------------------------------------------------------------------

PROJECTOR_KEY = "lens_projector"
PROJECTOR_PARAM = "projector"  # ?projector=1 in a bookmark opens the app in projector mode
PROJECTOR_ROOT_FONT_PX = 20  # the page's text in projector mode (Streamlit's default is 16)
_PROJECTOR_COPIES: dict[int, tuple[weakref.ref, object]] = {}
_PROJECTOR_COPIES_MAX = 256  # styled copies of cached figures, a few hundred KB at most each


def projector_mode() -> bool:
    """Whether figures are drawn for a projector (the sidebar's toggle, or ?projector=1 in the URL)."""
    if PROJECTOR_KEY not in st.session_state:
        return st.query_params.get(PROJECTOR_PARAM) == "1"
    return bool(st.session_state[PROJECTOR_KEY])


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


def for_screen(figure):
    """The figure as the current display mode draws it: itself, or in projector mode a styled copy (made once
    per cached figure and kept while that figure lives; the cached figure itself is never changed)."""
    if figure is None or not projector_mode():
        return figure
    remembered = _PROJECTOR_COPIES.get(id(figure))
    if remembered is not None and remembered[0]() is figure:
        return remembered[1]
    styled = projector_style(figure)
    if len(_PROJECTOR_COPIES) >= _PROJECTOR_COPIES_MAX:
        _PROJECTOR_COPIES.pop(next(iter(_PROJECTOR_COPIES)))
    _PROJECTOR_COPIES[id(figure)] = (weakref.ref(figure), styled)
    return styled


# --- cached results -------------------------------------------------------------------------------------
# Cached functions live here, in a module imported once, rather than in the page scripts: Streamlit re-executes
# a page on every run, and re-decorating a cached function costs a source lookup each time.

# Bounded: 64 entries (32 pictures x 2 models) for all sessions together; one entry is a Classification of at
# most 1000 probabilities (8 KB), so the whole cache stays under 1 MB. Least recently used entries go first.
@st.cache_data(max_entries=64, show_spinner=False)
def classify_cached(model_name: str, image_sha256: str, _image: Image.Image) -> Classification:
    """`inference.classify` for a loaded model and the picture with this sha256, computed once per pair."""
    return classify(loaded_models()[model_name], _image)


# Bounded: 64 entries (32 pictures x 2 models), each a PNG of at most 256x256 pixels (~100 KB): < 7 MB.
@st.cache_data(max_entries=64, show_spinner=False)
def seen_png_cached(model_name: str, image_sha256: str, _image: Image.Image) -> bytes:
    """The model's input picture (before normalisation) enlarged with square pixels, as PNG bytes."""
    loaded = loaded_models()[model_name]
    pixels = Image.fromarray(what_model_sees(_image, loaded.preprocessing))
    factor = max(1, SEEN_SIDE // pixels.width)
    buffer = io.BytesIO()
    pixels.resize((pixels.width * factor, pixels.height * factor), Image.Resampling.NEAREST).save(buffer, "PNG")
    return buffer.getvalue()


# Bounded: 64 figures (32 pictures x 2 sides), a few KB each. Built once per picture and model, then only read:
# rebuilding a plotly figure costs more than the forward pass it shows.
@st.cache_resource(max_entries=64, show_spinner=False)
def _top_k_figure(model_name: str, image_sha256: str, side: int, _image: Image.Image):
    answer = classify_cached(model_name, image_sha256, _image)
    return top_k_figure(answer, TOP_K, PAIR_COLOURS[side], f"Top {TOP_K}")


def top_k_figure_cached(model_name: str, image_sha256: str, side: int, _image: Image.Image):
    """The top-k figure of this model for the picture with this sha256, in the colour of its side, drawn for
    the current display mode."""
    return for_screen(_top_k_figure(model_name, image_sha256, side, _image))


# Bounded: 16 models x 2 sides; the figures depend on the manifest alone and are only read afterwards.
@st.cache_resource(max_entries=32, show_spinner=False)
def _model_card_figures(model_name: str, side: int):
    loaded = loaded_models()[model_name]
    metrics = loaded.entry.get("metrics", {})
    per_class, matrix = metrics.get("per_class_accuracy"), metrics.get("confusion_matrix")
    small = len(loaded.classes) <= CARD_MAX_CLASSES
    per_class_figure = per_class_accuracy_figure(per_class, PAIR_COLOURS[side], "Accuracy per class") \
        if per_class and small else None
    matrix_figure = confusion_figure(matrix, loaded.classes, "Confusion matrix (test set)") \
        if matrix and small else None
    return per_class_figure, matrix_figure


def model_card_figures_cached(model_name: str, side: int):
    """(per-class accuracy figure or None, confusion matrix figure or None) from the model's manifest metrics,
    drawn for the current display mode."""
    return tuple(for_screen(figure) for figure in _model_card_figures(model_name, side))
