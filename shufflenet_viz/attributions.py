"""Which input pixels (and which channel groups) a prediction rests on: Captum attributions, one call shape.

`attribute(model, x, method, target, **options)` runs Integrated Gradients, Saliency, SmoothGrad, Grad-CAM
or Occlusion and returns an `Attribution`; `attribute_groups` splits a unit's Layer Integrated Gradients
by channel group. Long methods report progress and can be cancelled between their internal batches.

The model is shared by all sessions and frozen: gradients flow to the input only. Every method but Saliency
runs on a private copy of the model (`private_copy`): Captum's layer methods (Grad-CAM, Layer Integrated
Gradients) put hooks on a layer that change what it returns and would fire for any session's forward pass on
the shared model, and the copies keep their weights channels-last, which makes the batched methods faster.
"""

from __future__ import annotations

import io
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
from captum.attr import (IntegratedGradients, LayerAttribution, LayerGradCam, LayerIntegratedGradients,
                         NoiseTunnel, Occlusion, Saliency)
from torch import nn

from .copies import folded_copy
from .features import UNGROUPED, ChannelGroups, channel_groups_at, point_module, point_name
from .model import ShuffleNetV1
from .preprocess import Preprocessing, to_model_input

METHODS: dict[str, str] = {
    "integrated_gradients": "Integrated Gradients",
    "saliency": "Saliency",
    "smoothgrad": "SmoothGrad",
    "gradcam": "Grad-CAM",
    "occlusion": "Occlusion",
}
# Every option a method accepts, with its default. `baseline` is None (all zeros after normalisation, i.e.
# the dataset's mean colour) or a tensor shaped like the input (see `black_baseline`).
DEFAULT_OPTIONS: dict[str, dict] = {
    "integrated_gradients": {"n_steps": 50, "baseline": None, "internal_batch_size": None},
    "saliency": {},
    "smoothgrad": {"base": "saliency", "nt_samples": 16, "stdevs": 0.2, "n_steps": 20, "seed": 0,
                   "internal_batch_size": None},
    "gradcam": {"unit": "stage4.unit4", "relu": True},
    # window / stride None: `occlusion_defaults` for the input's size (8 / 4 at 64 pixels, 28 / 14 at 224).
    "occlusion": {"window": None, "stride": None, "baseline": None, "windows_per_batch": 32},
}
SMOOTHGRAD_BASES = ("saliency", "integrated_gradients")
MAX_STEPS = 1000
# `internal_batch_size=None`: as many path steps (or noisy samples) per batch as make this many input pixels,
# at most MAX_BATCH: 50 steps of a 64x64 input, 25 of a 224x224 one. Larger batches run faster per step on the
# CPU (at 224x224 with the BNs folded, IG with 50 steps costs ~90 forward passes in batches of 4, ~53 in batches
# of 10, ~42 in batches of 25); the caps bound memory (a batch of 25 at 224x224 grows the process by ~330 MB
# at its peak for the widest official model, 0.5x g=8; 50 steps of the 1x CIFAR-10 g=3 model at 64x64 by
# ~80 MB), and each batch is one progress report and one chance to cancel.
BATCH_PIXELS = 25 * 224 * 224
MAX_BATCH = 50

Progress = Callable[[float], None]
ShouldStop = Callable[[], bool]


class Cancelled(Exception):
    """An attribution stopped because its `should_stop` said so; nothing was left attached to the model."""


@dataclass(frozen=True)
class Attribution:
    """One method's attribution of one target class for one input image."""

    method: str
    target: int
    values: np.ndarray  # (3, H, W) per input value, or (H, W) for Grad-CAM
    map: np.ndarray  # (H, W): the colour channels summed (Occlusion: its per-pixel score drop)
    signed: bool  # False for methods whose values are never negative (Saliency, Grad-CAM with ReLU)
    options: dict
    seconds: float
    convergence_delta: float | None = None  # Integrated Gradients: sum(attr) - (f(x) - f(baseline))
    extras: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        """The method's name for people, e.g. 'Integrated Gradients'."""
        return METHODS[self.method]

    @property
    def relative_delta(self) -> float | None:
        """|delta| as a fraction of |f(x) - f(baseline)|: how far IG is from completeness."""
        if self.convergence_delta is None:
            return None
        expected = float(self.values.sum()) - self.convergence_delta
        return abs(self.convergence_delta) / max(abs(expected), 1e-12)


