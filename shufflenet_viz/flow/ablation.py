"""The shuffle ablation: a loaded model with its shuffles off, the accuracies its manifest entry stores, and how
to read them beside the paper's Table 3 row for the same width and g."""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..copies import rebuilt
from ..paper import TABLE3, ShuffleAblation
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
                                "measured on the test set when the model was trained and recorded with it")
    except (TypeError, KeyError, ValueError):
        return None


def paper_ablation(width: float, groups: int) -> ShuffleAblation | None:
    """The paper's Table 3 row for ShuffleNet at this width and g, or None when the paper trained no such pair."""
    return TABLE3.get((width, groups))


def _paper_row_text(width: float, groups: int) -> str:
    """What the paper's Table 3 says about the network of this width and g trained without shuffle, or that it
    has no such row."""
    row = paper_ablation(width, groups)
    if row is None:
        rows = ", ".join(f"{w:g}x g={g}" for w, g in TABLE3)
        return (f"The paper trained each variant on its own, but its Table 3 has no row for ShuffleNet {width:g}x "
                f"with g={groups} (its rows: {rows}).")
    difference = row.error_without_shuffle - row.error_with_shuffle
    outcome = (f"{abs(difference):.1f} points {'worse' if difference > 0 else 'better'}" if difference
               else "exactly as good")
    return (f"The paper trained each variant on its own, and its {row.model} trained without shuffle, which "
            f"learned to live without the exchange, was {outcome} ({row.error_without_shuffle:.1f}% vs "
            f"{row.error_with_shuffle:.1f}% top-1 error on ImageNet, Table 3).")


def shuffle_off_reading(width: float, groups: int) -> str:
    """How to read the accuracy of a model trained with the shuffle and tested with it off, beside the paper's
    Table 3 row for the same width and g."""
    return (f"**Read these numbers honestly.** The g={groups} model was trained *with* the shuffle; switching it off "
            "at test time hands every later layer channels in an order it never saw, so the drop measures the "
            "scrambling as much as the lost cross-group flow. " + _paper_row_text(width, groups))
