"""The picture every page works on: an upload, a camera photo or a sample, kept in the session across pages."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import streamlit as st
from PIL import Image

from shufflenet_viz.images import ImageError, load_image

from .state import CAMERA_KEY, ERROR_KEY, IMAGE_KEY, SAMPLE_KEY, UPLOAD_KEY

SAMPLES_DIR = Path(__file__).resolve().parents[1] / "samples"
SAMPLE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
DEFAULT_SAMPLE = "cat.jpg"  # a new session starts with a picture, so every page has something to show
UPLOAD_TYPES = ("jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff")
THUMBNAIL_SIDE = 480  # the sidebar shows at most ~300 CSS px; encoded once per picture, not on every run


@dataclass(frozen=True)
class CurrentImage:
    """The picture every page works on: upright RGB, the sha256 of its file, a name and the loader's notes."""

    image: Image.Image
    sha256: str
    name: str
    notes: tuple[str, ...]
    source: str  # "upload", "camera" or "sample"
    thumbnail_jpeg: bytes


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


def picture_problem() -> str | None:
    """Why the last picture the user chose was refused (the previous one stays), or None."""
    return st.session_state.get(ERROR_KEY)


def sample_names() -> list[str]:
    """File names of the sample pictures, sorted."""
    if not SAMPLES_DIR.is_dir():
        return []
    return sorted(p.name for p in SAMPLES_DIR.iterdir() if p.suffix.lower() in SAMPLE_SUFFIXES)


def sample_label(name: str) -> str:
    """A sample's name as the picker shows it: its file name without suffix, spaces for underscores."""
    return Path(name).stem.replace("_", " ")


def start_with_default_sample() -> None:
    """A session's first run: the default sample becomes the picture (unless the user already chose one)."""
    if IMAGE_KEY not in st.session_state and ERROR_KEY not in st.session_state \
            and DEFAULT_SAMPLE in sample_names():
        st.session_state[SAMPLE_KEY] = DEFAULT_SAMPLE
        on_sample()


def on_upload() -> None:
    """The uploader's callback: the uploaded file becomes the picture, or its refusal is remembered."""
    uploaded = st.session_state.get(UPLOAD_KEY)
    if uploaded is None:  # the user removed the file: the picture stays, a refusal message goes
        st.session_state.pop(ERROR_KEY, None)
        return
    if _use_file(uploaded.getvalue(), uploaded.name, "upload"):
        st.session_state[SAMPLE_KEY] = None  # the sample picker no longer names the current picture


def on_camera() -> None:
    """The camera's callback: the photo becomes the picture, or its refusal is remembered."""
    photo = st.session_state.get(CAMERA_KEY)
    if photo is None:
        return
    if _use_file(photo.getvalue(), "camera photo", "camera"):
        st.session_state[SAMPLE_KEY] = None


def on_sample() -> None:
    """The sample picker's callback: the chosen sample becomes the picture."""
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


def _thumbnail(image: Image.Image) -> bytes:
    small = image.copy()
    small.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
    buffer = io.BytesIO()
    small.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def _use_file(data: bytes, name: str, source: str) -> bool:
    # Makes these bytes the current picture; on a refusal keeps the previous one and remembers the message.
    try:
        loaded = load_image(data, name)
    except ImageError as error:
        st.session_state[ERROR_KEY] = str(error)
        return False
    st.session_state[IMAGE_KEY] = CurrentImage(loaded.image, loaded.sha256, name, tuple(loaded.notes), source,
                                               _thumbnail(loaded.image))
    st.session_state.pop(ERROR_KEY, None)
    return True
