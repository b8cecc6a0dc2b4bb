"""The Lesson's own figure and the exports of its shuffle animation; its other screens reuse the caches of the
Channel shuffle, The unit, Cost arithmetic and Classify pages. Kept out of the page script, which Streamlit
re-executes on every run."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st
from PIL import Image

from shufflenet_viz import export
from shufflenet_viz.figures.common import projector_style
from shufflenet_viz.figures.cost import op_share_figure

from shufflenet_viz.figures.flow import prediction_change_figure
from shufflenet_viz.inference import Classification
from shufflenet_viz.weights import LoadedModel

from .classify import classify_cached
from .flops import report
from .information_flow import classify_without_shuffle
from .shuffle import animation_figure, animation_for_screen
from .state import projector_mode
from .url import from_url

STEP_KEY = "lesson_step"
_BACK_KEY, _NEXT_KEY = "lesson_back", "lesson_next"
LESSON_CHANNELS = {False: 24, True: 12}  # projector mode -> channels of the lesson's shuffle animation
PROJECTOR_CHART_PX = 370  # below the step's title, buttons and words on a 720-pixel screen
SLIDE_MARKER_PX = 17  # the animation's channels on a slide, before the projector enlarges them
SHUFFLE_OFF_CLASSES = 2  # the demonstration's classes from each top list: four pairs of bars fit a slide


def open_step(steps: int) -> int:
    """The step to show: a link's (?step=3) when it is new to this session and one of 1 to `steps` (else one
    warning line), otherwise the step open before (1 at first)."""
    from_url(STEP_KEY, "step", lambda raw: int(raw) if 1 <= int(raw) <= steps else None,
             lambda raw: f"The link asks for step {raw!r}; the lesson has steps 1 to {steps}. Starting at step 1.")
    return st.session_state.setdefault(STEP_KEY, 1)


def go_to(step: int) -> None:
    """Open step `step` (the URL follows at the end of the run)."""
    st.session_state[STEP_KEY] = step


# A button takes one shortcut (PageDown / PageUp, what a clicker sends); the arrow keys press the same buttons.
# Keys typed into a field or a slider stay theirs, and the listener is added once per browser tab.
_ARROW_KEYS_JS = """<script>
if (!window.lensLessonArrows) {
  window.lensLessonArrows = true;
  const buttons = {ArrowRight: "NEXT", ArrowLeft: "BACK"};
  window.addEventListener("keydown", (event) => {
    const key = buttons[event.key];
    const target = event.target;
    if (!key || event.altKey || event.ctrlKey || event.metaKey || event.shiftKey) return;
    if (target.closest && target.closest("input, textarea, select, [role=slider], [contenteditable=true]")) return;
    const button = document.querySelector(`.st-key-${key} button:not([disabled])`);
    if (button) { event.preventDefault(); button.click(); }
  });
}
</script>"""


def step_buttons(step: int, steps: int) -> None:
    """Back, the lesson's progress and Next, pressed also by a presenter's clicker (PageUp / PageDown) and by the
    left and right arrow keys."""
    back, middle, forward = st.columns([1, 4, 1], vertical_alignment="center")
    back.button("Back", key=_BACK_KEY, on_click=go_to, args=(step - 1,), disabled=step == 1,
                icon=":material/arrow_back:", width="stretch", shortcut="PageUp")
    middle.progress(step / steps)
    forward.button("Next", key=_NEXT_KEY, on_click=go_to, args=(step + 1,), disabled=step == steps,
                   icon=":material/arrow_forward:", width="stretch", type="primary", shortcut="PageDown")
    # In the sidebar, where its empty element takes no room from a slide.
    st.sidebar.html(_ARROW_KEYS_JS.replace("NEXT", _NEXT_KEY).replace("BACK", _BACK_KEY),
                    unsafe_allow_javascript=True)


def fit(share: float = 1.0) -> dict:
    """Chart options that keep a step on one projector screen (1280x720) in projector mode: the chart takes
    `share` of the height a step's figure gets."""
    return {"height": int(PROJECTOR_CHART_PX * share)} if projector_mode() else {}


# Bounded: one figure.
@st.cache_resource(max_entries=1, show_spinner=False)
def pointwise_figure() -> go.Figure:
    """The g=1 network's multiply-adds (224x224) by kind of op."""
    return op_share_figure(report(1, 1.0, 224, 1000), "Million multiply-adds of ShuffleNet g=1 (dense 1x1), 224x224")


def pointwise_share() -> float:
    """The share of the g=1 network's multiply-adds (224x224) spent in 1x1 convolutions."""
    counted = report(1, 1.0, 224, 1000)
    ops = [op for unit in counted.units for op in unit.ops]
    return sum(op.macs for op in ops if op.op in ("compress_conv", "expand_conv")) / counted.total_macs


