"""Settings kept in the URL, so that a bookmark or a shared link restores a page's view.

A widget's setting is bound to the URL by Streamlit itself (`bind="query-params"`) through `bound_choice`,
`bound_number` and `bound_flag`, which add the one warning line that says what a link asked for and what is
allowed. What binding cannot do stays here:

- the two models compared and projector mode, part of every page's URL: the sidebar writes them
  (`keep_shared`) with the model names, where a bound selectbox would write their labels;
- a page's own settings that are not a widget's value (the lesson's step): before drawing, `choice` or
  `from_url` adopt a link's value or warn; afterwards `to_url` writes what the page shows.
  Widgets then take their value from `st.session_state` alone: passing `value=`/`index=` as well makes
  Streamlit warn.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import streamlit as st
from streamlit.runtime.state.session_state_proxy import get_session_state

from .state import (MODEL_KEYS, MODEL_PARAMS, PAGE_KEY, PICTURE_PARAM, PROJECTOR_PARAM, URL_SEEN_KEY, URL_WRITTEN_KEY,
                    projector_mode)

# The sidebar's, in every page's URL (the picture's mark: ui.picture writes it).
SHARED_PARAMS = (*MODEL_PARAMS, PROJECTOR_PARAM, PICTURE_PARAM)
LISTED = 6  # a warning names at most this many allowed values, so that it stays one line


def text(value: Any) -> str:
    """A setting as the URL spells it: flags as 1 or 0, numbers without float noise (0.15, not
    0.15000000000000002), anything else as str()."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return f"{value:.10g}"
    return str(value)


def from_url(key: str, param: str, parse: Callable[[str], Any], problem: Callable[[str], str],
             marker: str | None = None) -> None:
    """Before the widget `key` is drawn: adopt the URL's value for it when the URL is new to this session (a
    link or a bookmark), or say in one line why it cannot be used. `parse` returns the value, or None (or
    raises ValueError) when it cannot be used. `marker` (default: `key`) names the setting in what the page
    last wrote to the URL; a widget whose key changes with other settings passes a stable one, and gives the
    same name to `to_url`."""
    value = _read(key, param, parse, problem, marker)
    if value is not None:
        st.session_state[key] = value


def to_url(settings: dict[str, tuple[str, Any]]) -> None:
    """Write the page's own settings into the URL (param -> (widget key or marker, value)) and drop the params
    that none of them names, so that a bookmark restores this page's view. Params bound to a widget are the
    widget's to write, the models compared and projector mode the sidebar's: neither is touched here."""
    settings = {param: setting for param, setting in settings.items()
                if param not in SHARED_PARAMS and not _bound(param)}
    for param in [param for param in st.query_params
                  if param not in settings and param not in SHARED_PARAMS and not _bound(param)]:
        del st.query_params[param]  # another page's settings, or a link's unknown ones
    spelled = {param: text(value) for param, (_, value) in settings.items()}
    for param, value in spelled.items():
        _write(param, value)
    # Only this page's settings (and the sidebar's) count as seen: after a visit to another page, whose widgets
    # start afresh, a link back here is adopted even where it repeats a value written here before.
    shared_seen = {key: raw for key, raw in st.session_state.get(URL_SEEN_KEY, {}).items() if key in MODEL_KEYS}
    st.session_state[URL_SEEN_KEY] = {**shared_seen, **{key: spelled[param] for param, (key, _) in settings.items()}}
    st.session_state[URL_WRITTEN_KEY] = spelled


def keep_shared(page: str) -> None:
    """The sidebar's part of the URL, written after its widgets and before the page runs: the two models
    compared and projector mode, in every page's URL so that a bookmark reopens them. On a switch of page, the
    settings the previous page wrote with `to_url` leave the URL (they describe that page)."""
    seen = st.session_state.setdefault(URL_SEEN_KEY, {})
    if st.session_state.get(PAGE_KEY, page) != page:
        for param, value in st.session_state.pop(URL_WRITTEN_KEY, {}).items():
            # A link to this page (st.page_link) may name the same param with a value of its own: that stays.
            if st.query_params.get(param) == value and not _bound(param):
                del st.query_params[param]
        for key in [key for key in seen if key not in MODEL_KEYS]:
            del seen[key]
    st.session_state[PAGE_KEY] = page
    for key, param in zip(MODEL_KEYS, MODEL_PARAMS):
        if key in st.session_state:
            seen[key] = text(st.session_state[key])
            _write(param, seen[key])
    if projector_mode():
        _write(PROJECTOR_PARAM, "1")
    elif PROJECTOR_PARAM in st.query_params:
        del st.query_params[PROJECTOR_PARAM]


def choice(key: str, param: str, options: Sequence, default: Any, format: Callable[[Any], str] | None = None,
           marker: str | None = None) -> Any:
    """For a selectbox, radio, select slider or segmented control: its value is the link's `param` when that
    spells one of `options`, else it stays one of them (`default` when it is not). `format` (the widget's
    format_func) adds each option's label to the warning. Returns the value."""
    options = list(options)
    kept = keep(key, lambda value: value in options, default)
    from_url(key, param, lambda raw: _option(options, raw),
             lambda raw: f"The link asks for {param} {raw!r}, which is not one of {_listed(options, format)}; "
                         f"showing {_named(kept, format)}.", marker)
    return st.session_state[key]


def keep(key: str, valid: Callable[[Any], bool], default: Any) -> Any:
    """The session value of the widget `key` when `valid` holds for it, else `default` (set, and returned): a
    value left from another model or page (a unit the new model lacks) would make the widget raise."""
    if key not in st.session_state or not valid(st.session_state[key]):
        st.session_state[key] = default
    return st.session_state[key]