@dataclass(frozen=True)
class GroupAttribution:
    """How much each channel group of a unit's output contributes to the target (Layer Integrated Gradients).

    A channel's attribution is its Layer IG summed over positions; channels are grouped by where they came from
    (`ChannelGroups.origin`: the group of the 1x1 GConv that computed them; a stride-2 unit's pooled shortcut
    keeps the group it had, and stage2.unit1's pooled stem channels have none). A group's size is the sum of
    its channels' |attribution|, so channels that speak for and against the class both count, and its share is
    that size over the size of all channels, the ungrouped ones included.
    """

    unit: str
    target: int
    per_channel: np.ndarray  # (C,) attribution of each output channel, summed over positions
    channel_groups: ChannelGroups
    convergence_delta: float
    seconds: float

    def _mask(self, group: int) -> np.ndarray:
        return self.channel_groups.origin == group

    @property
    def per_group(self) -> np.ndarray:
        """(g,) net attribution of each group: its channels' attributions summed with their signs."""
        return np.array([self.per_channel[self._mask(g)].sum() for g in range(self.channel_groups.groups)])

    @property
    def magnitude_per_group(self) -> np.ndarray:
        """(g,) size of each group's attribution: the sum of its channels' |attribution|."""
        return np.array([np.abs(self.per_channel[self._mask(g)]).sum() for g in range(self.channel_groups.groups)])

    @property
    def ungrouped(self) -> float | None:
        """Net attribution of the channels of no group (stage2.unit1's pooled stem channels); None if none."""
        mask = self._mask(UNGROUPED)
        return float(self.per_channel[mask].sum()) if mask.any() else None

    @property
    def ungrouped_magnitude(self) -> float | None:
        """The sum of |attribution| of the channels of no group; None where there are none."""
        mask = self._mask(UNGROUPED)
        return float(np.abs(self.per_channel[mask]).sum()) if mask.any() else None

    @property
    def total_magnitude(self) -> float:
        """The sum of |attribution| over every channel of the unit's output."""
        return float(np.abs(self.per_channel).sum())

    @property
    def shares(self) -> np.ndarray:
        """(g,) each group's sum of |attribution| as a fraction of all channels' (ungrouped ones included)."""
        return self.magnitude_per_group / max(self.total_magnitude, 1e-300)

    @property
    def ungrouped_share(self) -> float | None:
        """The ungrouped channels' fraction of all channels' sum of |attribution|; None where there are none."""
        magnitude = self.ungrouped_magnitude
        return None if magnitude is None else magnitude / max(self.total_magnitude, 1e-300)


def black_baseline(spec: Preprocessing) -> torch.Tensor:
    """A black image as the model receives it (normalised): (1, 3, S, S) at the model's input size."""
    return to_model_input(torch.zeros(1, 3, spec.native_size, spec.native_size, dtype=torch.uint8), spec)


def to_npy_bytes(array: np.ndarray) -> bytes:
    """An array as the bytes of a `.npy` file (for downloads)."""
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


class _MeteredForward:
    """The model's forward as Captum's `forward_func`: counts evaluated examples, reports the fraction done
    and checks `should_stop` before every batch Captum sends (the cancellation points)."""

    def __init__(self, model: nn.Module, total: int, progress: Progress | None, should_stop: ShouldStop | None,
                 channels_last: bool = False):
        self.model, self.total = model, max(1, total)
        self.progress, self.should_stop = progress, should_stop
        self.layout = torch.channels_last if channels_last else torch.contiguous_format
        self.done = 0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.should_stop is not None and self.should_stop():
            raise Cancelled(f"stopped after {self.done} of {self.total} model evaluations")
        # A private copy holds channels-last weights; an input in the same layout keeps every conv on the fast
        # path (gradients still reach x in its own layout).
        output = self.model(x.contiguous(memory_format=self.layout))
        self.done += x.shape[0]
        if self.progress is not None:
            self.progress(min(1.0, self.done / self.total))
        return output


