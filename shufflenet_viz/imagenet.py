"""Opt-in ImageNet-1k weights: published ShuffleNet v1 checkpoints, fetched, verified and converted.

This is the only code in the project that downloads anything, and only when the server's owner asks for it
(the CLI's `weights fetch imagenet`, or the sidebar's button where the owner's settings allow it: see
`install_allowed`). Two published families are known:
- the official code's checkpoints (megvii-model/ShuffleNet-Series, MIT): 0.5x with g=3 and g=8, in the
  "official" unit layout, trained on BGR 0-255 pixels;
- osmr/imgclsmob's (MIT): g=1 and g=3 at 0.25x, 0.5x and 1x, in the paper's layout.

Each download is capped in size and time, checked against its published hash before anything is written
where the app looks, converted to this package's module names, loaded into our model (strictly: every
tensor maps), and only then saved into the fetched-weights folder with a manifest entry of its provenance.
A mirror (a folder or an http(s) URL holding the published files under their names, named by the server's
configuration, never by a visitor) is tried first.
"""

from __future__ import annotations

import hashlib
import io
import ipaddress
import os
import re
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from .model import STAGE_NAMES, STAGE_REPEATS, ShuffleNetConfig, ShuffleNetV1, count_parameters
from .preprocess import Preprocessing
from .weights import FETCHED_DIR, WeightsError, read_manifest, verify_all, write_manifest_entry

MIRROR_ENV = "SHUFFLENET_LENS_MIRROR"
# The owner's switch for the app's install button (see `install_allowed`).
OWNER_INSTALL_ENV = "SHUFFLENET_LENS_OWNER_INSTALL"
TIMEOUT_S = 30.0  # no byte for this long, or a whole download longer than DOWNLOAD_DEADLINE_S, fails it
DOWNLOAD_DEADLINE_S = 600.0
CHUNK = 1 << 16

Progress = Callable[[int, "int | None"], None]  # (bytes so far, total bytes or None)


@dataclass(frozen=True)
class ImageNetCheckpoint:
    """One published checkpoint: where it is, how to check it, what it is and what its authors report."""

    name: str  # the manifest name it gets here
    source: str  # "official" or "osmr"
    groups: int
    width: float
    url: str
    file_name: str  # its name in a mirror folder
    max_bytes: int  # a download larger than this is refused
    sha256: str | None  # of the published .pth file; None where only osmr's sha1 is published
    sha1: str | None  # osmr's published sha1 of the .pth
    top1_error_percent: float | None  # as reported upstream
    top5_error_percent: float | None
    reported: str  # what was reported, and where
    licence: str
    homepage: str
    size_bytes: int | None = None  # the published file's size where it is pinned; None where only the cap is known

    @property
    def layout(self) -> str:
        return "official" if self.source == "official" else "paper"

    def preprocessing(self) -> Preprocessing:
        return Preprocessing.imagenet_bgr_255() if self.source == "official" else Preprocessing.imagenet()

    @property
    def label(self) -> str:
        return f"ImageNet-1k g={self.groups} ({self.width:g}x, {self.source})"


_MEGVII_REPO = "https://github.com/DavidBlavid/ShufflenetDemo/raw/91c592561ecb3512b465db1e2c01cedb0f5cbad0"
_MEGVII_HOME = "https://github.com/megvii-model/ShuffleNet-Series (ShuffleNetV1)"
_OSMR_RELEASES = "https://github.com/osmr/imgclsmob/releases/download"


def _official(groups: int, sha256: str, size: int, top1_error: float) -> ImageNetCheckpoint:
    return ImageNetCheckpoint(
        name=f"imagenet_official_g{groups}_w0.5", source="official", groups=groups, width=0.5,
        url=f"{_MEGVII_REPO}/weights/ShuffleNetV1/Group{groups}/models/0.5x.pth.tar",
        file_name=f"megvii_shufflenetv1_g{groups}_0.5x.pth.tar", max_bytes=size + (1 << 20), sha256=sha256,
        sha1=None, top1_error_percent=top1_error, top5_error_percent=None,
        reported=f"ImageNet-1k top-1 error {top1_error}% (single 224x224 centre crop), reported in the README of "
                 f"megvii-model/ShuffleNet-Series, ShuffleNetV1",
        licence="MIT (megvii-model/ShuffleNet-Series)", homepage=_MEGVII_HOME, size_bytes=size)


