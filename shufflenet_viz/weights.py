"""Weights and their manifest: one loader builds model + preprocessing from a manifest entry.

A checkpoint is a plain state dict (`torch.save(model.state_dict())`). Its manifest entry carries all
else: architecture, classes, preprocessing, metrics and where they come from, the training command,
and the file's sha256. Nothing is unpickled before the checksum passes, and then only with
`weights_only=True`.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .copies import with_shuffle
from .model import ShuffleNetConfig, ShuffleNetV1
from .preprocess import Preprocessing

# The shipped weights; SHUFFLENET_LENS_WEIGHTS points the app and CLI at another folder (same rules apply).
WEIGHTS_DIR = Path(os.environ.get("SHUFFLENET_LENS_WEIGHTS") or Path(__file__).resolve().parent.parent / "weights")
# Published weights fetched at a user's request: a folder git ignores, with a manifest of its own, so that a
# fetch never touches a tracked file. SHUFFLENET_LENS_FETCHED points elsewhere.
FETCHED_DIR = Path(os.environ.get("SHUFFLENET_LENS_FETCHED") or WEIGHTS_DIR / "imagenet")
MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = 1


class WeightsError(Exception):
    """A checkpoint or the manifest cannot be trusted or used; the message names the file and what to do."""


@dataclass(frozen=True)
class LoadedModel:
    """A verified model in eval mode with everything the manifest says about it. Treat it as read-only."""

    name: str
    model: ShuffleNetV1
    preprocessing: Preprocessing
    classes: tuple[str, ...]
    entry: dict

    @property
    def groups(self) -> int:
        return self.model.config.groups

    @property
    def label(self) -> str:
        """A short human name such as 'CIFAR-10 g=3 (1x)' or 'ImageNet-1k g=3 (0.5x, official)'."""
        return model_label(self.entry, self.model.config)


def model_label(entry: dict, config: ShuffleNetConfig) -> str:
    """The short human name of a model with this manifest entry, built as `config` (its shuffle may be off)."""
    source = entry.get("provenance", {}).get("source")
    experiment = entry.get("experiment")
    trained_without = experiment is not None and not entry["architecture"].get("shuffle", True)
    shuffle = "" if config.shuffle else ", trained without shuffle" if trained_without else ", shuffle off"
    seed = f", seed {experiment['seed']}" if experiment and "seed" in experiment else ""
    return f"{entry.get('dataset', '?')} g={config.groups} ({config.width:g}x{f', {source}' if source else ''}" \
           f"{shuffle}{seed})"


@dataclass(frozen=True)
class VerifiedEntry:
    """A manifest entry whose file exists and matches its sha256, not yet unpickled or built."""

    name: str
    folder: Path
    entry: dict
    config: ShuffleNetConfig

    @property
    def label(self) -> str:
        return model_label(self.entry, self.config)


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_manifest(weights_dir: Path = WEIGHTS_DIR) -> dict[str, dict]:
    """The manifest's model entries by name; an absent manifest is an empty one."""
    path = Path(weights_dir) / MANIFEST_NAME
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
        models = data["models"]
        if not isinstance(models, dict) or not all(isinstance(e, dict) for e in models.values()):
            raise TypeError("'models' must map names to entries")
    except (OSError, ValueError, KeyError, TypeError) as error:
        if Path(weights_dir).resolve() == Path(FETCHED_DIR).resolve():  # never tracked: start the folder again
            fix = f"delete {path.parent} and fetch the models again (python -m shufflenet_viz weights fetch imagenet)"
        else:
            fix = f"restore it with `git checkout {path.name}` in {path.parent}"
        raise WeightsError(f"{path} is not a valid weights manifest ({error}): {fix}") from error
    return models


def write_manifest_entry(name: str, entry: dict, weights_dir: Path = WEIGHTS_DIR) -> None:
    """Add or replace one entry; the manifest is replaced atomically so readers never see half a file."""
    weights_dir = Path(weights_dir)
    models = read_manifest(weights_dir)
    models[name] = entry
    text = json.dumps({"format": MANIFEST_FORMAT, "models": dict(sorted(models.items()))}, indent=1) + "\n"
    handle, temp = tempfile.mkstemp(dir=weights_dir, prefix=".manifest-", suffix=".tmp")
    with os.fdopen(handle, "w") as out:
        out.write(text)
    os.chmod(temp, 0o644)  # mkstemp creates 0600; the manifest is meant to be read by anyone
    os.replace(temp, weights_dir / MANIFEST_NAME)


def checkpoint_path(entry: dict, name: str, weights_dir: Path = WEIGHTS_DIR) -> Path:
    """The entry's file, refusing any path that leaves the weights folder."""
    weights_dir = Path(weights_dir).resolve()
    file = entry.get("file")
    if not isinstance(file, str) or not file:
        raise WeightsError(f"manifest entry {name!r} names no file: fix {weights_dir / MANIFEST_NAME}")
    path = (weights_dir / file).resolve()
    if path.parent != weights_dir:
        raise WeightsError(f"manifest entry {name!r} points outside {weights_dir} ({file!r}); refusing to load "
                           f"it: checkpoints must sit directly in the weights folder")
    return path


def model_dirs() -> tuple[Path, ...]:
    """The folders whose manifests the app and CLI read: the shipped weights, then the fetched ones."""
    return (Path(WEIGHTS_DIR), Path(FETCHED_DIR))


