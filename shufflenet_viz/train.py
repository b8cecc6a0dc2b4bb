"""Train ShuffleNet v1 on CIFAR-10 at the paper's architecture and register the result in the manifest.

Images are augmented at 32x32 (random crop with 4-pixel padding, horizontal flip) on the training device,
then go through the same `to_model_input` (upsample to the training size, normalise) that inference uses.
"""

from __future__ import annotations

import math
import os
import platform
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from .data import CIFAR10_CLASSES, ImageSet, load_cifar10
from .copies import with_shuffle
from .model import build_model, count_parameters
from .preprocess import Preprocessing, to_model_input
from .weights import freeze, sha256_file, write_manifest_entry

ABLATION_SUBSET = 1000  # test images for the quick with/without-shuffle comparison the app quotes


@dataclass
class TrainSettings:
    groups: int
    width: float = 1.0
    shuffle: bool = True
    data: str = ""
    epochs: int = 30
    size: int = 224
    seed: int = 0
    out: Path = Path("weights/model.pt")
    batch_size: int = 256
    lr: float = 0.4  # peak of the one-cycle schedule at batch 256, scaled linearly with the batch
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1


def augment(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random 32x32 crop of the 4-pixel zero-padded image and a random horizontal flip, batched."""
    n, _, h, w = images.shape
    padded = F.pad(images, (4, 4, 4, 4))
    dy = torch.randint(0, 9, (n,), generator=generator).to(images.device)
    dx = torch.randint(0, 9, (n,), generator=generator).to(images.device)
    flip = (torch.rand(n, generator=generator) < 0.5).to(images.device)
    rows = dy[:, None] + torch.arange(h, device=images.device)  # (N, H)
    cols = dx[:, None] + torch.arange(w, device=images.device)  # (N, W)
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    batch = torch.arange(n, device=images.device)[:, None, None]
    return padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


@torch.no_grad()
def evaluate(model: torch.nn.Module, data: ImageSet, spec: Preprocessing, device: torch.device,
             batch_size: int = 500) -> dict:
    """Accuracy, per-class accuracy and the confusion matrix (rows: true class, columns: predicted)."""
    model.eval()
    classes = len(CIFAR10_CLASSES)
    confusion = torch.zeros(classes, classes, dtype=torch.long)
    for start in range(0, len(data), batch_size):
        x = to_model_input(data.images[start:start + batch_size].to(device), spec)
        with _autocast(device):
            predicted = model(_memory_format(x, device)).argmax(1).cpu()
        labels = data.labels[start:start + batch_size]
        confusion += torch.bincount(labels * classes + predicted, minlength=classes * classes).view(classes, classes)
    per_class = (confusion.diag().float() / confusion.sum(1).clamp(min=1)).tolist()
    return {
        "test_accuracy": round(confusion.diag().sum().item() / max(1, len(data)), 4),
        "per_class_accuracy": {name: round(acc, 4) for name, acc in zip(CIFAR10_CLASSES, per_class)},
        "confusion_matrix": confusion.tolist(),
        "test_images": len(data),
    }


def _autocast(device: torch.device):
    return torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else torch.autocast("cpu", enabled=False)


def _memory_format(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last) if device.type == "cuda" else x


def describe_hardware(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA), torch {torch.__version__}"
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"CPU: {cpu}, {torch.get_num_threads()} threads, torch {torch.__version__}"


def make_optimizer(model: torch.nn.Module, settings: TrainSettings, steps_per_epoch: int):
    """(optimizer, one-cycle schedule, peak learning rate) of the training recipe; weight decay on weights only."""
    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1]
    optimizer = torch.optim.SGD([{"params": decay, "weight_decay": settings.weight_decay},
                                 {"params": no_decay, "weight_decay": 0.0}],
                                lr=settings.lr, momentum=0.9, nesterov=True)
    peak_lr = settings.lr * settings.batch_size / 256
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=peak_lr, epochs=settings.epochs,
                                                   steps_per_epoch=steps_per_epoch, pct_start=0.25)
    return optimizer, schedule, peak_lr


def train_epoch(model: torch.nn.Module, optimizer, schedule, images: torch.Tensor, labels: torch.Tensor,
                spec: Preprocessing, generator: torch.Generator, settings: TrainSettings, desc: str = "epoch",
                progress: tqdm | None = None) -> float:
    """One pass over `images` in the order `generator` draws; returns the mean training loss.

    Every random draw comes from `generator`, so saving its state with the model, optimizer and schedule
    after an epoch is enough to resume bit for bit. `progress`, when given, advances by one per batch instead
    of a bar of the epoch's own.
    """
    device = images.device
    model.train()
    seen, loss_sum = 0, 0.0
    order = torch.randperm(len(labels), generator=generator).to(device)
    steps = math.ceil(len(labels) / settings.batch_size)
    batches = tqdm(range(steps), desc=desc, leave=False, file=sys.stderr,
                   disable=progress is not None or not sys.stderr.isatty())
    for step in batches:
        index = order[step * settings.batch_size:(step + 1) * settings.batch_size]
        x = to_model_input(augment(images[index], generator), spec)
        with _autocast(device):
            logits = model(_memory_format(x, device))
            loss = F.cross_entropy(logits.float(), labels[index], label_smoothing=settings.label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        seen += len(index)
        loss_sum += loss.item() * len(index)
        batches.set_postfix(loss=f"{loss.item():.3f}")
        if progress is not None:
            progress.update(1)
            progress.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
    return loss_sum / max(1, seen)


def train(settings: TrainSettings, command: str, log=print) -> dict:
    """Train, evaluate on the full test set, save the state dict and register it in the manifest."""
    torch.manual_seed(settings.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    splits = load_cifar10(settings.data)
    train_set, test_set = splits["train"], splits["test"]
    images = train_set.images.to(device)  # the whole dataset sits on the device: 150 MB as uint8
    labels = train_set.labels.to(device)
    spec = Preprocessing.cifar(settings.size)

    model = build_model(settings.groups, settings.width, len(CIFAR10_CLASSES), settings.shuffle).to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    steps_per_epoch = math.ceil(len(train_set) / settings.batch_size)
    optimizer, schedule, peak_lr = make_optimizer(model, settings, steps_per_epoch)
    generator = torch.Generator().manual_seed(settings.seed)
    log(f"training {model.config.name} ({count_parameters(model):,} parameters) on {describe_hardware(device)}: "
        f"{len(train_set)} images at {settings.size}x{settings.size}, {settings.epochs} epochs")

    started = time.time()
    for epoch in range(settings.epochs):
        epoch_start = time.time()
        mean_loss = train_epoch(model, optimizer, schedule, images, labels, spec, generator, settings,
                                desc=f"epoch {epoch + 1}/{settings.epochs}")
        rate = len(train_set) / (time.time() - epoch_start)
        accuracy = evaluate(model, test_set, spec, device)["test_accuracy"]
        log(f"epoch {epoch + 1}/{settings.epochs}: loss {mean_loss:.4f}, test accuracy {accuracy:.2%}, "
            f"{rate:,.0f} images/s")
    wall_time = time.time() - started

    model = freeze(model.float().to(memory_format=torch.contiguous_format))
    metrics = evaluate(model, test_set, spec, device)
    subset = test_set.subset(ABLATION_SUBSET, seed=0)
    metrics["source"] = (f"measured by the training command on the {len(test_set):,} CIFAR-10 test images "
                         f"at {settings.size}x{settings.size}")
    metrics["ablation"] = {
        "images": f"{ABLATION_SUBSET} CIFAR-10 test images (ImageSet.subset({ABLATION_SUBSET}, seed=0))",
        "accuracy_with_shuffle": evaluate(model, subset, spec, device)["test_accuracy"],
        "accuracy_without_shuffle": evaluate(with_shuffle(model, not settings.shuffle), subset, spec,
                                             device)["test_accuracy"],
    }
    out = Path(settings.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    temp = out.with_suffix(".pt.tmp")
    torch.save({k: v.cpu() for k, v in model.state_dict().items()}, temp)
    os.replace(temp, out)
    entry = {
        "file": out.name,
        "sha256": sha256_file(out),
        "architecture": {"family": "ShuffleNet v1", "groups": settings.groups, "width": settings.width,
                         "shuffle": settings.shuffle, "num_classes": len(CIFAR10_CLASSES),
                         "parameters": count_parameters(model)},
        "dataset": "CIFAR-10",
        "classes": list(CIFAR10_CLASSES),
        "preprocessing": spec.to_dict(),
        "metrics": metrics,
        "training": {"command": command, "epochs": settings.epochs, "seed": settings.seed,
                     "size": settings.size, "batch_size": settings.batch_size, "peak_lr": peak_lr,
                     "recipe": "SGD (Nesterov, momentum 0.9, weight decay 5e-4 on weights), one-cycle LR, "
                               "label smoothing 0.1, random crop (pad 4) + flip at 32x32 then upsample",
                     "hardware": describe_hardware(device), "wall_time_s": round(wall_time, 1),
                     "data": str(settings.data)},
    }
    weights_dir = out.parent
    write_manifest_entry(out.stem, entry, weights_dir)
    log(f"saved {out} (test accuracy {metrics['test_accuracy']:.2%}, {wall_time / 60:.1f} min) "
        f"and registered it in {weights_dir / 'manifest.json'}")
    return entry


def command_line(argv: list[str]) -> str:
    """The exact command that reproduces a run."""
    return "python -m shufflenet_viz " + shlex.join(argv)