def shuffle_animation_for_screen(channels: int, groups: int) -> go.Figure:
    """The lesson's shuffle animation, with channels small enough that the whole animation with its buttons fits
    one screen below the step's title (a 720-pixel projector's once enlarged, a laptop's, a phone's in a column)
    with no room left empty under the channels."""
    return animation_for_screen(channels, groups, SLIDE_MARKER_PX)


# Bounded: 8 files of ~5 MB (plotly.js is embedded).
@st.cache_data(max_entries=8, show_spinner=False)
def animation_html(channels: int, groups: int, projector: bool) -> str:
    """The animation as one self-contained HTML file (plays with no network)."""
    figure = animation_figure(channels, groups)
    return export.animation_html(projector_style(figure) if projector else figure,
                                 f"Channel shuffle, C={channels}, g={groups}")


# Bounded: 8 GIFs of ~0.3 MB. Rendering takes seconds (one Chromium, one frame after the other), so once.
@st.cache_data(max_entries=8, show_spinner="Rendering the frames in a headless Chromium...")
def animation_gif(channels: int, groups: int, projector: bool) -> bytes:
    """The animation as a looping GIF."""
    figure = animation_figure(channels, groups)
    return export.animation_gif(projector_style(figure) if projector else figure)


def animation_exports(channels: int, groups: int, key: str) -> None:
    """Download buttons: the animation as offline HTML, and (where Chromium renders) as an animated GIF."""
    projector = projector_mode()
    html_column, gif_column = st.columns(2)
    html_column.download_button(
        "Animation as HTML (plays offline)", lambda: animation_html(channels, groups, projector),
        file_name=f"channel_shuffle_C{channels}_g{groups}.html", mime="text/html", key=f"{key}_html",
        icon=":material/download:", on_click="ignore",
        help="One file with plotly.js inside: open it in any browser, no network needed.")
    problem = export.static_export_problem()
    if problem:
        gif_column.info(problem)
        return
    gif_key = f"{key}_gif_{channels}_{groups}_{projector}"
    if not st.session_state.get(gif_key):
        if gif_column.button("Make the animated GIF", key=f"{key}_make_gif", icon=":material/movie:",
                             help="Renders every frame in a headless Chromium: a few seconds."):
            try:
                st.session_state[gif_key] = animation_gif(channels, groups, projector)
            except export.ExportError as error:
                gif_column.error(str(error))
                return
    if st.session_state.get(gif_key):
        gif_column.download_button("Animation as GIF (for slides)", st.session_state[gif_key],
                                   file_name=f"channel_shuffle_C{channels}_g{groups}.gif", mime="image/gif",
                                   key=f"{key}_gif", icon=":material/download:", on_click="ignore")


# Bounded: 16 figures of at most four pairs of bars.
@st.cache_resource(max_entries=16, show_spinner=False)
def shuffle_off_figure(name: str, image_sha256: str, _image: Image.Image) -> go.Figure:
    """Model `name`'s most likely classes for the picture with its shuffle on and switched off, side by side."""
    return prediction_change_figure(classify_cached(name, image_sha256, _image),
                                    classify_without_shuffle(name, image_sha256, _image), SHUFFLE_OFF_CLASSES)


def shuffle_off_sentence(loaded: LoadedModel, on: Classification, off: Classification) -> str:
    """What switching off the shuffle of the trained model `loaded` did to its answer (`on`, then `off`): exactly
    that, and not whether training with the shuffle is better, which a model trained without it would show."""
    label, groups = loaded.label, loaded.model.config.groups
    (on_name, on_p), (off_name, off_p) = on.top(1)[0], off.top(1)[0]
    if not loaded.model.config.shuffle:
        return (f"{label} was trained without a shuffle: there is none to switch off, and its answer stays "
                f"{on_name} ({on_p:.0%}). Pick a model trained with the shuffle on the right to see it at work.")
    if groups == 1:
        return (f"With g=1 there is one group: {label}'s shuffle moves no channel, so switching it off leaves the "
                f"answer as it was ({on_name}, {on_p:.0%}). Pick a model with g > 1 on the right to see the shuffle "
                "at work.")
    if on_name != off_name:
        change = (f"turns \"{on_name}, {on_p:.0%}\" into \"{off_name}, {off_p:.0%}\"")
    else:
        change = (f"still answers \"{on_name}\", but with {off_p:.0%} instead of {on_p:.0%} "
                  f"({abs(off_p - on_p) * 100:.1f} points {'less' if off_p < on_p else 'more'})")
    return (f"Same weights, same picture: switching off the shuffle in the trained {label} {change}. The trained "
            f"network routes information between its {groups} groups through the shuffle. Whether training with a "
            "shuffle makes a better network is another question, for the page \"Does the shuffle help?\"")
