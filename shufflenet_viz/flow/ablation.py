"""The shuffle ablation: a loaded model with its shuffles off, and the accuracies its manifest entry stores."""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..copies import rebuilt
from ..weights import LoadedModel, freeze


def without_shuffle(loaded: LoadedModel) -> LoadedModel:
    """A copy of a loaded model with every channel shuffle off (the shared model is not touched). The copy shares
    the frozen, read-only weight tensors with the model: only the modules are new, which saves time and memory."""
    return replace(loaded, model=freeze(rebuilt(loaded.model, shuffle=False, share=True)))


@dataclass(frozen=True)
class AblationAccuracy:
    """Accuracy of one model's weights with and without the shuffle, and where the numbers come from."""

    images: str
    with_shuffle: float
    without_shuffle: float
    source: str


def manifest_ablation(loaded: LoadedModel) -> AblationAccuracy | None:
    """The ablation numbers the training command stored in the manifest, or None when it has none."""
    ablation = loaded.entry.get("metrics", {}).get("ablation")
    try:
        return AblationAccuracy(str(ablation["images"]), float(ablation["accuracy_with_shuffle"]),
                                float(ablation["accuracy_without_shuffle"]),
                                "stored in the weights manifest by the training command when the weights were made")
    except (TypeError, KeyError, ValueError):
        return None
