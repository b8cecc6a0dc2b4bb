"""Bounded memory: a server that takes picture after picture must not grow without limit. Every Streamlit
cache of the app has a size bound, and 200 different uploads spread over every page leave resident memory
within 100 MB of where it stood after the first 20."""

from __future__ import annotations

import ast
import ctypes
import ctypes.util
import gc
import io
import re
from pathlib import Path

import numpy as np
import psutil
from PIL import Image

from ui.state import IMAGE_KEY, MODEL_KEYS

ROOT = Path(__file__).resolve().parents[2]
UPLOADS = 200
WARM_UP = 20
WINDOW = 20  # uploads whose median resident memory is compared: the ones after warm-up, and the last ones
ALLOWED_GROWTH_MB = 100
# The one cache without a bound: the model loader, called with the weights folders only (one entry per process),
# by function name wherever in ui/ it lives.
UNBOUNDED_ALLOWED = {"_load_all"}
CACHE_DECORATORS = ("cache_data", "cache_resource")
LIBC = ctypes.CDLL(ctypes.util.find_library("c")) if ctypes.util.find_library("c") else None


def streamlit_sources() -> list[Path]:
    """The files that may declare Streamlit caches: the Streamlit layer's modules (ui/) and every page."""
    return [*sorted((ROOT / "ui").rglob("*.py")), *sorted((ROOT / "pages").glob("*.py"))]


def relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def cache_declarations(path: Path) -> list[tuple[str, str, dict]]:
    """(function name, decorator, keyword arguments as source text) for each st.cache_* decorator in a file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for decorator in node.decorator_list:
            call = decorator if isinstance(decorator, ast.Call) else None
            target = call.func if call else decorator
            if isinstance(target, ast.Attribute) and target.attr in CACHE_DECORATORS:
                keywords = {k.arg: ast.unparse(k.value) for k in call.keywords} if call else {}
                found.append((node.name, target.attr, keywords))
    return found


def test_every_streamlit_cache_has_max_entries():
    unbounded, declared = [], 0
    for path in streamlit_sources():
        source = path.read_text()
        declarations = cache_declarations(path)
        # Every mention of st.cache_data / st.cache_resource is a decorator the parser saw (no hidden st.cache_x(f)).
        mentions = len(re.findall(r"\bst\.(?:cache_data|cache_resource)\b(?!\.clear)", source))
        assert mentions == len(declarations), f"{relative(path)}: a cache is created other than as a decorator"
        for function, decorator, keywords in declarations:
            declared += 1
            bound = keywords.get("max_entries")
            if function in UNBOUNDED_ALLOWED:
                continue
            if bound is None or bound == "None":
                unbounded.append(f"{relative(path)}: {function} (@st.{decorator} without max_entries)")
            else:
                assert re.fullmatch(r"\d+", bound) and 1 <= int(bound) <= 256, \
                    f"{relative(path)}: {function} max_entries={bound} (expected a whole number from 1 to 256)"
    assert declared >= 3, "expected the model loader and the per-picture caches of ui/ and the pages"
    assert unbounded == [], "unbounded caches: " + "; ".join(unbounded)


def test_the_model_loader_is_the_only_unbounded_cache_and_takes_one_key():
    (loader_name,) = UNBOUNDED_ALLOWED
    found = [(path, decorator, keywords) for path in streamlit_sources()
             for name, decorator, keywords in cache_declarations(path) if name == loader_name]
    assert len(found) == 1, f"{loader_name} is a cache {len(found)} times: {[relative(p) for p, *_ in found]}"
    path, decorator, keywords = found[0]
    assert decorator == "cache_resource" and "max_entries" not in keywords
    loader = next(node for node in ast.walk(ast.parse(path.read_text()))
                  if isinstance(node, ast.FunctionDef) and node.name == loader_name)
    assert [a.arg for a in loader.args.args] == ["weights_dirs"]


def app_pages() -> list[str]:
    """The page files app.py navigates over, in its order."""
    return re.findall(r'st\.Page\(\s*"([^"]+)"', (ROOT / "app.py").read_text())


def picture(index: int) -> bytes:
    """A different small picture each time (small so 200 of them through every page stay fast)."""
    rng = np.random.default_rng(index)
    pixels = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
    pixels[:, : 8 + index % 32] = (index * 37 % 256, index * 11 % 256, 128)  # a block that differs per picture
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def resident_mb() -> float:
    """Resident memory of this process once garbage is collected and freed heap pages are handed back."""
    gc.collect()
    if LIBC is not None:
        LIBC.malloc_trim(0)  # without this, RSS swings by ~200 MB with transient allocations still held by malloc
    return psutil.Process().memory_info().rss / 2**20


def test_200_uploads_through_every_page_keep_memory_bounded(with_imagenet, app_test, upload_picture, cifar_pair):
    """With every model installed (the ImageNet pair compared, at 224x224), each upload is made on the next page
    in turn, so that page runs on the new picture: every page sees 200 / len(pages) different pictures at the
    cost of one run per upload."""
    pages = app_pages()
    assert "pages/classify.py" in pages
    at = app_test()
    assert not at.exception
    assert at.session_state[MODEL_KEYS[0]].startswith("imagenet_")  # the largest inputs and feature maps
    resident = []
    for index in range(UPLOADS):
        page = pages[index % len(pages)]
        at.switch_page(page)
        upload_picture(at, f"upload{index}.png", picture(index), "image/png")
        assert not at.exception, f"upload {index} on {page}: {[e.value for e in at.exception]}"
        assert at.session_state[IMAGE_KEY].name == f"upload{index}.png"
        resident.append(resident_mb())
    after_warm_up = float(np.median(resident[WARM_UP:WARM_UP + WINDOW]))
    at_end = float(np.median(resident[-WINDOW:]))
    growth = at_end - after_warm_up
    print(f"resident memory (median of {WINDOW} uploads): {after_warm_up:.0f} MB after {WARM_UP} uploads, "
          f"{at_end:.0f} MB at the end of {UPLOADS}: growth {growth:.1f} MB; every {WINDOW}th upload: "
          f"{[round(value) for value in resident[WINDOW - 1::WINDOW]]} MB")
    assert growth < ALLOWED_GROWTH_MB, f"memory grew {growth:.0f} MB over {UPLOADS - WARM_UP} uploads"
