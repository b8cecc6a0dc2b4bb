"""Classify an image with a loaded model: probabilities, top-k and the time the forward pass took."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from .preprocess import preprocess_image
from .weights import LoadedModel


@dataclass(frozen=True)
class Classification:
    """One model's answer for one image."""

    model_name: str
    classes: tuple[str, ...]
    probabilities: np.ndarray  # (num_classes,), sums to 1
    forward_seconds: float

    def top(self, k: int = 5) -> list[tuple[str, float]]:
        """The k most likely classes with their probabilities, most likely first."""
        order = np.argsort(-self.probabilities, kind="stable")[:k]
        return [(self.classes[i], float(self.probabilities[i])) for i in order]

    @property
    def predicted_index(self) -> int:
        return int(np.argmax(self.probabilities))

    @property
    def predicted_class(self) -> str:
        return self.classes[self.predicted_index]


def classify_tensor(loaded: LoadedModel, x: torch.Tensor) -> Classification:
    """Classify an already preprocessed (1, 3, S, S) input."""
    with torch.inference_mode():
        started = time.perf_counter()
        logits = loaded.model(x)
        elapsed = time.perf_counter() - started
    probabilities = torch.softmax(logits.double(), dim=1)[0].numpy()
    return Classification(loaded.name, loaded.classes, probabilities, elapsed)


def classify(loaded: LoadedModel, image: Image.Image) -> Classification:
    """Preprocess an RGB image as the model's manifest says and classify it."""
    return classify_tensor(loaded, preprocess_image(image, loaded.preprocessing))
