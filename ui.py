"""The Streamlit layer shared by every page: the verified models, the sidebar, the current picture, the model pair.

Pages import this module and call `require_image()`, `model_pair()`, `loaded_models()` and the cached
per-image helpers; `app.py` calls `sidebar()` once per run, before the page runs. Everything a user picks
in the sidebar lives in `st.session_state`, so it survives a switch of page.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import streamlit as st
from PIL import Image
from streamlit.runtime.pages_manager import PagesManager

from shufflenet_viz import weights
from shufflenet_viz.figures.classify import PAIR_COLOURS, confusion_figure, per_class_accuracy_figure, top_k_figure
from shufflenet_viz.figures.flops import params_figure, share_figure, unit_cost_figure
from shufflenet_viz.flops import FlopReport, flop_report, time_units
from shufflenet_viz.images import ImageError, load_image
from shufflenet_viz.inference import Classification, classify
from shufflenet_viz.model import build_model
from shufflenet_viz.preprocess import what_model_sees
from shufflenet_viz.weights import LoadedModel

SAMPLES_DIR = Path(__file__).resolve().parent / "samples"
SAMPLE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
DEFAULT_SAMPLE = "cat.jpg"  # a new session starts with a picture, so every page has something to show
UPLOAD_TYPES = ("jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff")
DEFAULT_PAIR = ("cifar10_g1", "cifar10_g3")
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

@st.cache_resource(show_spinner="Loading and verifying the models...")
def _load_all(weights_dir: str) -> tuple[dict[str, LoadedModel], dict[str, str]]:
    # Once per process and weights folder: the models are frozen and shared read-only by all sessions.
    return weights.load_all(Path(weights_dir))


def loaded_models() -> dict[str, LoadedModel]:
    """Every verified model by name (the one cached loader; models that failed verification are absent)."""
    return _load_all(str(weights.WEIGHTS_DIR))[0]


def model_problems() -> dict[str, str]:
    """Why each model of the manifest that is not loaded was missing or refused, by name."""
    return _load_all(str(weights.WEIGHTS_DIR))[1]


def _default_model_names(names: list[str]) -> list[str]:
    """The default left and right models: the g=1 / g=3 CIFAR-10 pair when present, else the first ones."""
    chosen = []
    for position, preferred in enumerate(DEFAULT_PAIR):
        if preferred in names:
            chosen.append(preferred)
        else:
            chosen.append(names[min(position, len(names) - 1)])
    return chosen


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
    return models[left], models[right]


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


def _model_inputs() -> None:
    st.header("Models compared")
    models, problems = loaded_models(), model_problems()
    if problems:
        with st.expander(f"Not loaded: {', '.join(problems)}", expanded=not models):
            for name, message in problems.items():
                st.warning(f"**{name}**: {message}")
    if not models:
        st.error("No verified model is available; the pages that run a model will say so.")
        return
    names = list(models)
    for key, label, default in zip(MODEL_KEYS, ("Left model", "Right model"), _default_model_names(names)):
        st.selectbox(label, names, index=names.index(default), key=key, format_func=lambda n: models[n].label)
    left, right = model_pair()
    if left.name == right.name:
        st.caption("Both sides show the same model; pick another for a comparison.")


def sidebar() -> None:
    """The shared sidebar: picture (upload, camera, sample) and the two models compared."""
    with st.sidebar:
        _image_inputs()
        _model_inputs()


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
def top_k_figure_cached(model_name: str, image_sha256: str, side: int, _image: Image.Image):
    """The top-k figure of this model for the picture with this sha256, in the colour of its side."""
    answer = classify_cached(model_name, image_sha256, _image)
    return top_k_figure(answer, TOP_K, PAIR_COLOURS[side], f"Top {TOP_K}")


# Bounded: 16 models x 2 sides; the figures depend on the manifest alone and are only read afterwards.
@st.cache_resource(max_entries=32, show_spinner=False)
def model_card_figures_cached(model_name: str, side: int):
    """(per-class accuracy figure or None, confusion matrix figure or None) from the model's manifest metrics."""
    loaded = loaded_models()[model_name]
    metrics = loaded.entry.get("metrics", {})
    per_class, matrix = metrics.get("per_class_accuracy"), metrics.get("confusion_matrix")
    small = len(loaded.classes) <= CARD_MAX_CLASSES
    per_class_figure = per_class_accuracy_figure(per_class, PAIR_COLOURS[side], "Accuracy per class") \
        if per_class and small else None
    matrix_figure = confusion_figure(matrix, loaded.classes, "Confusion matrix (test set)") \
        if matrix and small else None
    return per_class_figure, matrix_figure


# Bounded: 64 reports (5 groups x 5 widths x 2 settings = 50 exist); each is a few hundred small records.
@st.cache_data(max_entries=64, show_spinner=False)
def flop_report_cached(groups: int, width: float, size: int, num_classes: int) -> FlopReport:
    """`flop_report`, once per architecture."""
    return flop_report(groups, width, size, num_classes)


# Bounded: 20 timings of 18 numbers each. Timing costs about a second, so it is done once per architecture
# and process; the numbers describe this server at that moment (other sessions share its CPU).
@st.cache_data(max_entries=20, show_spinner="Timing every unit on this server's CPU...")
def unit_seconds_cached(groups: int, width: float, size: int, num_classes: int) -> dict[str, float]:
    """`time_units` on a freshly built model of this architecture (timing does not depend on the weights)."""
    model = build_model(groups, width, num_classes).eval()
    return time_units(model, size)


# The FLOPs page's figures, keyed by everything they show (timings included), built once and only read afterwards.
# Bounded: 64 + 32 + 64 figures of 18 bars each, a few tens of KB apiece.
@st.cache_resource(max_entries=64, show_spinner=False)
def unit_cost_figure_cached(groups: int, width: float, size: int, num_classes: int, include_other_ops: bool,
                            y_max: float, title: str):
    """`unit_cost_figure` of one architecture."""
    report = flop_report_cached(groups, width, size, num_classes)
    return unit_cost_figure(report, include_other_ops, title, y_max)


@st.cache_resource(max_entries=32, show_spinner=False)
def params_figure_cached(configs: tuple[tuple[int, float], ...], size: int, num_classes: int,
                         names: tuple[str, ...]):
    """`params_figure` of the configurations (groups, width), coloured by side."""
    reports = [flop_report_cached(groups, width, size, num_classes) for groups, width in configs]
    return params_figure(reports, names, PAIR_COLOURS)


@st.cache_resource(max_entries=64, show_spinner=False)
def share_figure_cached(groups: int, width: float, size: int, num_classes: int,
                        seconds: tuple[tuple[str, float], ...], title: str):
    """`share_figure` of one architecture with these measured seconds per unit."""
    return share_figure(flop_report_cached(groups, width, size, num_classes), dict(seconds), title)