def _osmr(groups: int, width: float, tag: str, error: str, sha1: str, sha256: str | None = None,
          ) -> ImageNetCheckpoint:
    suffix = {1.0: "w1", 0.5: "wd2", 0.25: "wd4"}[width]
    stem = f"shufflenet_g{groups}_{suffix}-{error}-{sha1[:8]}"
    return ImageNetCheckpoint(
        name=f"imagenet_osmr_g{groups}_w{width:g}", source="osmr", groups=groups, width=width,
        url=f"{_OSMR_RELEASES}/{tag}/{stem}.pth.zip", file_name=f"{stem}.pth", max_bytes=40 << 20,
        sha256=sha256, sha1=sha1, top1_error_percent=None, top5_error_percent=int(error) / 100,
        reported=f"error {int(error) / 100:.2f}% as published in the osmr/imgclsmob file name ({stem}); "
                 f"imgclsmob's file names carry the ImageNet-1k top-5 error",
        licence="MIT (osmr/imgclsmob)", homepage="https://github.com/osmr/imgclsmob")


CATALOGUE: dict[str, ImageNetCheckpoint] = {c.name: c for c in (
    _official(3, "da5df689f1d8f278fd1446e73f3a63aa7809206fadc6678bfd7580aad412abde", 2_977_667, 42.7),
    _official(8, "324922040c0ee642ce7168f32259aca0c9e16baf6b2abade4122edff6ba58382", 4_179_611, 41.2),
    _osmr(3, 0.25, "v0.0.135", "3653", "6abdd65e087e71f80345415cdf7ada6ed2762d60",
          "c820fd006ff553c05eff4c1f8137a74339d5a9908e444429b61b5965d1929f34"),
    _osmr(1, 0.25, "v0.0.134", "3729", "47dbd0f279da6d3056079bb79ad39cabbb3b9415"),
    _osmr(1, 0.5, "v0.0.174", "2261", "dae4bdadd7d48bee791dff2a08cd697cff0e9320"),
    _osmr(3, 0.5, "v0.0.167", "2080", "ccaacfc8d9ac112c6143269df6e258fd55b662a7"),
    _osmr(1, 1.0, "v0.0.223", "1389", "4cfb65a30761fe548e0b5afbb5d89793ec41e4e9"),
    _osmr(3, 1.0, "v0.0.244", "1348", "ce54f64ecff87556a4303380f46abaaf649eb308"),
)}
# What `--all` and the sidebar's one button install: the official 0.5x pair, osmr's 0.25x g=3, and osmr's 1x g=1
# and g=3, the paper's own headline pair (Table 1: 144 vs 240 channels at Stage 2).
RECOMMENDED: tuple[str, ...] = ("imagenet_official_g3_w0.5", "imagenet_official_g8_w0.5", "imagenet_osmr_g3_w0.25",
                                "imagenet_osmr_g1_w1", "imagenet_osmr_g3_w1")


def download_size_text(checkpoints: list[ImageNetCheckpoint]) -> str:
    """How much downloading these checkpoints takes: the published sizes where the catalogue pins them, the
    download cap ("at most") where it does not."""
    known = [c for c in checkpoints if c.size_bytes is not None]
    capped = [c for c in checkpoints if c.size_bytes is None]
    parts = []
    if known:
        parts.append(", ".join(f"{c.size_bytes / 1e6:.1f} MB for {c.label}" for c in known)
                     + (f" ({sum(c.size_bytes for c in known) / 1e6:.1f} MB together)" if len(known) > 1 else ""))
    if capped:
        parts.append(", ".join(f"at most {c.max_bytes / 1e6:.0f} MB for {c.label}" for c in capped)
                     + (", whose sizes the catalogue does not pin (the download caps)" if len(capped) > 1
                        else ", whose size the catalogue does not pin (the download cap)"))
    return "Download: " + "; ".join(parts)


