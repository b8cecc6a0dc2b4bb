"""Settings kept in the URL, so that a bookmark or a shared link restores a page's view.

Before drawing a widget, a page calls `choice`, `number` or `flag` (or `from_url` for a rule of its own): the
link's value becomes the widget's session value when the link is new to this session, or one warning line says
what the link asked for and what is allowed. After its widgets the page calls `to_url` with what they show.
Widgets then take their value from `st.session_state` alone: passing `value=`/`index=` as well makes
Streamlit warn.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import streamlit as st

import ui

SEEN_KEY = "url_seen"  # widget key (or marker) -> the URL text this session last read or wrote for it
LISTED = 6  # a warning names at most this many allowed values, so that it stays one line
FLAG_TEXTS = {"1": True, "true": True, "on": True, "yes": True, "0": False, "false": False, "off": False,
              "no": False}


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
    """Write the page's settings into the URL (param -> (widget key or marker, value)), with the two models
    compared and projector mode, so that a bookmark restores the view."""
    compared = {param: (key, st.session_state[key]) for key, param in zip(ui.MODEL_KEYS, ui.MODEL_PARAMS)
                if key in st.session_state}  # the sidebar's comparison: part of every page's view
    settings = {**settings, **compared}
    for param in [param for param in st.query_params if param not in settings and param != ui.PROJECTOR_PARAM]:
        del st.query_params[param]  # another page's settings: this URL describes this page
    spelled = {param: text(value) for param, (_, value) in settings.items()}
    for param, value in spelled.items():
        if st.query_params.get(param) != value:
            st.query_params[param] = value
    # Only this page's settings count as seen: after a visit to another page, whose widgets start afresh, a link
    # back here is adopted even where it repeats a value written here before.
    st.session_state[SEEN_KEY] = {key: spelled[param] for param, (key, _) in settings.items()}
    if ui.projector_mode():
        st.query_params[ui.PROJECTOR_PARAM] = "1"
    elif ui.PROJECTOR_PARAM in st.query_params:
        del st.query_params[ui.PROJECTOR_PARAM]


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


def number(key: str, param: str, low: int | float, high: int | float, default: int | float,
           kind: type = int, marker: str | None = None, as_default: bool = False) -> int | float:
    """For a slider or number input from `low` to `high`: its value is the link's `param` when that is a
    number of `kind` (int or float) in range, else it stays in range (`default` when it is not). Returns the
    value. With `as_default`, for a widget that always passes a default (st.pagination, where a session value
    as well makes Streamlit warn), session state is left alone: pass the returned value as `default=` (a widget
    already drawn keeps its own value)."""
    def valid(value) -> bool:
        return type(value) is kind and low <= value <= high

    if as_default:
        current = st.session_state.get(key)
        kept = current if valid(current) else kind(default)
    else:
        kept = keep(key, valid, kind(default))

    def parse(raw: str):
        value = kind(raw)
        return value if low <= value <= high else None  # also refuses nan

    what, spell = ("a whole number", "{:,}".format) if kind is int else ("a number", text)

    def problem(raw: str) -> str:
        return f"The link sets {param} = {raw!r}; it must be {what} from {spell(low)} to {spell(high)}. " \
               f"Showing {text(kept)}."

    if as_default:
        linked = _read(key, param, parse, problem, marker)
        return kept if linked is None else linked
    from_url(key, param, parse, problem, marker)
    return st.session_state[key]


def flag(key: str, param: str, default: bool, marker: str | None = None) -> bool:
    """For a checkbox, toggle or stateful expander: on or off as the link's `param` says (1/0, true/false,
    on/off, yes/no), else as it was (`default` at first). Returns the value."""
    kept = keep(key, lambda value: isinstance(value, bool), default)
    from_url(key, param, lambda raw: FLAG_TEXTS.get(raw.strip().lower()),
             lambda raw: f"The link sets {param} = {raw!r}; it must be 1 (on) or 0 (off). Showing "
                         f"{'on' if kept else 'off'}.", marker)
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
    seen = st.session_state.setdefault(SEEN_KEY, {})
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
