"""Many users at once: eight sessions, each with its own picture, run predictions, feature maps, a shuffle-off
copy and attributions on the two shared, cached models at the same time. Each must get exactly what it
gets alone, and nothing (hooks, shuffle switches, training mode, gradients) may leak onto the shared models.
Streamlit runs each session's script on its own thread; the threads here stand in for them, and an
interleaved pair of AppTest sessions checks the same through the real pages."""

from __future__ import annotations

import io
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from shufflenet_viz.attributions import attribute, attribute_groups, has_hooks
from shufflenet_viz.features import capture_features
from shufflenet_viz.images import LoadedImage, load_image
from shufflenet_viz.inference import classify
from shufflenet_viz.copies import with_shuffle
from shufflenet_viz.model import ChannelShuffle
from shufflenet_viz.preprocess import preprocess_image
from shufflenet_viz.runtime import SERVING_THREADS, configure_torch_threads
from shufflenet_viz.weights import LoadedModel

ROOT = Path(__file__).resolve().parents[2]
SESSIONS = 8
IG_STEPS = 8  # enough to exercise Captum's batching; the comparison is alone vs together, not accuracy
ATTRIBUTION_TOLERANCE = 1e-6


@pytest.fixture(scope="module")
def shared_models(cifar_pair) -> list[LoadedModel]:
    """The two models as the app caches them (loaded once, shared by every session), with the app's threads."""
    configure_torch_threads()
    return list(cifar_pair)