def find_checkpoint(groups: int, width: float, source: str | None = None) -> ImageNetCheckpoint:
    """The catalogue entry for g and width; the official checkpoint where one exists unless `source` says."""
    matches = [c for c in CATALOGUE.values()
               if c.groups == groups and c.width == width and source in (None, c.source)]
    if not matches:
        choices = ", ".join(f"g={c.groups} width {c.width:g} ({c.source})" for c in CATALOGUE.values())
        wanted = f" from {source}" if source else ""
        raise WeightsError(f"no published ImageNet weights for g={groups}, width {width:g}{wanted}; "
                           f"available: {choices}")
    return sorted(matches, key=lambda c: c.source != "official")[0]


# --- conversion -------------------------------------------------------------------------------------------

def _unit_names() -> list[str]:
    return [f"{stage}.unit{i + 1}" for stage, repeats in zip(STAGE_NAMES, STAGE_REPEATS) for i in range(repeats)]


# pytorchcv/imgclsmob module names -> ours
_OSMR_PARTS = {"compress_conv1": "compress_conv", "compress_bn1": "compress_bn", "dw_conv2": "depthwise_conv",
               "dw_bn2": "depthwise_bn", "expand_conv3": "expand_conv", "expand_bn3": "expand_bn"}
_OSMR_UNIT_KEY = re.compile(r"features\.stage(\d)\.unit(\d+)\.(\w+)\.(\w+)$")


def convert_imgclsmob_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename an imgclsmob/pytorchcv ShuffleNet state dict (`features.init_block...`,
    `features.stageN.unitM.compress_conv1...`, `output...`) to this package's names."""
    converted = {}
    for key, value in state.items():
        if key.startswith("features.init_block."):
            new_key = "stem." + key[len("features.init_block."):]
        elif key.startswith("output."):
            new_key = "classifier." + key[len("output."):]
        elif match := _OSMR_UNIT_KEY.match(key):
            stage, unit, part, tensor = match.groups()
            if part not in _OSMR_PARTS:
                raise WeightsError(f"unexpected layer {key!r} in the imgclsmob checkpoint")
            # imgclsmob numbers stages from 1; the paper (and we) from 2.
            new_key = f"stage{int(stage) + 1}.unit{unit}.{_OSMR_PARTS[part]}.{tensor}"
        else:
            raise WeightsError(f"unexpected key {key!r} in the imgclsmob checkpoint")
        converted[new_key] = value
    return converted


# The official code's Sequential indices -> ours (ReLU at index 2 of branch_main_1 has no tensors).
_MEGVII_PARTS = {"branch_main_1.0": "compress_conv", "branch_main_1.1": "compress_bn",
                 "branch_main_1.3": "depthwise_conv", "branch_main_1.4": "depthwise_bn",
                 "branch_main_2.0": "expand_conv", "branch_main_2.1": "expand_bn"}
_MEGVII_FIXED = {"first_conv.0": "stem.conv", "first_conv.1": "stem.bn", "classifier.0": "classifier"}
_MEGVII_KEY = re.compile(r"(?:features\.(\d+)\.(branch_main_\d\.\d)|(first_conv\.\d|classifier\.0))\.(\w+)$")


def convert_megvii_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename an official ShuffleNet v1 state dict (`module.first_conv.*`, `module.features.N.branch_main_1.*`,
    `module.classifier.0.weight`) to this package's names; the 16 features are the units in order."""
    units = _unit_names()
    converted = {}
    for key, value in state.items():
        bare = key.removeprefix("module.")
        match = _MEGVII_KEY.match(bare)
        if match is None:
            raise WeightsError(f"unexpected key {key!r} in the official ShuffleNet v1 checkpoint")
        index, part, fixed, tensor = match.groups()
        if fixed is not None:
            if fixed not in _MEGVII_FIXED:
                raise WeightsError(f"unexpected layer {key!r} in the official ShuffleNet v1 checkpoint")
            converted[f"{_MEGVII_FIXED[fixed]}.{tensor}"] = value
        elif part in _MEGVII_PARTS and int(index) < len(units):
            converted[f"{units[int(index)]}.{_MEGVII_PARTS[part]}.{tensor}"] = value
        else:
            raise WeightsError(f"unexpected layer {key!r} in the official ShuffleNet v1 checkpoint")
    return converted


def imagenet_classes() -> list[str]:
    """The 1000 ImageNet-1k class names, from torchvision's weights metadata (shipped, no download)."""
    from torchvision.models import ResNet18_Weights

    return list(ResNet18_Weights.IMAGENET1K_V1.meta["categories"])