def _retrain_hint(entry: dict) -> str:
    command = entry.get("training", {}).get("command")
    return f" or retrain it with `{command}`" if command else ""


def _restore_hint(entry: dict, path: Path) -> str:
    if entry.get("provenance"):  # fetched, never tracked: fetching again restores it
        command = entry.get("training", {}).get("command", "python -m shufflenet_viz weights fetch imagenet")
        return f"fetch it again with `{command}`"
    return f"restore it with `git checkout weights/{path.name}`{_retrain_hint(entry)}"


def config_from_entry(entry: dict) -> ShuffleNetConfig:
    """The architecture a manifest entry describes."""
    arch = entry["architecture"]
    return ShuffleNetConfig(groups=int(arch["groups"]), width=float(arch["width"]),
                            num_classes=len(entry["classes"]), shuffle=bool(arch.get("shuffle", True)),
                            layout=str(arch.get("layout", "paper")))


def _find_entry(name: str, weights_dir: Path | None) -> tuple[dict, Path]:
    folders = (Path(weights_dir),) if weights_dir is not None else model_dirs()
    known = []
    for folder in folders:
        models = read_manifest(folder)
        if name in models:
            return models[name], folder
        known.extend(models)
    where = " or ".join(str(folder / MANIFEST_NAME) for folder in folders)
    raise WeightsError(f"no model named {name!r} in {where} (known: {', '.join(sorted(known)) or 'none'})")


def _verified_file(name: str, entry: dict, weights_dir: Path) -> tuple[Path, bytes, ShuffleNetConfig, Preprocessing]:
    """(path, bytes, architecture, preprocessing) of an entry whose file passes its sha256; WeightsError if not."""
    path = checkpoint_path(entry, name, weights_dir)
    if not path.is_file():
        what = "is missing" if not path.exists() else "is not a regular file"
        raise WeightsError(f"{path} {what}: {_restore_hint(entry, path)}")
    data = path.read_bytes()  # read once: the bytes that pass the checksum are the bytes that get loaded
    if hashlib.sha256(data).hexdigest() != entry.get("sha256"):
        raise WeightsError(f"{path} does not match the sha256 in the manifest (truncated, altered or swapped); "
                           f"it was not loaded. {_restore_hint(entry, path).capitalize()}")
    try:
        config = config_from_entry(entry)
        preprocessing = Preprocessing.from_dict(entry["preprocessing"])
    except (KeyError, TypeError, ValueError) as error:
        raise WeightsError(f"manifest entry {name!r} is incomplete or invalid ({error})") from error
    return path, data, config, preprocessing


def load_model(name: str, weights_dir: Path | None = None, shuffle: bool | None = None) -> LoadedModel:
    """Build the named model from its manifest entry after verifying the file's sha256.

    Without `weights_dir` the shipped folder and then the fetched one are searched.
    `shuffle=False` gives the same weights with channel shuffle switched off (Table 3 ablation).
    """
    entry, weights_dir = _find_entry(name, weights_dir)
    path, data, config, preprocessing = _verified_file(name, entry, weights_dir)
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as error:  # unpickling errors come in many types
        raise WeightsError(f"{path} is not a loadable state dict ({error}); {_restore_hint(entry, path)}") from error
    with torch.device("meta"):  # structure only: initialising weights that the checkpoint replaces costs time
        model = ShuffleNetV1(config)
    try:
        model.load_state_dict(state, assign=True)  # strict: every tensor of the architecture, of the right shape
    except (RuntimeError, TypeError, AttributeError) as error:
        raise WeightsError(f"{path} does not fit the architecture in its manifest entry (g={config.groups}, "
                           f"width {config.width:g}, {config.num_classes} classes): {str(error)[:300]}") from error
    model = freeze(model)
    if shuffle is not None and shuffle != config.shuffle:
        model = freeze(with_shuffle(model, shuffle))
    return LoadedModel(name, model, preprocessing, tuple(entry["classes"]), entry)


def freeze(model: nn.Module) -> nn.Module:
    """Eval mode, no parameter gradients: a model that many sessions can share."""
    model.eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model


def verify_all(weights_dir: Path | None = None) -> tuple[dict[str, VerifiedEntry], dict[str, str]]:
    """Every manifest entry whose file passes its sha256 (nothing unpickled yet), and a message for each that
    does not. Without `weights_dir`: the shipped models, then the fetched ones (a fetched name never hides a
    shipped one)."""
    verified, problems = {}, {}
    folders = (Path(weights_dir),) if weights_dir is not None else model_dirs()
    for index, folder in enumerate(folders):
        try:
            entries = read_manifest(folder)
        except WeightsError as error:
            problems[MANIFEST_NAME if index == 0 else f"{folder.name}/{MANIFEST_NAME}"] = str(error)
            continue
        for name, entry in entries.items():
            if name in verified or name in problems:
                continue
            try:
                config = _verified_file(name, entry, folder)[2]
            except WeightsError as error:
                problems[name] = str(error)
                continue
            verified[name] = VerifiedEntry(name, folder, entry, config)
    return verified, problems


def load_all(weights_dir: Path | None = None) -> tuple[dict[str, LoadedModel], dict[str, str]]:
    """Every model of the manifests that verifies and builds, and a message for each that does not."""
    verified, problems = verify_all(weights_dir)
    loaded = {}
    for name, item in verified.items():
        try:
            loaded[name] = load_model(name, item.folder)
        except WeightsError as error:
            problems[name] = str(error)
    return loaded, problems