def session_picture(index: int) -> LoadedImage:
    """A different picture per session (smooth colour fields plus noise), through the app's loader."""
    rng = np.random.default_rng(index)
    y, x = np.mgrid[0:96, 0:128] / 96.0
    base = np.stack([np.sin(x * (index + 1)), np.cos(y * (index + 2)), np.sin((x + y) * 3 + index)], axis=-1)
    pixels = ((base + 1) * 110 + rng.normal(0, 12, base.shape)).clip(0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG" if index % 2 else "JPEG")
    return load_image(buffer.getvalue(), f"session{index}.{'png' if index % 2 else 'jpg'}")


def session_work(models: list[LoadedModel], picture: LoadedImage) -> dict[str, np.ndarray]:
    """What one session computes across the pages, as arrays keyed by model and result."""
    results = {"threads": np.array([torch.get_num_threads()])}
    for loaded in models:
        x = preprocess_image(picture.image, loaded.preprocessing)
        key = loaded.name
        results[f"{key}/probabilities"] = classify(loaded, picture.image).probabilities
        for point, tensor in capture_features(loaded.model, x).items():
            results[f"{key}/feature/{point}"] = tensor.numpy()
        with torch.no_grad():
            results[f"{key}/logits_shuffle_off"] = with_shuffle(loaded.model, False)(x).numpy()
        ig = attribute(loaded.model, x, "integrated_gradients", n_steps=IG_STEPS, internal_batch_size=IG_STEPS)
        results[f"{key}/attr/integrated_gradients"] = ig.values
        results[f"{key}/attr/saliency"] = attribute(loaded.model, x, "saliency").values
        results[f"{key}/attr/gradcam"] = attribute(loaded.model, x, "gradcam", unit="stage3.unit2").values
        groups = attribute_groups(loaded.model, x, "stage3.unit2", n_steps=IG_STEPS, internal_batch_size=IG_STEPS)
        results[f"{key}/attr/groups"] = groups.per_channel
    return results


def assert_same(alone: dict[str, np.ndarray], together: dict[str, np.ndarray], session: int) -> None:
    assert alone.keys() == together.keys()
    for key, expected in alone.items():
        got = together[key]
        if "/attr/" in key:
            difference = float(np.abs(got - expected).max())
            assert difference <= ATTRIBUTION_TOLERANCE, f"session {session}: {key} differs by {difference:.2e}"
        else:
            assert np.array_equal(got, expected), f"session {session}: {key} differs from its result alone"


def assert_shared_models_untouched(models: list[LoadedModel]) -> None:
    for loaded in models:
        model = loaded.model
        assert not has_hooks(model), f"{loaded.name}: a hook was left on the shared model"
        assert all(not (m._forward_hooks or m._forward_pre_hooks or m._backward_hooks) for m in model.modules())
        shuffles = [m for m in model.modules() if isinstance(m, ChannelShuffle)]
        assert len(shuffles) == 16 and all(m.enabled for m in shuffles), f"{loaded.name}: shuffle switched off"
        assert loaded.model.config.shuffle is True
        assert not model.training and not any(p.requires_grad for p in model.parameters())


def test_eight_sessions_at_once_get_what_they_get_alone(shared_models):
    pictures = [session_picture(i) for i in range(SESSIONS)]
    assert len({p.sha256 for p in pictures}) == SESSIONS
    weights_before = {m.name: {k: v.clone() for k, v in m.model.state_dict().items()} for m in shared_models}

    alone = [session_work(shared_models, picture) for picture in pictures]
    # The sessions really differ, so equal results below cannot come from a mix-up of inputs.
    predictions = {tuple(np.round(r["cifar10_g3/probabilities"], 12)) for r in alone}
    assert len(predictions) == SESSIONS

    start = threading.Barrier(SESSIONS)

    def concurrent_session(index: int) -> dict[str, np.ndarray]:
        start.wait()  # all eight begin together
        # Half the sessions run the models in the opposite order, so different work overlaps.
        order = shared_models if index % 2 == 0 else shared_models[::-1]
        return session_work(order, pictures[index])

    with ThreadPoolExecutor(SESSIONS) as pool:
        together = list(pool.map(concurrent_session, range(SESSIONS)))

    for index, (expected, got) in enumerate(zip(alone, together)):
        assert_same(expected, got, index)
        assert got["threads"][0] == SERVING_THREADS == 1
    assert_shared_models_untouched(shared_models)
    for loaded in shared_models:
        for name, value in loaded.model.state_dict().items():
            assert torch.equal(value, weights_before[loaded.name][name]), f"{loaded.name}.{name} changed"


def test_configure_torch_threads_is_one_thread_everywhere():
    assert configure_torch_threads() == 1 and torch.get_num_threads() == 1
    seen = []
    worker = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
    worker.start()
    worker.join()
    assert seen == [1]


# --- the same through the real pages: two AppTest sessions, interleaved -------------------------------

def app_pages() -> list[str]:
    """The page files app.py navigates over, in its order."""
    return re.findall(r'st\.Page\(\s*"([^"]+)"', (ROOT / "app.py").read_text())


def rendered(at) -> list[str]:
    """What a page shows that depends on the picture and the models (no timings): texts and chart data."""
    texts = [element.value for kind in ("title", "header", "subheader", "markdown", "success", "warning",
                                        "error", "info", "caption") for element in getattr(at, kind)]
    charts = [element.proto.spec for element in at.get("plotly_chart")]
    return texts + charts


def settled(at, page: str):
    """The page once its background work (the FLOPs page's timings) has arrived: a server pushes it when ready,
    an AppTest sees it on a later run."""
    deadline = time.monotonic() + 120
    while page == "pages/flops.py" and not [m for m in at.metric if m.label == "Whole forward pass"]:
        assert time.monotonic() < deadline, "the FLOPs page's timings never arrived"
        time.sleep(0.5)
        at.run()
    return at


def visit_all_pages(at) -> list[list[str]]:
    shown = []
    for page in app_pages():
        settled(at.switch_page(page).run(), page)
        assert not at.exception, f"{page}: {[e.value for e in at.exception]}"
        shown.append(rendered(at))
    return shown


def picture_bytes(index: int) -> bytes:
    buffer = io.BytesIO()
    session_picture(index).image.save(buffer, "PNG")
    return buffer.getvalue()


def test_two_app_sessions_interleaved_see_only_their_own_picture(app_test, upload_picture):
    import ui

    pictures = {name: picture_bytes(index) for index, name in enumerate(("first", "second"))}

    # The pictures are new to this process, so each is computed fresh for its session alone; the
    # interleaved sessions then share those cached results (as sessions of one server do), so a cache keyed
    # wrongly or state kept outside the session shows one session the other's results. Timings shown on a
    # page are cached too, so pages compare whole.
    alone = {}
    for name, data in pictures.items():
        at = upload_picture(app_test(), f"{name}.png", data, "image/png")
        alone[name] = visit_all_pages(at)

    sessions = {name: app_test() for name in pictures}
    for name, at in sessions.items():  # both upload before either looks at a page
        upload_picture(at, f"{name}.png", pictures[name], "image/png")
    together = {name: [] for name in pictures}
    for page in app_pages():  # then they take turns, page by page
        for name, at in sessions.items():
            settled(at.switch_page(page).run(), page)
            assert not at.exception, f"{name} on {page}: {[e.value for e in at.exception]}"
            together[name].append(rendered(at))

    for name, at in sessions.items():
        assert at.session_state["lens_image"].name == f"{name}.png"
        for page, seen, expected in zip(app_pages(), together[name], alone[name]):
            differences = [(a, b) for a, b in zip(seen, expected) if a != b][:1]
            assert seen == expected, f"session {name!r} on {page} saw something it does not see alone: " \
                                     f"{len(seen)} vs {len(expected)} elements; first difference {differences}"
    assert alone["first"] != alone["second"]
    app_models = ui.loaded_models()  # the app's own cached models, shared by both sessions
    assert_shared_models_untouched([app_models[name] for name in ("cifar10_g1", "cifar10_g3")])