def build_converted_model(checkpoint: ImageNetCheckpoint, payload: bytes) -> ShuffleNetV1:
    """Our model with the published tensors: refuses a checkpoint that does not fit the architecture exactly."""
    try:
        raw = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except Exception as error:  # unpickling errors come in many types
        raise WeightsError(f"{checkpoint.file_name} is not a loadable checkpoint ({error})") from error
    if checkpoint.source == "official":
        state = convert_megvii_state_dict(raw.get("state_dict", raw) if isinstance(raw, dict) else raw)
    else:
        state = convert_imgclsmob_state_dict(raw)
    model = ShuffleNetV1(ShuffleNetConfig(groups=checkpoint.groups, width=checkpoint.width, num_classes=1000,
                                          layout=checkpoint.layout))
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        raise WeightsError(f"{checkpoint.file_name} does not fit ShuffleNet v1 g={checkpoint.groups} "
                           f"{checkpoint.width:g}x: {str(error)[:300]}") from error
    return model.eval()


# --- download ---------------------------------------------------------------------------------------------

class SourceMissing(WeightsError):
    """The place asked holds no such file (no file in a folder, HTTP 404 or 410)."""


class MissingFromMirror(WeightsError):
    """The mirror holds no such file, and the publisher could not provide it either."""


def read_source(location: str, max_bytes: int, progress: Progress | None = None,
                timeout: float = TIMEOUT_S, deadline: float = DOWNLOAD_DEADLINE_S) -> bytes:
    """The bytes at a local path or an http(s) URL, refusing more than `max_bytes`, a silence longer than
    `timeout` and a transfer longer than `deadline` seconds. Raises WeightsError with the reason."""
    if not re.match(r"^https?://", location):
        path = Path(location)
        try:
            size = path.stat().st_size
            if size > max_bytes:
                raise WeightsError(f"{location} is {size:,} bytes, more than the {max_bytes:,} expected")
            data = path.read_bytes()
        except FileNotFoundError as error:
            raise SourceMissing(f"{location} does not exist") from error
        except OSError as error:
            raise WeightsError(f"cannot read {location} ({error.strerror or error})") from error
        if progress:
            progress(len(data), len(data))
        return data
    started = time.monotonic()
    try:
        with urllib.request.urlopen(location, timeout=timeout) as response:
            declared = response.headers.get("Content-Length")
            total = int(declared) if declared and declared.isdigit() else None
            if total is not None and total > max_bytes:
                raise WeightsError(f"{location} announces {total:,} bytes, more than the {max_bytes:,} expected")
            buffer = io.BytesIO()
            while chunk := response.read(CHUNK):
                buffer.write(chunk)
                if buffer.tell() > max_bytes:
                    raise WeightsError(f"{location} sent more than the {max_bytes:,} bytes expected")
                if time.monotonic() - started > deadline:
                    raise WeightsError(f"{location} took longer than {deadline:.0f} s")
                if progress:
                    progress(buffer.tell(), total)
            if total is not None and buffer.tell() != total:
                raise WeightsError(f"{location} ended after {buffer.tell():,} of {total:,} bytes")
            return buffer.getvalue()
    except WeightsError:
        raise
    except urllib.error.HTTPError as error:
        kind = SourceMissing if error.code in (404, 410) else WeightsError
        raise kind(f"{location} answered HTTP {error.code} ({error.reason})") from error
    except (urllib.error.URLError, OSError, TimeoutError, ValueError) as error:
        reason = getattr(error, "reason", None) or error
        raise WeightsError(f"could not download {location} ({reason})") from error


def mirror_location(mirror: str, file_name: str) -> str:
    """Where a mirror (folder or http(s) URL) keeps a published file."""
    if re.match(r"^https?://", mirror):
        return mirror.rstrip("/") + "/" + urllib.parse.quote(file_name)
    return str(Path(mirror).expanduser() / file_name)


