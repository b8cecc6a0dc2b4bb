"""The projected grid's facts: which photos both room models answered, where they agree, how confident each is,
and the sentences the grid shows, each chosen by those facts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .photos import Photo


@dataclass(frozen=True)
class GridSummary:
    """The approved photos both models answered, disagreements first (newest first within each group)."""

    models: tuple[str, str]
    ordered: tuple[Photo, ...]
    agreed: int
    waiting: int  # approved photos whose top-1s are still being computed
    mean_confidence: tuple[float, float] | None  # None without any answered photo

    @property
    def answered(self) -> int:
        return len(self.ordered)

    @property
    def disagreed(self) -> int:
        return self.answered - self.agreed

    def agrees(self, photo: Photo) -> bool:
        """Whether both models give this photo the same top-1."""
        left, right = (photo.predictions[name][0] for name in self.models)
        return left == right


def summarise(photos: Sequence[Photo], models: tuple[str, str]) -> GridSummary:
    """The grid's facts for these (approved) photos and the room's two models."""
    answered = [photo for photo in photos if all(name in photo.predictions for name in models)]
    same = [photo.predictions[models[0]][0] == photo.predictions[models[1]][0] for photo in answered]
    newest_first = sorted(zip(answered, same), key=lambda pair: (pair[1], -pair[0].created_at, pair[0].id))
    confidence = None
    if answered:
        confidence = tuple(sum(photo.predictions[name][1] for photo in answered) / len(answered)
                           for name in models)
    return GridSummary(models, tuple(photo for photo, _ in newest_first), sum(same), len(photos) - len(answered),
                       confidence)


def _photos(count: int) -> str:
    return f"{count} photo" if count == 1 else f"{count} photos"


def agreement_sentence(summary: GridSummary, labels: tuple[str, str]) -> str:
    """"On your 27 photos, g=1 and g=3 agreed on 19 (70%); the 8 where they did not come first." and its
    variants for no photo, full agreement and none."""
    left, right = labels
    if summary.answered == 0:
        return "No photo is on the grid yet."
    share = summary.agreed / summary.answered
    on = f"On your {_photos(summary.answered)}, {left} and {right}"
    if summary.disagreed == 0:
        return f"{on} agreed on every one." if summary.answered > 1 else f"{on} agreed."
    if summary.agreed == 0:
        return f"{on} agreed on none." if summary.answered > 1 else f"{on} disagreed."
    where = "the one where they did not comes" if summary.disagreed == 1 else \
        f"the {summary.disagreed} where they did not come"
    return f"{on} agreed on {summary.agreed} ({share:.0%}); {where} first."


def confidence_sentence(summary: GridSummary, labels: tuple[str, str]) -> str | None:
    """Each model's mean confidence in its top-1 over the answered photos, or None without any."""
    if summary.mean_confidence is None:
        return None
    (left, right), (left_mean, right_mean) = labels, summary.mean_confidence
    return f"Mean confidence in their answer: {left} {left_mean:.0%}, {right} {right_mean:.0%}."


def waiting_sentence(summary: GridSummary) -> str | None:
    """How many approved photos the models are still answering, or None when none."""
    if summary.waiting == 0:
        return None
    verb = "is" if summary.waiting == 1 else "are"
    return f"{_photos(summary.waiting)} {verb} being classified."
