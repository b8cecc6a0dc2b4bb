"""The models: the one cached loader (verified once per process, each built on first use and shared read-only),
the comparisons the app is built for, the pair the user compares, and the install of the ImageNet models, an
action of the server's owner whose settings (mirror, switch) come from the server's configuration alone."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import streamlit as st
from streamlit import config as streamlit_config

from shufflenet_viz import weights
from shufflenet_viz.imagenet import (CATALOGUE, MIRROR_ENV, OWNER_INSTALL_ENV, install_allowed, install_checkpoints,
                                     parse_switch)
from shufflenet_viz.weights import LoadedModel

from .state import CHOSEN_KEY, FETCH_MESSAGE_KEY, MODEL_KEYS, PAIR_KEY

# The comparisons offered as one choice, the first installed one the default: (label, left model, right model).
# The paper's own pair first (g=1 vs g=3 at 1x, Table 1), then the official 0.5x pair, then the CIFAR-10 pair.
PAIR_PRESETS: tuple[tuple[str, str, str], ...] = (
    ("g=1 vs g=3, ImageNet-1k, osmr 1x", "imagenet_osmr_g1_w1", "imagenet_osmr_g3_w1"),
    ("g=3 vs g=8, ImageNet-1k, official 0.5x", "imagenet_official_g3_w0.5", "imagenet_official_g8_w0.5"),
    ("g=1 vs g=3, CIFAR-10 1x, trained here with one recipe", "cifar10_g1", "cifar10_g3"),
    *((f"g={g} trained with vs without shuffle, CIFAR-10 0.5x (experiment)", f"cifar10_x0.5_g{g}_s0",
       f"cifar10_x0.5_g{g}_noshuffle_s0") for g in (3, 8)),
    *((f"g=1 vs g=3, ImageNet-1k, osmr {width}x", f"imagenet_osmr_g1_w{width}", f"imagenet_osmr_g3_w{width}")
      for width in ("0.5", "0.25")),
)
# The server's own settings: a `[shufflenet_lens]` table in .streamlit/secrets.toml (never sent to a browser),
# overridden by the environment.
SETTINGS_SECTION = "shufflenet_lens"
ANY_PAIR = "Any two models"


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
        """The model's label as the app shows it."""
        return self._verified[name].label

    def entry(self, name: str) -> dict:
        """The model's manifest entry."""
        return self._verified[name].entry


def _model_dirs() -> tuple[str, ...]:
    return tuple(str(folder) for folder in weights.model_dirs())


def loaded_models() -> ModelShelf:
    """Every verified model by name, shipped then fetched (the one cached loader; refused models are absent)."""
    return ModelShelf(_load_all(_model_dirs())[0])


def model_problems() -> dict[str, str]:
    """Why each model of the manifests that is not loaded was missing or refused, by name."""
    return _load_all(_model_dirs())[1]


def available_presets(names: Iterable[str]) -> list[tuple[str, str, str]]:
    """The comparison presets whose two models are both loaded."""
    names = set(names)
    return [preset for preset in PAIR_PRESETS if preset[1] in names and preset[2] in names]


def pair_label(left: str, right: str) -> str:
    """The preset's label for this pair of model names, or ANY_PAIR."""
    for label, preset_left, preset_right in PAIR_PRESETS:
        if (left, right) == (preset_left, preset_right):
            return label
    return ANY_PAIR


def default_model_names(names: list[str]) -> list[str]:
    """The default left and right models: the first installed preset (osmr's ImageNet 1x g=1 / g=3 pair, else
    the official 0.5x g=3 / g=8 pair, else the CIFAR-10 g=1 / g=3 pair), else the first two models."""
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
    defaults = default_model_names(list(models))
    picked = [st.session_state.get(key) for key in MODEL_KEYS]
    left, right = (name if name in models else default for name, default in zip(picked, defaults))
    try:
        return models[left], models[right]
    except weights.WeightsError as error:  # its file passed the checksum but does not build
        st.error(f"{error} Pick another model in the sidebar.")
        st.stop()


@dataclass(frozen=True)
class InstallSettings:
    """What the server's configuration says about installing the ImageNet models from the app."""

    allowed: bool  # the install button is offered
    mirror: str | None  # tried before the publishers
    problem: str | None  # a setting that could not be read (the button then stays off)


def _setting(name: str, environment: str) -> object | None:
    if os.environ.get(environment, "").strip():
        return os.environ[environment].strip()
    if st.secrets.load_if_toml_exists():
        return st.secrets.get(SETTINGS_SECTION, {}).get(name)
    return None


def install_settings() -> InstallSettings:
    """The owner's settings for the install button: the mirror and the switch from the environment
    (SHUFFLENET_LENS_MIRROR, SHUFFLENET_LENS_OWNER_INSTALL) or `[shufflenet_lens]` in .streamlit/secrets.toml
    (mirror, owner_install), and Streamlit's server.address; never anything a visitor sends."""
    mirror = _setting("mirror", MIRROR_ENV)
    switch, problem = _setting("owner_install", OWNER_INSTALL_ENV), None
    try:
        owner_switch = None if switch is None else parse_switch(switch)
    except ValueError as error:
        owner_switch, problem = False, f"The server's owner_install setting is not understood: {error}."
    return InstallSettings(install_allowed(streamlit_config.get_option("server.address"), owner_switch),
                           str(mirror) if mirror else None, problem)


def install_imagenet(missing: list[str]) -> None:
    """Fetch the missing recommended ImageNet models from the configured mirror (then the publishers) with a
    progress bar, where the server's settings allow it, then rerun with the new models as the default pair; the
    outcome is said on the next run."""
    settings = install_settings()
    if not settings.allowed:  # the button is not drawn then; a click forged into the session changes nothing
        return
    bar = st.progress(0.0, text="Starting the download...")

    def progress_for(checkpoint):
        index = missing.index(checkpoint.name)

        def progress(done: int, total: int | None) -> None:
            share = done / total if total else 0.0
            bar.progress(min(1.0, (index + share) / len(missing)),
                         text=f"{checkpoint.label}: {done / 1e6:.1f} MB" + (f" of {total / 1e6:.1f}" if total else ""))
        return progress

    outcomes = install_checkpoints([CATALOGUE[name] for name in missing], weights.FETCHED_DIR, settings.mirror,
                                   progress_for)
    bar.empty()
    installed = [outcome.name for outcome in outcomes if outcome.usable]
    failures = [f"{outcome.name}: {outcome.status}, {outcome.detail}" for outcome in outcomes if not outcome.usable]
    messages = [("success", f"Installed {', '.join(installed)}.")] if installed else []
    if failures:
        messages.append(("error", " ".join(failures) + f" On the server, `python -m shufflenet_viz weights fetch "
                         f"imagenet --all --mirror DIR` installs them from a folder (or URL) holding the published "
                         f"files; {MIRROR_ENV} (or `mirror` under [{SETTINGS_SECTION}] in .streamlit/secrets.toml) "
                         f"sets the mirror for this button."))
    st.session_state[FETCH_MESSAGE_KEY] = messages  # said by the sidebar on the next run
    if installed:
        _load_all.clear()  # every session lists the new models on its next run; built models stay valid
        for key in (PAIR_KEY, CHOSEN_KEY, *MODEL_KEYS):
            st.session_state.pop(key, None)
    st.rerun()