def _payload(checkpoint: ImageNetCheckpoint, data: bytes, location: str) -> bytes:
    """The .pth bytes of a download (unzipped where osmr's release zips it), after its published hash matched."""
    if data[:2] == b"PK" and checkpoint.source == "osmr":
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                members = [m for m in archive.namelist() if m.endswith(".pth")]
                if len(members) != 1:
                    raise WeightsError(f"{location} holds {len(members)} .pth files, expected one")
                data = archive.read(members[0])
        except zipfile.BadZipFile as error:
            raise WeightsError(f"{location} is not a valid zip archive ({error})") from error
    if checkpoint.sha256 and hashlib.sha256(data).hexdigest() != checkpoint.sha256:
        raise WeightsError(f"{location}: sha256 mismatch (expected {checkpoint.sha256}); truncated or altered")
    if checkpoint.sha1 and hashlib.sha1(data).hexdigest() != checkpoint.sha1:
        raise WeightsError(f"{location}: sha1 mismatch (expected {checkpoint.sha1}); truncated or altered")
    return data


def download_checkpoint(checkpoint: ImageNetCheckpoint, mirror: str | None = None,
                        progress: Progress | None = None, timeout: float = TIMEOUT_S) -> tuple[bytes, str]:
    """(verified .pth bytes, where they came from): the mirror first (when given), then the publisher. Raises
    MissingFromMirror when the mirror lacks the file and the publisher fails too, else WeightsError."""
    locations = ([mirror_location(mirror, checkpoint.file_name)] if mirror else []) + [checkpoint.url]
    failures, mirror_lacks_it = [], False
    for location in locations:
        try:
            data = read_source(location, checkpoint.max_bytes, progress, timeout)
            return _payload(checkpoint, data, location), location
        except WeightsError as error:
            mirror_lacks_it = mirror_lacks_it or (isinstance(error, SourceMissing) and location != checkpoint.url)
            failures.append(str(error))
    raise (MissingFromMirror if mirror_lacks_it else WeightsError)("; ".join(failures))


def fetch_imagenet(checkpoint: ImageNetCheckpoint, fetched_dir: Path | None = None, mirror: str | None = None,
                   progress: Progress | None = None, timeout: float = TIMEOUT_S) -> str:
    """Download (mirror first), verify, convert and register one checkpoint; returns its manifest name.

    Nothing is written unless every check passes; only a converted, verified file takes its final name.
    """
    fetched_dir = Path(fetched_dir or FETCHED_DIR)
    mirror = mirror if mirror is not None else (os.environ.get(MIRROR_ENV) or None)
    try:
        payload, origin = download_checkpoint(checkpoint, mirror, progress, timeout)
    except WeightsError as error:
        hint = "" if mirror else f" Offline? Point --mirror (or {MIRROR_ENV}) at a folder holding " \
                                 f"{checkpoint.file_name}."
        raise type(error)(f"{checkpoint.name} was not installed: {error}.{hint} Nothing was changed; the "
                          f"CIFAR-10 models keep working.") from error
    model = build_converted_model(checkpoint, payload)
    try:
        fetched_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise WeightsError(f"cannot create {fetched_dir} ({error.strerror or error})") from error
    target = fetched_dir / f"{checkpoint.name}.pt"
    handle, temp = tempfile.mkstemp(dir=fetched_dir, prefix=f".{checkpoint.name}-", suffix=".pt.tmp")
    os.close(handle)
    try:
        buffer = io.BytesIO()
        torch.save(model.state_dict(), buffer)
        data = buffer.getvalue()
        Path(temp).write_bytes(data)
        os.chmod(temp, 0o644)
        os.replace(temp, target)
    finally:
        if os.path.exists(temp):
            os.remove(temp)
    preprocessing = checkpoint.preprocessing()
    write_manifest_entry(checkpoint.name, {
        "file": target.name,
        "sha256": hashlib.sha256(data).hexdigest(),
        "architecture": {"family": "ShuffleNet v1", "groups": checkpoint.groups, "width": checkpoint.width,
                         "shuffle": True, "num_classes": 1000, "layout": checkpoint.layout,
                         "parameters": count_parameters(model)},
        "dataset": "ImageNet-1k",
        "classes": imagenet_classes(),
        "preprocessing": preprocessing.to_dict(),
        "metrics": {"top1_error_percent_reported": checkpoint.top1_error_percent,
                    "top5_error_percent_reported": checkpoint.top5_error_percent,
                    "source": checkpoint.reported},
        "provenance": {"source": checkpoint.source, "url": checkpoint.url, "fetched_from": origin,
                       "published_sha256": checkpoint.sha256, "published_sha1": checkpoint.sha1,
                       "licence": checkpoint.licence, "homepage": checkpoint.homepage},
        "training": {"command": f"python -m shufflenet_viz weights fetch imagenet --groups {checkpoint.groups} "
                                f"--width {checkpoint.width:g} --source {checkpoint.source}",
                     "hardware": f"trained by the publisher ({checkpoint.homepage})"},
    }, fetched_dir)
    return checkpoint.name


