"""Opt-in ImageNet-1k weights: the pretrained ShuffleNet v1 of the osmr/imgclsmob project, converted.

This is the only code in the project that downloads anything, and only when a user asks for it with
`python -m shufflenet_viz weights fetch imagenet ...`. The download is checked against its published
sha1, converted to our module names, verified to fit our model, and only then moved into `weights/`.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from .model import ShuffleNetConfig, ShuffleNetV1
from .preprocess import Preprocessing
from .weights import WEIGHTS_DIR, WeightsError, sha256_file, write_manifest_entry

RELEASES_URL = "https://github.com/osmr/imgclsmob/releases/download"


@dataclass(frozen=True)
class PublishedWeights:
    """One checkpoint of the imgclsmob model zoo."""

    name: str
    tag: str
    error: str  # the error value in the file name, in hundredths of a percent
    sha1: str  # of the .pth inside the zip

    @property
    def url(self) -> str:
        return f"{RELEASES_URL}/{self.tag}/{self.name}-{self.error}-{self.sha1[:8]}.pth.zip"


# (groups, width) -> published checkpoint
PUBLISHED: dict[tuple[int, float], PublishedWeights] = {
    (1, 1.0): PublishedWeights("shufflenet_g1_w1", "v0.0.223", "1389", "4cfb65a30761fe548e0b5afbb5d89793ec41e4e9"),
    (3, 1.0): PublishedWeights("shufflenet_g3_w1", "v0.0.244", "1348", "ce54f64ecff87556a4303380f46abaaf649eb308"),
    (1, 0.5): PublishedWeights("shufflenet_g1_wd2", "v0.0.174", "2261", "dae4bdadd7d48bee791dff2a08cd697cff0e9320"),
    (3, 0.5): PublishedWeights("shufflenet_g3_wd2", "v0.0.167", "2080", "ccaacfc8d9ac112c6143269df6e258fd55b662a7"),
    (1, 0.25): PublishedWeights("shufflenet_g1_wd4", "v0.0.134", "3729", "47dbd0f279da6d3056079bb79ad39cabbb3b9415"),
    (3, 0.25): PublishedWeights("shufflenet_g3_wd4", "v0.0.135", "3653", "6abdd65e087e71f80345415cdf7ada6ed2762d60"),
}

# pytorchcv/imgclsmob module names -> ours
_UNIT_PARTS = {"compress_conv1": "compress_conv", "compress_bn1": "compress_bn", "dw_conv2": "depthwise_conv",
               "dw_bn2": "depthwise_bn", "expand_conv3": "expand_conv", "expand_bn3": "expand_bn"}
_UNIT_KEY = re.compile(r"features\.stage(\d)\.unit(\d+)\.(\w+)\.(\w+)$")


def convert_imgclsmob_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename an imgclsmob/pytorchcv ShuffleNet state dict (`features.init_block...`,
    `features.stageN.unitM.compress_conv1...`, `output...`) to this package's names."""
    converted = {}
    for key, value in state.items():
        if key.startswith("features.init_block."):
            new_key = "stem." + key[len("features.init_block."):]
        elif key.startswith("output."):
            new_key = "classifier." + key[len("output."):]
        elif match := _UNIT_KEY.match(key):
            stage, unit, part, tensor = match.groups()
            if part not in _UNIT_PARTS:
                raise WeightsError(f"unexpected layer {key!r} in the imgclsmob checkpoint")
            # imgclsmob numbers stages from 1; the paper (and we) from 2.
            new_key = f"stage{int(stage) + 1}.unit{unit}.{_UNIT_PARTS[part]}.{tensor}"
        else:
            raise WeightsError(f"unexpected key {key!r} in the imgclsmob checkpoint")
        converted[new_key] = value
    return converted


def imagenet_classes() -> list[str]:
    """The 1000 ImageNet-1k class names, from torchvision's weights metadata (shipped, no download)."""
    from torchvision.models import ResNet18_Weights

    return list(ResNet18_Weights.IMAGENET1K_V1.meta["categories"])


def _download(url: str, progress: bool) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            total = int(response.headers.get("Content-Length") or 0)
            buffer = io.BytesIO()
            with tqdm(total=total or None, unit="B", unit_scale=True, desc="downloading",
                      disable=not progress) as bar:
                for chunk in iter(lambda: response.read(1 << 16), b""):
                    buffer.write(chunk)
                    bar.update(len(chunk))
            return buffer.getvalue()
    except (urllib.error.URLError, OSError, TimeoutError) as error:
        raise WeightsError(f"could not download {url} ({error}). Are you online? weights/ was left unchanged; "
                           f"the CIFAR-10 models keep working.") from error


def fetch_imagenet(groups: int, width: float, weights_dir: Path = WEIGHTS_DIR, progress: bool = True,
                   download=_download) -> str:
    """Download, verify, convert and register ImageNet weights; returns the manifest name."""
    if (groups, width) not in PUBLISHED:
        choices = ", ".join(f"g={g} width {w:g}" for g, w in PUBLISHED)
        raise WeightsError(f"no published ImageNet weights for g={groups}, width {width:g}; available: {choices}")
    published = PUBLISHED[(groups, width)]
    payload = download(published.url, progress)
    try:
        with zipfile.ZipFile(io.BytesIO(payload)) as archive:
            members = [m for m in archive.namelist() if m.endswith(".pth")]
            if len(members) != 1:
                raise WeightsError(f"{published.url} holds {len(members)} .pth files, expected one")
            pth = archive.read(members[0])
    except zipfile.BadZipFile as error:
        raise WeightsError(f"{published.url} is not a zip archive ({error}); weights/ was left unchanged") from error
    if hashlib.sha1(pth).hexdigest() != published.sha1:
        raise WeightsError(f"{published.url}: sha1 mismatch (expected {published.sha1}); weights/ was left unchanged")
    state = torch.load(io.BytesIO(pth), map_location="cpu", weights_only=True)
    classes = imagenet_classes()
    model = ShuffleNetV1(ShuffleNetConfig(groups=groups, width=width, num_classes=len(classes)))
    model.load_state_dict(convert_imgclsmob_state_dict(state))

    weights_dir = Path(weights_dir)
    name = f"imagenet_g{groups}_w{width:g}"
    target = weights_dir / f"{name}.pt"
    handle, temp = tempfile.mkstemp(dir=weights_dir, prefix=f".{name}-", suffix=".tmp")
    os.close(handle)
    try:
        torch.save(model.state_dict(), temp)
        digest = sha256_file(Path(temp))
        os.replace(temp, target)  # only a verified, converted file ever takes the final name
    finally:
        if os.path.exists(temp):
            os.remove(temp)
    error_percent = int(published.error) / 100
    write_manifest_entry(name, {
        "file": target.name,
        "sha256": digest,
        "architecture": {"family": "ShuffleNet v1", "groups": groups, "width": width, "shuffle": True,
                         "num_classes": len(classes)},
        "dataset": "ImageNet-1k",
        "classes": classes,
        "preprocessing": Preprocessing.imagenet().to_dict(),
        "metrics": {"published_top5_error_percent": error_percent,
                    "source": f"the error value published in the imgclsmob file name ({published.url})"},
        "training": {"command": f"python -m shufflenet_viz weights fetch imagenet --groups {groups} --width {width:g}",
                     "hardware": "trained by the osmr/imgclsmob project", "origin": published.url,
                     "origin_sha1": published.sha1},
    }, weights_dir)
    return name
