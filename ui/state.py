"""Session-state keys and the settings every page shares (the two sides, projector mode).

A leaf: it imports nothing of this project, so that every other module of `ui` can import it.
"""

from __future__ import annotations

import streamlit as st

# The picture (widgets and values), all here so that no module invents its own spelling.
IMAGE_KEY = "lens_image"
ERROR_KEY = "lens_image_error"
UPLOAD_KEY = "lens_upload"
CAMERA_ON_KEY = "lens_camera_on"
CAMERA_KEY = "lens_camera"
SAMPLE_KEY = "lens_sample"

# The two models compared.
SIDES = ("left", "right")  # as URL params name them: left_model, left_card, ...
MODEL_KEYS = ("lens_model_left", "lens_model_right")
MODEL_PARAMS = tuple(f"{side}_model" for side in SIDES)  # in every page's URL: a bookmark reopens the pair
CHOSEN_KEY = "lens_models_chosen"  # (left, right) as last picked, apart from the widgets' own state
PAIR_KEY = "lens_pair"

# The URL says that the picture came from this tab (an upload or the camera photo), so that a session that starts
# without it (its server restarted, or the load balancer moved the tab to another replica) asks for it again.
PICTURE_PARAM = "picture"
UPLOADED_MARK = "uploaded"
LOST_UPLOAD_KEY = "lens_lost_upload"  # the line such a session shows until a picture is chosen

# The ImageNet install.
FETCH_MESSAGE_KEY = "lens_fetch_message"
INSTALL_KEY = "lens_install_imagenet"

# The URL: what each setting kept there was last read or written as, and the page whose settings it holds.
URL_SEEN_KEY = "url_seen"  # widget key (or marker) -> the URL text this session last read or wrote for it
URL_WRITTEN_KEY = "url_written"  # param -> text: the page's own settings as it last wrote them
PAGE_KEY = "lens_page"  # the path of the page this run shows, as st.navigation names it

# Projector mode: the sidebar's toggle; ?projector=1 in a bookmark opens the app in projector mode.
PROJECTOR_KEY = "lens_projector"
PROJECTOR_PARAM = "projector"

# The screen's width as the browser reports it (see ui.screen): whether it is a narrow one.
SCREEN_KEY = "lens_screen"
# The picture controls drawn in the main area on a narrow screen (the sidebar's own keys stay the sidebar's).
MAIN_UPLOAD_KEY = "lens_upload_main"
MAIN_CAMERA_ON_KEY = "lens_camera_on_main"
MAIN_CAMERA_KEY = "lens_camera_main"
MAIN_NOTES_SHOWN_KEY = "lens_notes_shown_main"  # the sha256 of the picture whose loader's notes the main area showed


def projector_mode() -> bool:
    """Whether figures are drawn for a projector (the sidebar's toggle, or ?projector=1 in the URL)."""
    if PROJECTOR_KEY not in st.session_state:
        return st.query_params.get(PROJECTOR_PARAM) == "1"
    return bool(st.session_state[PROJECTOR_KEY])
