"""Fixtures shared by the test files: the repository root, sample pictures, the shipped models, an app factory."""

from __future__ import annotations

import ast
import base64
import io
import json
import os
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from shufflenet_viz.data import CIFAR10_CLASSES

ROOT = Path(__file__).resolve().parent.parent
SAMPLES_DIR = ROOT / "samples"
# The layers of the tests: library (model math, figures, CLI), app (AppTest per page), system (a real browser, a
# served app, memory and threads at once: marked `slow`, so that `make test-fast` runs in minutes).
SYSTEM_TESTS = ROOT / "tests" / "system"
CIFAR_PAIR = ("cifar10_g1", "cifar10_g3")
# The URL's part that names the default comparison (every page writes it; see ui.url.to_url).
CIFAR_PAIR_PARAMS = {"left_model": CIFAR_PAIR[0], "right_model": CIFAR_PAIR[1]}
# The published ImageNet checkpoints (never committed); CI has the same mirror beside the clone.
IMAGENET_MIRROR = ROOT.parent / "shared" / "weights" / "imagenet"
IMAGENET_PAIR = ("imagenet_official_g3_w0.5", "imagenet_official_g8_w0.5")
# The recommended models that the mirror holds (its README); osmr's 1x g=1 and g=3 are not in it.
MIRRORED = ("imagenet_official_g3_w0.5", "imagenet_official_g8_w0.5", "imagenet_osmr_g3_w0.25")
OSMR_PAIR = ("imagenet_osmr_g1_w1", "imagenet_osmr_g3_w1")  # stood in by checkpoints the tests write
# Hermetic by default: the app and the CLI (also in subprocesses) see the shipped models only, never ImageNet
# models a developer fetched into weights/imagenet/. Tests that want ImageNet models use `with_imagenet`.
os.environ["SHUFFLENET_LENS_FETCHED"] = tempfile.mkdtemp(prefix="lens-no-fetched-")
# The first AppTest run loads and verifies every model; on a busy 2-core machine that takes tens of seconds.
APP_TIMEOUT_S = 240


@pytest.hookimpl(tryfirst=True)  # before `-m "not slow"` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The system layer is slow by where it lives: every test under tests/system is marked `slow`."""
    for item in items:
        if SYSTEM_TESTS in item.path.parents:
            item.add_marker(pytest.mark.slow)


def fail_or_skip(reason: str) -> None:
    """Fail under CI (where everything a test needs must be there), skip on a developer's machine."""
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root (where app.py lives)."""
    return ROOT


@pytest.fixture(scope="session")
def sample_image_path() -> Path:
    """A shipped sample photograph (a dog, CC0/public domain, see samples/README.md)."""
    return SAMPLES_DIR / "dog.jpg"


@pytest.fixture(scope="session")
def sample_image_paths() -> dict[str, Path]:
    """Every shipped sample photograph by file name."""
    return {p.name: p for p in sorted(SAMPLES_DIR.glob("*.jpg"))}


@pytest.fixture(scope="session")
def cifar_pair():
    """The shipped CIFAR-10 g=1 and g=3 models as the app loads them (failing under CI when missing)."""
    from shufflenet_viz import weights

    models, problems = weights.load_all(weights.WEIGHTS_DIR)
    missing = [name for name in CIFAR_PAIR if name not in models]
    if missing:
        fail_or_skip(f"models {missing} are not loadable from {weights.WEIGHTS_DIR}: "
                     f"{[problems.get(name, 'not in the manifest') for name in missing]}")
    return tuple(models[name] for name in CIFAR_PAIR)


@pytest.fixture(scope="session")
def imagenet_dir(tmp_path_factory) -> Path:
    """A folder with the mirror's ImageNet models installed from it by the real fetch path."""
    from shufflenet_viz.imagenet import CATALOGUE, fetch_imagenet

    if not IMAGENET_MIRROR.is_dir():
        fail_or_skip(f"the ImageNet mirror {IMAGENET_MIRROR} is missing")
    folder = tmp_path_factory.mktemp("imagenet-fetched")
    for name in MIRRORED:
        fetch_imagenet(CATALOGUE[name], folder, mirror=str(IMAGENET_MIRROR))
    return folder


