"""CIFAR-10 as uint8 tensors, from the shared JPEG archive, a folder of the same layout, or torchvision."""

from __future__ import annotations

import io
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

CIFAR10_CLASSES: tuple[str, ...] = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
# Where the team's machines and CI keep the archive, relative to the repository root.
DEFAULT_ARCHIVE = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "cifar10" / "cifar10_jpg.tar.gz"


class DatasetError(Exception):
    """The dataset source cannot be read; the message says what to do."""


@dataclass
class ImageSet:
    """Images as a (N, 3, 32, 32) uint8 tensor with their integer labels."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, count: int, seed: int = 0) -> "ImageSet":
        """`count` images drawn without replacement, the same ones for the same seed, classes balanced."""
        generator = torch.Generator().manual_seed(seed)
        per_class = count // len(CIFAR10_CLASSES)
        picks = []
        for label in range(len(CIFAR10_CLASSES)):
            members = torch.nonzero(self.labels == label).flatten()
            picks.append(members[torch.randperm(len(members), generator=generator)[:per_class]])
        index = torch.cat(picks).sort().values
        return ImageSet(self.images[index], self.labels[index])


def _decode(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"), dtype=np.uint8)


def _stack(samples: list[tuple[np.ndarray, int]]) -> ImageSet:
    images = torch.from_numpy(np.stack([s[0] for s in samples])).permute(0, 3, 1, 2).contiguous()
    return ImageSet(images, torch.tensor([s[1] for s in samples], dtype=torch.long))


def _split_and_label(member: str) -> tuple[str, int] | None:
    """('train' | 'test', label) for `.../<split>/<class>/NNNN.jpg`, else None."""
    parts = Path(member).parts
    if len(parts) < 3 or parts[-3] not in ("train", "test") or parts[-2] not in CIFAR10_CLASSES:
        return None
    return parts[-3], CIFAR10_CLASSES.index(parts[-2])


def _sorted_sets(found: dict[str, list[tuple[str, np.ndarray, int]]], splits: tuple[str, ...]) -> dict[str, ImageSet]:
    result = {}
    for split in splits:
        # Sorting by path makes the order (and so every seeded run) independent of the archive's order.
        samples = [(image, label) for _, image, label in sorted(found[split], key=lambda s: s[0])]
        if not samples:
            raise DatasetError(f"no {split}/<class>/*.jpg images found; expected the CIFAR-10 JPEG layout")
        result[split] = _stack(samples)
    return result


def _read_archive(path: Path, splits: tuple[str, ...]) -> dict[str, ImageSet]:
    found: dict[str, list] = {split: [] for split in splits}
    try:
        with tarfile.open(path, "r:*") as archive:
            for member in archive:
                key = _split_and_label(member.name) if member.isfile() else None
                if key is None or key[0] not in found:
                    continue
                found[key[0]].append((member.name, _decode(archive.extractfile(member).read()), key[1]))
    except (tarfile.TarError, OSError, EOFError) as error:
        raise DatasetError(f"cannot read the CIFAR-10 archive {path}: {error}") from error
    return _sorted_sets(found, splits)


def _read_folder(path: Path, splits: tuple[str, ...]) -> dict[str, ImageSet]:
    found: dict[str, list] = {split: [] for split in splits}
    for split in splits:
        for file in (path / split).glob("*/*.jpg"):
            key = _split_and_label(str(file.relative_to(path)))
            if key is not None:
                found[split].append((str(file), _decode(file.read_bytes()), key[1]))
    return _sorted_sets(found, splits)


def _read_torchvision(splits: tuple[str, ...]) -> dict[str, ImageSet]:
    from torchvision.datasets import CIFAR10

    root = Path.home() / ".cache" / "shufflenet_viz" / "cifar10"
    result = {}
    for split in splits:
        try:
            dataset = CIFAR10(str(root), train=split == "train", download=True)
        except Exception as error:  # torchvision raises URLError, RuntimeError, ... when offline
            raise DatasetError(f"cannot download CIFAR-10 with torchvision ({error}); "
                               f"use --data with the JPEG archive or folder instead") from error
        images = torch.from_numpy(dataset.data).permute(0, 3, 1, 2).contiguous()
        result[split] = ImageSet(images, torch.tensor(dataset.targets, dtype=torch.long))
    return result


def load_cifar10(source: str | Path = DEFAULT_ARCHIVE, splits: tuple[str, ...] = ("train", "test")) -> dict[str, ImageSet]:
    """CIFAR-10 splits from the JPEG archive, a folder with its layout, or `"torchvision"` (downloads)."""
    if str(source) == "torchvision":
        return _read_torchvision(splits)
    path = Path(source)
    if path.is_dir():
        return _read_folder(path, splits)
    if path.is_file():
        return _read_archive(path, splits)
    raise DatasetError(f"CIFAR-10 source {source} does not exist: pass the cifar10_jpg.tar.gz archive, "
                       f"a folder holding train/<class>/*.jpg and test/<class>/*.jpg, or 'torchvision'")