# Idle private copies per shared model (weak keys: a model that is dropped takes its copies with it).
_idle_copies: "weakref.WeakKeyDictionary[nn.Module, list[nn.Module]]" = weakref.WeakKeyDictionary()
_copies_lock = threading.Lock()
_MAX_IDLE_COPIES = 2


def has_hooks(model: nn.Module) -> bool:
    """Whether any module of `model` carries a forward, forward-pre or backward hook."""
    return any(m._forward_hooks or m._forward_pre_hooks or m._backward_hooks or m._backward_pre_hooks
               for m in model.modules())


@contextmanager
def private_copy(model: nn.Module) -> Iterator[nn.Module]:
    """A copy of the shared model (same frozen weights, eval mode) that no other thread uses meanwhile.

    Its batch norms are folded into the convolutions and its weights stored channels-last (`copies.folded_copy`):
    batched passes with gradients (IG steps, SmoothGrad samples, Layer IG) and Occlusion's batches of windows
    run about 1.5-2.5x faster so on the CPU, and the shared model's own weights must not be touched. Copies are
    reused; one is only taken back when nothing is attached to it.
    """
    with _copies_lock:
        idle = _idle_copies.setdefault(model, [])
        copy = idle.pop() if idle else None
    if copy is None:
        copy = folded_copy(model, channels_last=True)
    try:
        yield copy
    finally:
        if not has_hooks(copy):
            with _copies_lock:
                idle = _idle_copies.setdefault(model, [])
                if len(idle) < _MAX_IDLE_COPIES:
                    idle.append(copy)


class _SeededNoiseTunnel(NoiseTunnel):
    """Captum's NoiseTunnel drawing its noise from its own generator instead of torch's global one, so a
    SmoothGrad is reproducible and concurrent sessions do not draw from (and perturb) the same stream."""

    def __init__(self, attribution_method, seed: int):
        super().__init__(attribution_method)
        self.generator = torch.Generator().manual_seed(seed)

    def _add_noise_to_input(self, input: torch.Tensor, stdev: float, nt_samples_partition: int) -> torch.Tensor:
        # Overrides a static method that Captum calls as `self._add_noise_to_input(...)`.
        expanded = (input.shape[0] * nt_samples_partition,) + tuple(input.shape[1:])
        noise = torch.randn(expanded, generator=self.generator, dtype=input.dtype) * stdev
        return input.repeat_interleave(nt_samples_partition, dim=0) + noise


def _checked_options(method: str, options: dict) -> dict:
    if method not in METHODS:
        raise ValueError(f"unknown attribution method {method!r}; choose one of {list(METHODS)}")
    allowed = DEFAULT_OPTIONS[method]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        names = ", ".join(allowed) or "none"
        raise ValueError(f"{METHODS[method]} has no option {', '.join(unknown)} (its options: {names})")
    merged = {**allowed, **options}
    for name in ("n_steps", "nt_samples", "internal_batch_size", "window", "stride", "windows_per_batch"):
        if name in ("internal_batch_size", "window", "stride") and merged.get(name) is None:
            continue
        if name in merged and not (isinstance(merged[name], int) and 1 <= merged[name] <= MAX_STEPS):
            raise ValueError(f"{name} must be a whole number from 1 to {MAX_STEPS}, got {merged[name]!r}")
    if method == "smoothgrad":
        if merged["base"] not in SMOOTHGRAD_BASES:
            raise ValueError(f"SmoothGrad averages one of {list(SMOOTHGRAD_BASES)}, got {merged['base']!r}")
        if not (isinstance(merged["stdevs"], (int, float)) and merged["stdevs"] > 0):
            raise ValueError(f"stdevs (the noise's standard deviation) must be positive, got {merged['stdevs']!r}")
        merged["stdevs"] = float(merged["stdevs"])
    return merged