@pytest.fixture(scope="session")
def osmr_standins(tmp_path_factory) -> tuple[Path, dict]:
    """(a folder holding stand-ins for osmr's 1x g=1 and g=3 files under their published names, the catalogue
    entries with the stand-ins' sha1 in place of the published one): pytorchcv's own networks, untrained, saved
    as osmr saves them, so that their keys and shapes are exactly osmr's."""
    from dataclasses import replace
    import hashlib

    import torch
    from pytorchcv.model_provider import get_model

    from shufflenet_viz.imagenet import CATALOGUE

    folder, checkpoints = tmp_path_factory.mktemp("osmr-standins"), {}
    for name in OSMR_PAIR:
        checkpoint = CATALOGUE[name]
        torch.manual_seed(checkpoint.groups)
        buffer = io.BytesIO()
        # osmr's files are in torch's legacy (non-zip) format, as the mirror's 0.25x file shows.
        torch.save(get_model(f"shufflenet_g{checkpoint.groups}_w1", pretrained=False).state_dict(), buffer,
                   _use_new_zipfile_serialization=False)
        (folder / checkpoint.file_name).write_bytes(buffer.getvalue())
        checkpoints[name] = replace(checkpoint, sha1=hashlib.sha1(buffer.getvalue()).hexdigest())
    return folder, checkpoints


@pytest.fixture(scope="session")
def imagenet_pair_dir(imagenet_dir, osmr_standins, tmp_path_factory) -> Path:
    """A folder with all five recommended models installed: the mirror's three and the osmr 1x stand-ins."""
    import shutil

    from shufflenet_viz.imagenet import fetch_imagenet

    folder = tmp_path_factory.mktemp("imagenet-pair")
    shutil.copytree(imagenet_dir, folder, dirs_exist_ok=True)
    standins, checkpoints = osmr_standins
    for checkpoint in checkpoints.values():
        fetch_imagenet(checkpoint, folder, mirror=str(standins))
    return folder


@pytest.fixture()
def with_imagenet_pair(imagenet_pair_dir, monkeypatch) -> Path:
    """The app lists all five recommended ImageNet models, osmr's 1x g=1 / g=3 pair among them."""
    return _fetched_models_in(imagenet_pair_dir, monkeypatch)


@pytest.fixture(scope="session")
def imagenet_models(imagenet_dir):
    """The installed ImageNet models by name, loaded as the app loads them."""
    from shufflenet_viz import weights

    models, problems = weights.load_all(imagenet_dir)
    assert not problems, problems
    return models


@pytest.fixture()
def with_imagenet(imagenet_dir, monkeypatch) -> Path:
    """The app (AppTest or a server started from this test) lists the installed ImageNet models."""
    return _fetched_models_in(imagenet_dir, monkeypatch)


def _fetched_models_in(folder: Path, monkeypatch) -> Path:
    """Point the app and the command line (also in subprocesses) at this folder of fetched models."""
    from shufflenet_viz import weights

    monkeypatch.setattr(weights, "FETCHED_DIR", folder)
    monkeypatch.setenv("SHUFFLENET_LENS_FETCHED", str(folder))
    return folder


# The pages that draw no plotly figure (the class gallery: photos and sentences); every other page draws one.
CHARTLESS = {"pages/gallery.py"}


def app_pages() -> list[tuple[str, str]]:
    """(file, title) of every `st.Page(...)` in app.py, in order, read from its source (app.py runs only under
    Streamlit), so that pages added later are visited by the browser test and the benchmark automatically."""
    pages = []
    for node in ast.walk(ast.parse((ROOT / "app.py").read_text())):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "Page":
            keywords = {k.arg: k.value for k in node.keywords}
            title = keywords["title"].value if "title" in keywords else Path(node.args[0].value).stem
            pages.append((node.args[0].value, title))
    return pages


