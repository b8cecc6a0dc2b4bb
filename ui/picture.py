"""The picture every page works on: an upload, a camera photo or a sample, kept in the session across pages."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import streamlit as st
from PIL import Image

from shufflenet_viz.images import ImageError, load_image

from .screen import narrow_screen
from .state import (CAMERA_KEY, ERROR_KEY, IMAGE_KEY, LOST_UPLOAD_KEY, MAIN_CAMERA_KEY, MAIN_CAMERA_ON_KEY,
                    MAIN_NOTES_SHOWN_KEY, MAIN_UPLOAD_KEY, PICTURE_PARAM, SAMPLE_KEY, UPLOAD_KEY, UPLOADED_MARK)

SAMPLES_DIR = Path(__file__).resolve().parents[1] / "samples"
SAMPLE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
DEFAULT_SAMPLE = "cat.jpg"  # a new session starts with a picture, so every page has something to show
UPLOAD_TYPES = ("jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff")
THUMBNAIL_SIDE = 480  # the sidebar shows at most ~300 CSS px; encoded once per picture, not on every run
# What a session that starts without the picture its tab had says (see start_with_default_sample).
LOST_UPLOAD = "The photo uploaded for this page is not on this server any more (a restart or a move to another " \
              "server loses it): upload it again."
LOST_SESSION = "This tab's session is not on this server any more (a restart or a move to another server ends it): " \
               "choose your picture again."


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
    """The current picture; without one, tells the user how to choose one and stops the page. On a narrow screen
    (a phone, whose sidebar stays closed) the upload and the camera come first, in the main area."""
    if narrow_screen():
        main_area_picture_inputs()
    current = current_image()
    if current is None:
        st.info("Choose a picture in the sidebar: upload a photo, take one with the camera, or pick a sample.")
        st.stop()
    return current


def main_area_picture_inputs() -> None:
    """The upload and the camera where a phone's visitor looks, above the page's result: the same callbacks as
    the sidebar's, under keys of their own, so the picture chosen either way is the one every page shows."""
    start_with_default_sample()
    current = current_image()
    with st.container(key="main_picture_inputs"):
        st.file_uploader(f"Your photo (now: {current.name})" if current else "Your photo",
                         type=list(UPLOAD_TYPES), key=MAIN_UPLOAD_KEY, on_change=on_upload, args=(MAIN_UPLOAD_KEY,),
                         help="JPEG, PNG, WebP, BMP, GIF or TIFF. The picture stays while you switch pages; the "
                              "menu at the top left also offers the samples.")
        if st.toggle("Use the camera", key=MAIN_CAMERA_ON_KEY, help="Asks the browser for the camera only when on."):
            st.camera_input("Take a photo", key=MAIN_CAMERA_KEY, on_change=on_camera, args=(MAIN_CAMERA_KEY,))
        problem = picture_problem()
        if problem:
            st.error(problem)
        # The loader's notes (turned upright, shrunk) once, where the picture was chosen: repeated above every
        # page they would push each page's result down a phone's screen.
        if current is not None and st.session_state.get(MAIN_NOTES_SHOWN_KEY) != current.sha256:
            st.session_state[MAIN_NOTES_SHOWN_KEY] = current.sha256
            for note in current.notes:
                st.info(note)


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
    """A session's first run: the default sample becomes the picture (unless the user already chose one). But a
    session that starts without the picture its tab had (its server restarted, or the load balancer moved the tab
    to another replica) shows no picture and one line asking for it again, for as long as there is no picture:
    the URL says the picture was uploaded, or the browser asked to resume a session this server does not hold.
    On every run the URL's mark follows the current picture's source."""
    if IMAGE_KEY not in st.session_state and ERROR_KEY not in st.session_state \
            and LOST_UPLOAD_KEY not in st.session_state:
        if st.query_params.get(PICTURE_PARAM) == UPLOADED_MARK:
            st.session_state[LOST_UPLOAD_KEY] = LOST_UPLOAD
        elif _resumes_a_lost_session():
            st.session_state[LOST_UPLOAD_KEY] = LOST_SESSION
        elif DEFAULT_SAMPLE in sample_names():
            st.session_state[SAMPLE_KEY] = DEFAULT_SAMPLE
            on_sample()
    current = current_image()
    uploaded = current is not None and current.source in ("upload", "camera")
    if uploaded and st.query_params.get(PICTURE_PARAM) != UPLOADED_MARK:
        st.query_params[PICTURE_PARAM] = UPLOADED_MARK
    elif not uploaded and PICTURE_PARAM in st.query_params:
        del st.query_params[PICTURE_PARAM]
    if current is None and st.session_state.get(LOST_UPLOAD_KEY):
        st.warning(st.session_state[LOST_UPLOAD_KEY])


def _resumes_a_lost_session() -> bool:
    # A browser whose websocket reconnects names its previous session after the XSRF token in the
    # Sec-WebSocket-Protocol header; in a session's first run, that session was not found on this server.
    offered = [part.strip() for part in (st.context.headers.get("Sec-Websocket-Protocol") or "").split(",")]
    return len(offered) >= 3 and bool(offered[2])


def on_upload(key: str = UPLOAD_KEY) -> None:
    """The callback of the uploader under `key` (the sidebar's, or the main area's on a narrow screen): the
    uploaded file becomes the picture, or its refusal is remembered."""
    uploaded = st.session_state.get(key)
    if uploaded is None:  # the user removed the file: the picture stays, a refusal message goes
        st.session_state.pop(ERROR_KEY, None)
        return
    if _use_file(uploaded.getvalue(), uploaded.name, "upload"):
        st.session_state[SAMPLE_KEY] = None  # the sample picker no longer names the current picture


def on_camera(key: str = CAMERA_KEY) -> None:
    """The callback of the camera under `key`: the photo becomes the picture, or its refusal is remembered."""
    photo = st.session_state.get(key)
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


def use_picture(data: bytes, name: str, source: str) -> bool:
    """Make these bytes the current picture of every page, from outside the picture inputs (a class gallery
    photo); False when refused, the message then kept for the picture inputs to say."""
    if not _use_file(data, name, source):
        return False
    st.session_state[SAMPLE_KEY] = None  # the sample picker no longer names the current picture
    return True
