"""Preprocessing, one code path for training's test time and for inference on a user's photo.

An image goes (1) to the model's *native* pixels as uint8 (for CIFAR models: centre square crop, area
resize to 32x32; for ImageNet models: resize the short side to 256, centre crop 224), then (2) through
`to_model_input`: upsample to the size the model was trained at, put the channels in the order the model
was trained with, scale to [0, 1] (or keep 0-255), normalise. Training feeds its 32x32 CIFAR tensors through
the very same step (2), so "what the model sees" is exact.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.transforms import v2

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Preprocessing:
    """How a model wants its input; stored in the weights manifest."""

    kind: str  # "cifar": square crop -> area resize to native_size; "imagenet": resize_to -> centre crop
    native_size: int  # pixels of the uint8 image before upsampling (32 for CIFAR, 224 for ImageNet)
    input_size: int  # side of the tensor the network receives
    mean: tuple[float, float, float]  # in the units of max_value, in the model's channel order
    std: tuple[float, float, float]
    resize_to: int = 0  # ImageNet only: short side before the centre crop
    channel_order: str = "RGB"  # "BGR" for models trained on OpenCV-decoded images
    max_value: float = 1.0  # 1.0: pixels scaled to [0, 1]; 255.0: raw 0-255 values

    def __post_init__(self) -> None:
        if self.kind not in ("cifar", "imagenet"):
            raise ValueError(f"unknown preprocessing kind {self.kind!r}")
        if self.channel_order not in ("RGB", "BGR"):
            raise ValueError(f"channel_order must be 'RGB' or 'BGR', got {self.channel_order!r}")
        if self.max_value not in (1.0, 255.0):
            raise ValueError(f"max_value must be 1.0 or 255.0, got {self.max_value!r}")

    @classmethod
    def cifar(cls, input_size: int) -> "Preprocessing":
        return cls("cifar", 32, input_size, CIFAR10_MEAN, CIFAR10_STD)

    @classmethod
    def imagenet(cls) -> "Preprocessing":
        """torchvision's (and osmr's) ImageNet evaluation: RGB in [0, 1], normalised with the ImageNet mean/std."""
        return cls("imagenet", 224, 224, IMAGENET_MEAN, IMAGENET_STD, resize_to=256)

    @classmethod
    def imagenet_bgr_255(cls) -> "Preprocessing":
        """The official ShuffleNet code's evaluation: BGR, raw 0-255 values, no normalisation."""
        return cls("imagenet", 224, 224, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), resize_to=256, channel_order="BGR",
                   max_value=255.0)

    @classmethod
    def from_dict(cls, data: dict) -> "Preprocessing":
        return cls(kind=data["kind"], native_size=int(data["native_size"]), input_size=int(data["input_size"]),
                   mean=tuple(float(v) for v in data["mean"]), std=tuple(float(v) for v in data["std"]),
                   resize_to=int(data.get("resize_to", 0)), channel_order=str(data.get("channel_order", "RGB")),
                   max_value=float(data.get("max_value", 1.0)))

    def to_dict(self) -> dict:
        data = asdict(self)
        data["mean"], data["std"] = list(self.mean), list(self.std)
        data["steps"] = self.describe()
        return data

    def describe(self) -> str:
        if self.kind == "cifar":
            upsample = f" -> bilinear upsample to {self.input_size}x{self.input_size}" \
                if self.input_size != self.native_size else ""
            geometry = f"centre square crop -> area resize to {self.native_size}x{self.native_size}{upsample}"
        else:
            geometry = f"resize short side to {self.resize_to} (bilinear) -> centre crop {self.native_size}"
        order = " -> channels in BGR order" if self.channel_order == "BGR" else ""
        if self.max_value == 255.0:
            values = "values kept in 0-255"
        else:
            values = "scale to [0, 1]"
        normalise = "" if self.mean == (0.0, 0.0, 0.0) and self.std == (1.0, 1.0, 1.0) \
            else " -> normalise with mean and std"
        return f"{geometry}{order} -> {values}{normalise or ', no normalisation'}"


def to_native_pixels(image: Image.Image, spec: Preprocessing) -> torch.Tensor:
    """An RGB PIL image as the model's native uint8 pixels, (3, native, native)."""
    image = image.convert("RGB")
    if spec.kind == "cifar":
        side = min(image.size)
        left, top = (image.width - side) // 2, (image.height - side) // 2
        image = image.crop((left, top, left + side, top + side))
        image = image.resize((spec.native_size, spec.native_size), Image.Resampling.BOX)
    else:
        image = _imagenet_geometry(spec)(image)
    return torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1)


def _imagenet_geometry(spec: Preprocessing) -> v2.Compose:
    # torchvision's own evaluation geometry: short side to resize_to, then the centre crop.
    return v2.Compose([v2.Resize(spec.resize_to, interpolation=v2.InterpolationMode.BILINEAR, antialias=True),
                       v2.CenterCrop(spec.native_size)])


def upsample_pixels(pixels: torch.Tensor, spec: Preprocessing) -> torch.Tensor:
    """(N, 3, native, native) uint8 -> (N, 3, S, S) float in [0, 1] at the model's input size."""
    x = pixels.float() / 255.0
    if spec.input_size != x.shape[-1]:
        x = F.interpolate(x, size=(spec.input_size, spec.input_size), mode="bilinear", align_corners=False)
    return x


def to_model_input(pixels: torch.Tensor, spec: Preprocessing) -> torch.Tensor:
    """(N, 3, native, native) uint8 RGB -> the normalised (N, 3, S, S) float tensor the network receives."""
    x = upsample_pixels(pixels, spec)
    if spec.channel_order == "BGR":
        x = x.flip(1)
    if spec.max_value != 1.0:
        x = x * spec.max_value
    mean = torch.tensor(spec.mean, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(spec.std, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


def preprocess_image(image: Image.Image, spec: Preprocessing) -> torch.Tensor:
    """A PIL image as the (1, 3, S, S) tensor the model receives."""
    return to_model_input(to_native_pixels(image, spec).unsqueeze(0), spec)


def what_model_sees(image: Image.Image, spec: Preprocessing) -> np.ndarray:
    """The (S, S, 3) uint8 picture the model receives, before normalisation (to show users)."""
    x = upsample_pixels(to_native_pixels(image, spec).unsqueeze(0), spec)[0]
    return (x.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