@pytest.fixture(scope="session")
def app_test() -> Callable:
    """Factory: `app_test()` gives a fresh AppTest of app.py, already run once (the landing page)."""
    from streamlit.testing.v1 import AppTest

    def make():
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=APP_TIMEOUT_S)
        at.run()
        return at

    return make


@pytest.fixture(scope="session")
def upload_picture() -> Callable:
    """`upload_picture(at, name, data, mime)` puts a file into the sidebar's uploader and reruns the app."""
    from ui.state import UPLOAD_KEY

    def upload(at, name: str, data: bytes, mime: str = "application/octet-stream"):
        at.file_uploader(key=UPLOAD_KEY).set_value((name, data, mime))
        return at.run()

    return upload


@pytest.fixture(scope="session")
def app_on_page(app_test, upload_picture) -> Callable:
    """`app_on_page(page_file, picture_path)`: a fresh app with that picture uploaded in the sidebar, switched to
    the page and run, without an exception."""

    def open_page(page_file: str, picture_path: Path):
        at = upload_picture(app_test(), picture_path.name, picture_path.read_bytes(), "image/jpeg")
        at.switch_page(page_file).run()
        assert not at.exception, at.exception
        return at

    return open_page


@pytest.fixture(scope="session")
def app_with_link(app_test, upload_picture) -> Callable:
    """`app_with_link(page_file, picture_path, params)`: a fresh app with that picture uploaded, opened on the page
    by a link carrying these query params (a bookmark), run once; exceptions are left to the test to check."""

    def open_link(page_file: str, picture_path: Path, params: dict):
        at = upload_picture(app_test(), picture_path.name, picture_path.read_bytes(), "image/jpeg")
        at.query_params.update(params)
        return at.switch_page(page_file).run()

    return open_link


def page_charts(at) -> dict[str, dict]:
    """Every plotly chart an AppTest page shows, as its figure JSON, by the key the page gave it."""
    return {chart.proto.id.rsplit("-", 1)[-1]: json.loads(chart.proto.spec) for chart in at.get("plotly_chart")}


def page_chart(at, key: str) -> dict:
    """The figure JSON of the page's chart with this key."""
    charts = page_charts(at)
    assert key in charts, sorted(charts)
    return charts[key]


def plotly_array(value) -> np.ndarray:
    """A plotly JSON array as numpy: plotly sends numpy data as {dtype, bdata (base64)[, shape]}; lists (None for
    a gap) stay lists."""
    if isinstance(value, dict) and "bdata" in value:
        flat = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
        shape = value.get("shape")
        return flat.reshape([int(n) for n in str(shape).split(",")]) if shape else flat
    return np.array(value, dtype=float)

def make_archive(path: Path, train_per_class: int = 16, test_per_class: int = 6, seed: int = 0) -> Path:
    """A small archive in the CIFAR-10 JPEG layout: noise pictures with a class-dependent tint, so that a
    network learns something in one epoch and a run takes seconds."""
    generator = np.random.default_rng(seed)
    with tarfile.open(path, "w:gz") as archive:
        for split, count in (("train", train_per_class), ("test", test_per_class)):
            for label, name in enumerate(CIFAR10_CLASSES):
                for index in range(count):
                    pixels = generator.integers(0, 128, (32, 32, 3)) + 12 * label
                    buffer = io.BytesIO()
                    Image.fromarray(pixels.astype(np.uint8)).save(buffer, format="JPEG")
                    member = tarfile.TarInfo(f"cifar10/{split}/{name}/{index:04d}.jpg")
                    member.size = len(buffer.getvalue())
                    archive.addfile(member, io.BytesIO(buffer.getvalue()))
    return path
