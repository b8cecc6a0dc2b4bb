"""Two sessions at once on the SAME shared model: each gets exactly what it gets alone, and afterwards no hook
is left on any module and every parameter is still frozen. Streamlit runs each session on its own thread;
the threads here stand in for them."""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import partial

import numpy as np
import pytest
import torch
from PIL import Image

from shufflenet_viz.attributions import attribute, attribute_groups
from shufflenet_viz.features import capture_features
from shufflenet_viz.preprocess import preprocess_image
from shufflenet_viz.runtime import configure_torch_threads

ATTRIBUTION_TOLERANCE = 1e-6
ROUNDS = 2  # each thread repeats its work, so the two really run side by side for a while


def picture(seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:48, 0:64] / 48.0
    base = np.stack([np.sin(x * (seed + 2)), np.cos(y * (seed + 3)), np.sin((x + y) * 4 + seed)], axis=-1)
    pixels = ((base + 1) * 110 + rng.normal(0, 10, base.shape)).clip(0, 255).astype(np.uint8)
    return Image.fromarray(pixels)


@pytest.fixture(scope="module")
def shared(cifar_pair):
    configure_torch_threads()
    return cifar_pair[1]  # g=3: the model with real shuffles and the largest layers


def features_and_gradcam(loaded, x) -> dict[str, np.ndarray]:
    """Session A: the feature maps page, a prediction, Grad-CAM and per-group attribution."""
    result = {f"feature {point}": t.numpy() for point, t in capture_features(loaded.model, x).items()}
    with torch.no_grad():
        result["logits"] = loaded.model(x).numpy()
    result["attr gradcam"] = attribute(loaded.model, x, "gradcam", 3, unit="stage3.unit4").values
    result["attr groups"] = attribute_groups(loaded.model, x, "stage4.unit3", 3, n_steps=8).per_channel
    return result


def integrated_gradients_and_features(loaded, x) -> dict[str, np.ndarray]:
    """Session B: Integrated Gradients, feature maps and SmoothGrad on another picture."""
    result = {"attr ig": attribute(loaded.model, x, "integrated_gradients", 5, n_steps=12,
                                   internal_batch_size=4).values}
    result.update({f"feature {point}": t.numpy() for point, t in capture_features(loaded.model, x).items()})
    result["attr smoothgrad"] = attribute(loaded.model, x, "smoothgrad", 5, nt_samples=4,
                                          internal_batch_size=2).values
    with torch.no_grad():
        result["logits"] = loaded.model(x).numpy()
    return result


def in_threads(jobs: list[Callable[[], dict]]) -> list[list[dict]]:
    """Run the jobs on their own threads, started together, each ROUNDS times; re-raise any failure."""
    barrier = threading.Barrier(len(jobs))
    results: list[list[dict]] = [[] for _ in jobs]
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            configure_torch_threads()  # as app.py does on every session's script thread
            barrier.wait()
            for _ in range(ROUNDS):
                results[index].append(jobs[index]())
        except BaseException as error:  # surfaced below with the test's own traceback
            errors.append(error)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


def assert_same(got: dict[str, np.ndarray], alone: dict[str, np.ndarray]) -> None:
    assert got.keys() == alone.keys()
    for key, value in alone.items():
        if key.startswith("attr "):
            assert np.abs(got[key] - value).max() <= ATTRIBUTION_TOLERANCE, key
        else:  # predictions and feature maps: bit for bit
            assert np.array_equal(got[key], value), key


def assert_untouched(model: torch.nn.Module) -> None:
    for name, module in model.named_modules():
        assert not module._forward_hooks and not module._backward_hooks and not module._forward_pre_hooks, name
        assert not module._backward_pre_hooks, name
    assert not model.training
    assert all(not p.requires_grad and p.grad is None for p in model.parameters())


def test_two_sessions_on_one_model_get_what_each_gets_alone(shared):
    x_a, x_b = (preprocess_image(picture(seed), shared.preprocessing) for seed in (1, 2))
    job_a = partial(features_and_gradcam, shared, x_a)
    job_b = partial(integrated_gradients_and_features, shared, x_b)
    alone_a, alone_b = in_threads([job_a])[0][0], in_threads([job_b])[0][0]
    assert not np.array_equal(alone_a["logits"], alone_b["logits"])  # two different pictures
    together_a, together_b = in_threads([job_a, job_b])
    for got in together_a:
        assert_same(got, alone_a)
    for got in together_b:
        assert_same(got, alone_b)
    assert_untouched(shared.model)


def test_forward_passes_running_through_a_capture_are_neither_recorded_nor_changed(shared):
    x_a, x_b = (preprocess_image(picture(seed), shared.preprocessing) for seed in (3, 4))
    with torch.no_grad():
        expected_b = shared.model(x_b)
    expected_a = {point: t.clone() for point, t in capture_features(shared.model, x_a).items()}
    busy, done = threading.Event(), threading.Event()
    seen_b: list[torch.Tensor] = []

    def forward_loop() -> None:
        configure_torch_threads()
        with torch.no_grad():
            while not done.is_set():
                seen_b.append(shared.model(x_b))
                busy.set()

    loop = threading.Thread(target=forward_loop)
    loop.start()
    try:
        busy.wait(timeout=120)
        captures = [capture_features(shared.model, x_a) for _ in range(3)]
        cams = [attribute(shared.model, x_a, "gradcam", 1).values for _ in range(2)]
    finally:
        done.set()
        loop.join()
    assert seen_b and all(torch.equal(logits, expected_b) for logits in seen_b)
    for features in captures:
        assert features.keys() == expected_a.keys()
        assert all(torch.equal(features[p], expected_a[p]) for p in expected_a)
    assert np.abs(cams[0] - cams[1]).max() <= ATTRIBUTION_TOLERANCE
    assert_untouched(shared.model)


def test_a_failing_capture_in_one_session_leaves_the_other_intact(cifar_pair):
    loaded = cifar_pair[0]
    x = preprocess_image(picture(5), loaded.preprocessing)
    expected = {p: t.clone() for p, t in capture_features(loaded.model, x).items()}
    wrong = torch.zeros(1, 4, 64, 64)  # four channels: the stem's conv raises mid-capture

    def failing() -> dict:
        with pytest.raises(RuntimeError):
            capture_features(loaded.model, wrong)
        return {}

    _, good = in_threads([failing, lambda: {p: t.numpy() for p, t in capture_features(loaded.model, x).items()}])
    for features in good:
        assert all(np.array_equal(features[p], expected[p].numpy()) for p in expected)
    assert_untouched(loaded.model)
