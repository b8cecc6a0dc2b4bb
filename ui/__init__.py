"""The Streamlit layer of ShuffleNet Lens: everything `app.py` and the pages in `pages/` draw with.

Modules by topic, each imported by the others directly (never through this package):

- `state`: every session key, the two sides compared, projector mode (a leaf: imports nothing of ours).
- `frame`: `ensure_shell`, which makes a page run inside app.py's frame.
- `models`: the one cached loader of verified models, the comparison presets, the pair compared, the ImageNet
  install.
- `picture`: the current picture (upload, camera, sample) and `require_image`.
- `sidebar`: the shared sidebar drawn before every page (picture, models compared, display mode).
- `url`: settings kept in the URL (widgets bound to query params, and the links' warnings).
- `display`: `show`, the one way a figure reaches the screen.
- `activations`: a picture as each model receives it and every activation, cached once per model and picture.
- one module per page topic, named after its page (`classify` and its `model_card`, `lesson`, `shuffle`, `unit`,
  `cost`, `information_flow`, `experiments`, `flops`, `feature_maps`, `attributions`, `gallery`): what that page
  caches and draws.

This package re-exports what the pages use most, so that a page reads `ui.require_image()`, `ui.show(...)`.
"""

# Libraries that take a second or more to import, imported here once per server with the app's other modules
# instead of by the first visit of a page that needs them: Captum (it imports matplotlib.pyplot) and pandas
# (st.dataframe converts every table through pyarrow, which imports it).
import captum.attr  # noqa: F401
import pandas  # noqa: F401

from .classify import (CARD_MAX_CLASSES, SEEN_SIDE, TOP_K, classify_cached, model_card_figures, seen_png_cached,
                       top_k_figure)
from .display import for_screen, show, side_by_side
from .frame import ensure_shell
from .models import (ANY_PAIR, PAIR_PRESETS, ModelShelf, available_presets, default_model_names, loaded_models,
                     model_pair, model_problems, pair_label)
from .picture import (DEFAULT_SAMPLE, SAMPLES_DIR, UPLOAD_TYPES, CurrentImage, current_image, require_image,
                      sample_names)
from .sidebar import draw_sidebar
from .state import (CAMERA_KEY, CAMERA_ON_KEY, CHOSEN_KEY, ERROR_KEY, FETCH_MESSAGE_KEY, IMAGE_KEY, INSTALL_KEY,
                    MODEL_KEYS, MODEL_PARAMS, PAIR_KEY, PROJECTOR_KEY, PROJECTOR_PARAM, SAMPLE_KEY, SIDES,
                    UPLOAD_KEY, projector_mode)

__all__ = [
    "ANY_PAIR", "CAMERA_KEY", "CAMERA_ON_KEY", "CARD_MAX_CLASSES", "CHOSEN_KEY", "CurrentImage", "DEFAULT_SAMPLE",
    "ERROR_KEY", "FETCH_MESSAGE_KEY", "IMAGE_KEY", "INSTALL_KEY", "MODEL_KEYS", "MODEL_PARAMS",
    "ModelShelf", "PAIR_KEY", "PAIR_PRESETS", "PROJECTOR_KEY", "PROJECTOR_PARAM", "SAMPLES_DIR", "SAMPLE_KEY",
    "SEEN_SIDE", "SIDES", "TOP_K", "UPLOAD_KEY", "UPLOAD_TYPES", "available_presets", "classify_cached",
    "current_image", "default_model_names", "ensure_shell", "for_screen", "loaded_models", "model_card_figures",
    "model_pair", "model_problems", "pair_label", "projector_mode", "require_image", "sample_names",
    "seen_png_cached", "show", "side_by_side", "draw_sidebar", "top_k_figure",
]
