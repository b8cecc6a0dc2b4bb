"""How wide the visitor's screen is: a narrow one (a phone) gets figures laid out for its width and the picture
controls in the main area.

Streamlit tells the server nothing about the viewport, so a small component reports whether the window is at
most `NARROW_MAX_PX` wide: once when it is first drawn, and again whenever a resize crosses that width. Until it
has reported, a browser that calls itself a phone's ("Mobile" in its user agent) counts as narrow; any other, and
wherever no browser runs (AppTest), as wide: the desktop layout.
Imports only `state`, so that `display` and `picture` can both use it.
"""

from __future__ import annotations

import streamlit as st

from .state import SCREEN_KEY, projector_mode

# Streamlit stacks side-by-side columns at this width and below: the page already has one column there.
NARROW_MAX_PX = 640
NARROW_FIGURE_WIDTH_PX = 360  # a figure across a 390-pixel phone screen, less the page's paddings

# Reports only a change from what the server already knows (`data.known`): an unchanged report would rerun the
# page for nothing, and a rerun redraws this component.
_REPORT_WIDTH_JS = """
export default function(component) {
  const { data, setStateValue } = component;
  let known = data.known;
  const report = () => {
    const narrow = window.innerWidth <= data.narrow_max_px;
    if (narrow !== known) {
      known = narrow;
      setStateValue("narrow", narrow);
    }
  };
  report();
  window.addEventListener("resize", report);
  return () => window.removeEventListener("resize", report);
}
"""
_width_reporter = st.components.v2.component("lens_screen_width", js=_REPORT_WIDTH_JS)


def watch_screen_width() -> None:
    """Draw the (invisible) reporter of the screen's width; call once per run, before the page draws."""
    _width_reporter(key=SCREEN_KEY, data={"narrow_max_px": NARROW_MAX_PX, "known": _reported_narrow()},
                    default={"narrow": None}, on_narrow_change=_ignore, height=0)


def _ignore() -> None:
    # The report's rerun is all that is needed: the page reads the new width from the session.
    return None


def _reported_narrow() -> bool:
    """The browser's report; before it comes, what the browser says it is: a phone's says "Mobile" in its user
    agent, so that a phone's first run, whose widgets settle their defaults, is already laid out for it."""
    state = st.session_state.get(SCREEN_KEY)
    narrow = None
    if state is not None:
        narrow = state.get("narrow") if hasattr(state, "get") else getattr(state, "narrow", None)
    if narrow is None:
        return _says_mobile()
    return bool(narrow)


def _says_mobile() -> bool:
    try:
        agent = st.context.headers.get("User-Agent") or ""
    except (AttributeError, RuntimeError):  # no browser request behind this run (AppTest)
        return False
    return "Mobile" in agent


def narrow_screen() -> bool:
    """Whether the page is drawn for a narrow screen (a phone): never in projector mode, which is its own layout."""
    return not projector_mode() and _reported_narrow()