# --- installing several at once, and who may --------------------------------------------------------------

INSTALLED, ALREADY_THERE, NOT_IN_MIRROR, FAILED = "installed", "already there", "not in the mirror", "failed"
EXIT_ALL, EXIT_SOME, EXIT_NONE = 0, 1, 2  # exit statuses of a fetch: every model asked for is installed, some, none


@dataclass(frozen=True)
class InstallOutcome:
    """What became of one model asked for: its name, one of INSTALLED, ALREADY_THERE, NOT_IN_MIRROR, FAILED,
    and why (where it came from, or the reason it could not be had)."""

    name: str
    status: str
    detail: str

    @property
    def usable(self) -> bool:
        return self.status in (INSTALLED, ALREADY_THERE)

    def line(self) -> str:
        """The outcome as one line, as the command line prints it."""
        return f"{self.status:17s}  {self.name:26s} {self.detail}"


def install_checkpoints(checkpoints: list[ImageNetCheckpoint], fetched_dir: Path | None = None,
                        mirror: str | None = None, progress_for: Callable[[ImageNetCheckpoint], Progress] | None = None,
                        timeout: float = TIMEOUT_S) -> list[InstallOutcome]:
    """Install each checkpoint that is not installed yet (`fetch_imagenet`), one after the other; a model that
    cannot be had is reported and the others are still tried."""
    fetched_dir = Path(fetched_dir or FETCHED_DIR)
    present = verify_all(fetched_dir)[0]
    outcomes = []
    for checkpoint in checkpoints:
        if checkpoint.name in present:
            outcomes.append(InstallOutcome(checkpoint.name, ALREADY_THERE, f"in {fetched_dir}"))
            continue
        try:
            fetch_imagenet(checkpoint, fetched_dir, mirror, progress_for(checkpoint) if progress_for else None,
                           timeout)
        except WeightsError as error:
            why = str(error).removeprefix(f"{checkpoint.name} was not installed: ")
            outcomes.append(InstallOutcome(checkpoint.name, NOT_IN_MIRROR if isinstance(error, MissingFromMirror)
                                           else FAILED, why))
        else:
            origin = read_manifest(fetched_dir)[checkpoint.name]["provenance"]["fetched_from"]
            outcomes.append(InstallOutcome(checkpoint.name, INSTALLED, f"from {origin} into {fetched_dir}"))
    return outcomes


def exit_status(outcomes: list[InstallOutcome]) -> int:
    """EXIT_ALL when every model asked for is installed (now or before), EXIT_SOME when some are, else EXIT_NONE."""
    usable = sum(outcome.usable for outcome in outcomes)
    return EXIT_ALL if usable == len(outcomes) else EXIT_SOME if usable else EXIT_NONE


_SWITCH_WORDS = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False,
                 "off": False}


def parse_switch(value: object) -> bool:
    """An on/off setting from the environment or a settings file (true/false, 1/0, yes/no, on/off); raises
    ValueError for anything else."""
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word not in _SWITCH_WORDS:
        raise ValueError(f"{value!r} is not on or off (true/false, 1/0, yes/no, on/off)")
    return _SWITCH_WORDS[word]


def listens_on_loopback_only(address: str | None) -> bool:
    """Whether a server bound to `address` (Streamlit's server.address; unset means every interface) can be
    reached from this machine only."""
    if not address:
        return False
    if address.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(address.strip().strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to any interface
        return False


def install_allowed(address: str | None, owner_switch: bool | None) -> bool:
    """Whether the app offers its install button: as the owner's switch says where it is set, else only on a
    server that listens on loopback alone (the owner's own machine). Nothing a visitor sends decides it."""
    return owner_switch if owner_switch is not None else listens_on_loopback_only(address)
