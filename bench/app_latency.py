"""Server-side time of each page against the bare forward passes it needs (a script, not a test).

    PYTHONPATH=. .venv/bin/python bench/app_latency.py [--runs 5]

One process, one 224x224 photo uploaded through the sidebar as a user would. Every page of app.PAGES is run
through Streamlit's AppTest: once cold (first load: fills the caches), then warm, timed `--runs` times (median).
An AppTest run is the script's execution plus AppTest's parsing of what it sent, so it bounds the server's time
from above. The bare forward passes are the two compared models' `model(x)` on the same preprocessed picture.
Targets: Classify within 2x of its two forward passes; every page under 1 s once its caches are warm.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the page list and the AppTest setting are shared with the tests

import torch  # noqa: E402
from PIL import Image  # noqa: E402
from streamlit.runtime.pages_manager import PagesManager  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402
from streamlit.testing.v1 import app_test as app_test_module  # noqa: E402

import ui  # noqa: E402
from conftest import app_pages  # noqa: E402
from shufflenet_viz import weights  # noqa: E402
from shufflenet_viz.preprocess import preprocess_image  # noqa: E402
from shufflenet_viz.runtime import configure_torch_threads  # noqa: E402

PHOTO = ROOT / "samples" / "dog.jpg"
CLASSIFY_TARGET_RATIO = 2.0
WARM_TARGET_S = 1.0


def photo_224() -> bytes:
    """The sample dog, centre-cropped and resized to 224x224, as JPEG bytes."""
    image = Image.open(PHOTO).convert("RGB")
    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    buffer = io.BytesIO()
    image.crop((left, top, left + side, top + side)).resize((224, 224), Image.Resampling.LANCZOS).save(
        buffer, "JPEG", quality=92)
    return buffer.getvalue()


def median_seconds(action, runs: int) -> float:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def forward_seconds(loaded, image: Image.Image, runs: int) -> float:
    """Median time of the bare forward pass (no preprocessing, no softmax) on this picture."""
    x = preprocess_image(image, loaded.preprocessing)
    with torch.inference_mode():
        loaded.model(x)  # warm-up
        return median_seconds(lambda: loaded.model(x), runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed warm runs per page (median)")
    args = parser.parse_args()
    configure_torch_threads()
    # AppTest resets Streamlit's pages-folder mode before every run, which a running server leaves for good at
    # its first st.navigation; without this each timed run would include ui.ensure_shell()'s extra rerun.
    original_init = PagesManager.__init__

    def init_as_on_a_running_server(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    PagesManager.__init__ = init_as_on_a_running_server
    # A server compiles each script once per process; AppTest makes a new script cache for every run, and the
    # compile would be a third of a warm run. One cache for all runs, as on a server.
    server_script_cache = app_test_module.ScriptCache()
    app_test_module.ScriptCache = lambda: server_script_cache

    data = photo_224()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=600)
    started = time.perf_counter()
    at.run()
    first_load = time.perf_counter() - started
    at.file_uploader(key=ui.UPLOAD_KEY).set_value(("dog_224.jpg", data, "image/jpeg"))
    started = time.perf_counter()
    at.run()
    upload_run = time.perf_counter() - started
    if at.exception:
        print(f"the app raised: {at.exception[0].value}", file=sys.stderr)
        return 1
    left, right = (at.session_state[key] for key in ui.MODEL_KEYS)
    models = weights.load_all(weights.WEIGHTS_DIR)[0]
    picture = at.session_state[ui.IMAGE_KEY].image
    forwards = {name: forward_seconds(models[name], picture, args.runs * 4) for name in (left, right)}
    pair_forward = forwards[left] + forwards[right]

    print(f"picture: 224x224 JPEG; torch threads: {torch.get_num_threads()}; warm runs per page: {args.runs}")
    print(f"first load of the app (models loaded and verified, default sample classified): {first_load:.2f} s")
    print(f"upload run (new picture classified by both models): {upload_run * 1000:.0f} ms")
    for name, seconds in forwards.items():
        print(f"bare forward pass {name}: {seconds * 1000:.2f} ms")
    print(f"two forward passes: {pair_forward * 1000:.2f} ms")
    print()
    print(f"{'page':<20}{'first visit':>14}{'warm (median)':>16}{'vs 2 forwards':>16}  verdict")
    failures = 0
    for file, title in app_pages():
        at.switch_page(file)
        started = time.perf_counter()
        at.run()
        cold = time.perf_counter() - started
        if at.exception:
            print(f"{title:<20} raised: {at.exception[0].value[:80]}")
            failures += 1
            continue
        at.run()  # a second fill for widgets whose defaults settle on the first run
        warm = median_seconds(at.run, args.runs)
        ratio = warm / pair_forward
        verdicts = [f"{'ok' if warm < WARM_TARGET_S else 'SLOW'} (< {WARM_TARGET_S:g} s)"]
        if title == "Classify":
            verdicts.append(f"{'ok' if ratio <= CLASSIFY_TARGET_RATIO else 'SLOW'} (<= {CLASSIFY_TARGET_RATIO:g}x)")
        failures += sum("SLOW" in v for v in verdicts)
        shown = (f"{len(at.get('plotly_chart'))} charts, {len(at.get('image'))} images, "
                 f"{len(at.sidebar.children)} sidebar elements, title {[t.value for t in at.title][:1]}")
        print(f"{title:<20}{cold * 1000:>12.0f}ms{warm * 1000:>14.1f}ms{ratio:>15.1f}x  {', '.join(verdicts)}; {shown}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