def _read(key: str, param: str, parse: Callable[[str], Any], problem: Callable[[str], str],
          marker: str | None) -> Any:
    # The link's value for `param` when it is new to this page and usable; None otherwise (with one warning line
    # when it is new but unusable).
    seen = st.session_state.setdefault(URL_SEEN_KEY, {})
    raw = st.query_params.get(param)
    if raw is None or raw == seen.get(marker or key):
        return None
    seen[marker or key] = raw
    try:
        value = parse(raw)
    except (TypeError, ValueError):
        value = None
    if value is None:
        st.warning(problem(raw))
    return value


def _write(param: str, value: str) -> None:
    if st.query_params.get(param) != value:  # an unchanged param is not sent to the browser again
        st.query_params[param] = value


def _bound(param: str) -> bool:
    # Streamlit refuses to set or delete a param bound to a widget: the widget writes it.
    with get_session_state().query_params() as params:
        return params.is_bound(param)


def _option(options: list, raw: str) -> Any:
    for option in options:
        if text(option) == raw:
            return option
    try:
        wanted = float(raw)
    except ValueError:
        return None
    # 1.0 in a link for the option 1 (or 1 for 1.0): the same number, spelled another way.
    return next((option for option in options if isinstance(option, (int, float)) and not isinstance(option, bool)
                 and math.isclose(option, wanted)), None)


def _named(option: Any, format: Callable[[Any], str] | None) -> str:
    label = format(option) if format else None
    spelled = text(option)
    return spelled if label in (None, spelled) else f"{spelled} ({label})"


def _listed(options: list, format: Callable[[Any], str] | None) -> str:
    if len(options) <= LISTED:
        return ", ".join(_named(option, format) for option in options)
    return f"{_named(options[0], format)}, {_named(options[1], format)} ... {_named(options[-1], format)} " \
           f"({len(options):,} in all)"


# --- widgets bound to the URL ----------------------------------------------------------------------------
# Streamlit's own binding (`bind="query-params"`): the widget's key is the URL parameter, a link's value is
# taken when the widget can use it, a value equal to the default is left out of the URL, and an unusable one
# is dropped silently. These wrappers add the one warning line that says what a link asked for and what is
# allowed, and reset a session value that the widget's current options no longer hold (a unit that the newly
# compared model lacks, say), so that each setting is written once: in the widget call.

BIND = "query-params"
BOUND_FLAG_TEXTS = ("true", "false")  # how bound toggles, checkboxes and expanders spell their state


def bound_choice(widget: Callable, label: str, options: Sequence, *, key: str, default: Any = None,
                 format_func: Callable[[Any], str] = str, **kwargs) -> Any:
    """`widget` (st.selectbox, st.radio, st.select_slider, st.segmented_control or st.pills, or the same method
    of a container) bound to the URL parameter `key`; the URL spells each option as `format_func` shows it.
    `default` (else the first option) is what a page without a link shows. Returns the widget's value."""
    options = list(options)
    default = options[0] if default is None else default
    labels = [format_func(option) for option in options]
    multi = kwargs.get("selection_mode") == "multi"
    current = st.session_state.get(key)
    if key in st.session_state and not (set(current or ()) <= set(options) if multi else current in options):
        del st.session_state[key]
    raw = st.query_params.get_all(key) if multi else [st.query_params.get(key)]
    unusable = [value for value in raw if value not in (None, "") and value not in labels]
    if unusable:
        st.warning(f"The link asks for {key} {unusable[0]!r}, which is not one of {_listed(labels, None)}; "
                   f"it is ignored.")
    if widget.__name__ in ("selectbox", "radio"):
        kwargs["index"] = options.index(default)
    elif widget.__name__ == "select_slider":
        kwargs["value"] = default
    else:
        kwargs["default"] = default
    return widget(label, options, format_func=format_func, key=key, bind=BIND, **kwargs)


def bound_number(widget: Callable, label: str, low: int | float, high: int | float, *, key: str,
                 default: int | float, **kwargs) -> int | float:
    """`widget` (st.slider or st.number_input, or the same method of a container) from `low` to `high`,
    bound to the URL parameter `key`. Returns the widget's value."""
    kind = type(default)
    current = st.session_state.get(key)
    if key in st.session_state and not (type(current) is kind and low <= current <= high):
        del st.session_state[key]
    raw = st.query_params.get(key)
    if raw not in (None, ""):
        try:
            usable = low <= kind(raw) <= high
        except (TypeError, ValueError):
            usable = False
        if not usable:
            what, spell = ("a whole number", "{:,}".format) if kind is int else ("a number", text)
            st.warning(f"The link sets {key} = {raw!r}; it must be {what} from {spell(low)} to {spell(high)}. "
                       f"It is ignored.")
    return widget(label, low, high, default, key=key, bind=BIND, **kwargs)


def bound_flag(widget: Callable, label: str, *, key: str, default: bool = False, **kwargs):
    """`widget` (st.toggle, st.checkbox or st.expander, or the same method of a container) bound to the URL
    parameter `key` (true or false). Returns what the widget returns (an expander: its container)."""
    raw = st.query_params.get(key)
    if raw not in (None, "") and raw not in BOUND_FLAG_TEXTS:
        st.warning(f"The link sets {key} = {raw!r}; it must be true or false. It is ignored.")
    if widget.__name__ == "expander":
        return widget(label, expanded=default, key=key, bind=BIND, **kwargs)
    return widget(label, value=default, key=key, bind=BIND, **kwargs)