def _checked_target(model: nn.Module, x: torch.Tensor, target: int | None) -> int:
    if x.dim() != 4 or x.shape[0] != 1 or x.shape[1] != 3:
        raise ValueError(f"attributions explain one image: x must be (1, 3, H, W), got {tuple(x.shape)}")
    if target is None:
        with torch.no_grad():
            return int(model(x).argmax(dim=1))
    classes = model.classifier.out_features if isinstance(model, ShuffleNetV1) else None
    if not isinstance(target, (int, np.integer)) or target < 0 or (classes is not None and target >= classes):
        raise ValueError(f"target must be a class index from 0 to {classes - 1 if classes else '?'}, got {target!r}")
    return int(target)


def _baseline(option: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor:
    if option is None:
        return torch.zeros_like(x)
    if not isinstance(option, torch.Tensor) or option.shape != x.shape:
        raise ValueError(f"baseline must be None or a tensor shaped like the input {tuple(x.shape)}")
    return option


def _layer_module(model: nn.Module, layer: str) -> nn.Module:
    # Any layer a user can pick on the feature maps page (`stem` or a unit), addressed by the same name.
    return point_module(model, point_name(layer, "output"))


def attribute(model: nn.Module, x: torch.Tensor, method: str, target: int | None = None,
              progress: Progress | None = None, should_stop: ShouldStop | None = None,
              **options) -> Attribution:
    """Attribute the `target` class score (None: the predicted class) to the pixels of `x` (1, 3, H, W).

    `method` is a key of METHODS; `options` override DEFAULT_OPTIONS[method]. `progress(fraction)` is called
    after each internal batch and `should_stop()` before each; when it returns True, `Cancelled` is raised.
    """
    options = _checked_options(method, options)
    target = _checked_target(model, x, target)
    if method == "occlusion":
        sized = occlusion_defaults(x.shape[-1])
        options = {**options, **{name: options[name] or sized[name] for name in ("window", "stride")}}
    x = x.detach()
    started = time.perf_counter()
    run = {"integrated_gradients": _integrated_gradients, "saliency": _saliency, "smoothgrad": _smoothgrad,
           "gradcam": _gradcam, "occlusion": _occlusion}[method]
    values, summary, delta, extras = run(model, x, target, options, progress, should_stop)
    if progress is not None:
        progress(1.0)
    return Attribution(method, target, values, summary, carries_sign(method, options), options,
                       time.perf_counter() - started, delta, extras)


def carries_sign(method: str, options: dict | None = None) -> bool:
    """Whether `method` with these options (the rest at their defaults) gives values of both signs: Saliency is
    the size of a gradient, SmoothGrad over Saliency an average of such sizes, and Grad-CAM with its ReLU keeps
    only the positive part."""
    options = {**DEFAULT_OPTIONS[method], **(options or {})}
    if method == "saliency":
        return False
    if method == "smoothgrad":
        return options["base"] != "saliency"
    if method == "gradcam":
        return not options["relu"]
    return True


def colour_legend(method: str, options: dict | None = None) -> str:
    """What the overlay's colours mean for `method` with these options: for and against the class where the
    method carries a sign, a size without direction where it does not."""
    if carries_sign(method, options):
        return "Orange: pixels that speak **for** the class, blue: **against** it; transparent: no effect."
    if method == "gradcam":
        return ("Grad-CAM carries no sign here: its ReLU keeps only the positive part, so orange marks where the "
                "unit saw evidence **for** the class and transparent marks none; there is no blue.")
    source = "Saliency" if method == "saliency" else "SmoothGrad over Saliency"
    return (f"{source} carries no sign: it is the size of the gradient, so orange marks where a small change would "
            "move the score most, in either direction, and transparent marks no effect; there is no blue.")


def _batch_size(option: int | None, x: torch.Tensor, count: int) -> int:
    """Examples per internal batch: the option, or what fits BATCH_PIXELS; never more than `count`."""
    size = option if option is not None else max(1, min(MAX_BATCH, BATCH_PIXELS // (x.shape[-1] * x.shape[-2])))
    return min(size, count)


def _as_numpy(attributions: torch.Tensor) -> np.ndarray:
    return attributions.detach()[0].double().numpy()


def _integrated_gradients(model, x, target, options, progress, should_stop):
    steps = options["n_steps"]
    with private_copy(model) as copy:
        # steps + 2: the delta also evaluates f(x) and f(baseline).
        meter = _MeteredForward(copy, steps + 2, progress, should_stop, channels_last=True)
        attributions, delta = IntegratedGradients(meter).attribute(
            x, baselines=_baseline(options["baseline"], x), target=target, n_steps=steps,
            internal_batch_size=_batch_size(options["internal_batch_size"], x, steps),
            return_convergence_delta=True)
    values = _as_numpy(attributions)
    return values, values.sum(axis=0), float(delta.sum()), {}


def _saliency(model, x, target, options, progress, should_stop):
    meter = _MeteredForward(model, 1, progress, should_stop)
    values = _as_numpy(Saliency(meter).attribute(x.requires_grad_(), target=target, abs=True))
    return values, values.sum(axis=0), None, {}


def _smoothgrad(model, x, target, options, progress, should_stop):
    samples, base = options["nt_samples"], options["base"]
    with private_copy(model) as copy:
        if base == "saliency":
            meter = _MeteredForward(copy, samples, progress, should_stop, channels_last=True)
            tunnel = _SeededNoiseTunnel(Saliency(meter), options["seed"])
            # Noisy samples per batch: at most 8 by default, so that a long SmoothGrad reports progress.
            per_batch = _batch_size(options["internal_batch_size"] or min(8, _batch_size(None, x, samples)), x,
                                    samples)
            attributions = tunnel.attribute(x, nt_type="smoothgrad", nt_samples=samples, stdevs=options["stdevs"],
                                            nt_samples_batch_size=per_batch, target=target, abs=True)
        else:
            steps = options["n_steps"]
            meter = _MeteredForward(copy, samples * steps, progress, should_stop, channels_last=True)
            tunnel = _SeededNoiseTunnel(IntegratedGradients(meter), options["seed"])
            # One noisy sample at a time, its IG steps batched: bounded memory whatever the settings.
            attributions = tunnel.attribute(x, nt_type="smoothgrad", nt_samples=samples, stdevs=options["stdevs"],
                                            nt_samples_batch_size=1, target=target, n_steps=steps,
                                            internal_batch_size=_batch_size(options["internal_batch_size"], x, steps))
    values = _as_numpy(attributions)
    return values, values.sum(axis=0), None, {}


def _gradcam(model, x, target, options, progress, should_stop):
    with private_copy(model) as copy:
        meter = _MeteredForward(copy, 1, progress, should_stop, channels_last=True)
        cam = LayerGradCam(meter, _layer_module(copy, options["unit"])).attribute(
            x, target=target, relu_attributions=options["relu"])
    upsampled = LayerAttribution.interpolate(cam, tuple(x.shape[-2:]), interpolate_mode="bilinear")
    values = upsampled.detach()[0, 0].double().numpy()
    return values, values, None, {"unit_map": cam.detach()[0, 0].double().numpy()}


def occlusion_windows(size: int, window: int, stride: int) -> int:
    """How many window positions Occlusion evaluates on a size x size input.

    Per axis Captum places ceil((size - window) / stride) + 1 windows: where the stride does not divide the
    rest, one more window sits clipped against the far edge, so every pixel is covered.
    """
    if window > size:
        raise ValueError(f"the occlusion window ({window}) must not be larger than the image ({size})")
    return (-(-(size - window) // stride) + 1) ** 2


def occlusion_defaults(size: int) -> dict[str, int]:
    """The default window and stride for a size x size input: an eighth of the side (even), half of it as the
    stride, so the count of windows stays the same at every input size (15 x 15 = 225 at 64 and at 224 pixels)."""
    window = max(2, 2 * round(size / 16))
    return {"window": window, "stride": max(1, window // 2)}


def _occlusion(model, x, target, options, progress, should_stop):
    window, stride = options["window"], options["stride"]
    windows = occlusion_windows(x.shape[-1], window, stride)
    total = windows + 1  # + the unoccluded image
    with private_copy(model) as copy, torch.no_grad():  # Occlusion needs scores only
        meter = _MeteredForward(copy, total, progress, should_stop, channels_last=True)
        attributions = Occlusion(meter).attribute(
            x, sliding_window_shapes=(3, window, window), strides=(3, stride, stride), target=target,
            baselines=_baseline(options["baseline"], x), perturbations_per_eval=options["windows_per_batch"])
    values = _as_numpy(attributions)
    # The window covers all three colour channels, so each channel holds the same score drop.
    return values, values[0], None, {"windows": windows, "evaluations": meter.done}


def attribute_groups(model: nn.Module, x: torch.Tensor, unit: str, target: int | None = None,
                     n_steps: int = 50, baseline: torch.Tensor | None = None, internal_batch_size: int | None = None,
                     progress: Progress | None = None, should_stop: ShouldStop | None = None) -> GroupAttribution:
    """Layer Integrated Gradients on the output of `unit`, summed per output channel and per channel group."""
    if not unit.startswith("stage"):
        raise ValueError(f"channel groups exist in the units only (stage2.unit1 ... stage4.unit4), not in {unit!r}")
    _checked_options("integrated_gradients", {"n_steps": n_steps, "internal_batch_size": internal_batch_size})
    target = _checked_target(model, x, target)
    x = x.detach()
    started = time.perf_counter()
    with private_copy(model) as copy:
        layer = _layer_module(copy, unit)
        # Captum runs the input and the baseline once each to find the layer's end points, then the steps.
        meter = _MeteredForward(copy, n_steps + 4, progress, should_stop, channels_last=True)
        attributions, delta = LayerIntegratedGradients(meter, layer).attribute(
            x, baselines=_baseline(baseline, x), target=target, n_steps=n_steps,
            internal_batch_size=_batch_size(internal_batch_size, x, n_steps), return_convergence_delta=True)
    if progress is not None:
        progress(1.0)
    per_channel = attributions.detach()[0].double().sum(dim=(1, 2)).numpy()
    return GroupAttribution(unit, target, per_channel, channel_groups_at(model, point_name(unit, "output")),
                            float(delta.sum()), time.perf_counter() - started)


def describe_groups(result: GroupAttribution) -> str:
    """The per-group result in words, every number taken from `result` (the caption under the bars)."""
    groups = result.channel_groups.groups
    shares = [f"group {g + 1} {share:.0%}" for g, share in enumerate(result.shares)]
    nets = [f"group {g + 1} {net:+.3g}" for g, net in enumerate(result.per_group)]
    if result.ungrouped is not None:
        count = int((result.channel_groups.origin == UNGROUPED).sum())
        shares.append(f"the {count} pooled stem channels (no group) {result.ungrouped_share:.0%}")
        nets.append(f"stem channels {result.ungrouped:+.3g}")
    grouped_share = 1.0 - (result.ungrouped_share or 0.0)
    if groups > 1:
        top = int(np.argmax(result.shares))
        lead = (f"Group {top + 1} holds {result.shares[top]:.0%} of the sum of |channel attribution| "
                f"({', '.join(shares)}; an even split over the {groups} groups would give each "
                f"{grouped_share / groups:.0%}).")
    else:
        lead = f"With g=1 the unit's channels form one group: {', '.join(shares)} of the sum of |channel attribution|."
    return (f"{lead} Net, for minus against the class: {', '.join(nets)}. "
            f"Convergence delta {result.convergence_delta:+.1e}.")


def describe_occlusion(sizes: dict[str, int], window: int, stride: int) -> str:
    """How many window positions each model's Occlusion evaluates, by name (input side in pixels)."""
    parts = []
    for name, size in sizes.items():
        if window > size:
            parts.append(f"{name}: the {window}-pixel window does not fit its {size}x{size} input")
            continue
        per_axis = -(-(size - window) // stride) + 1
        parts.append(f"{name}: {per_axis} x {per_axis} = {occlusion_windows(size, window, stride):,} window "
                     f"positions on {size}x{size}")
    return "; ".join(parts) + " (plus one pass of the whole picture)."
