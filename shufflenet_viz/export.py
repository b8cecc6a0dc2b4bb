"""Slide exports: a plotly figure as a self-contained HTML file that plays offline, as PNG or SVG, and a plotly
animation as an animated GIF.

HTML embeds plotly.js itself (no CDN, no MathJax). Static images are rendered by kaleido, plotly's exporter,
in the Chromium installed on the machine, with the plotly.js bundled in the plotly package: nothing is
downloaded at run time. Where kaleido or Chromium is missing, `static_export_problem` says so in one sentence.
"""

from __future__ import annotations

import asyncio
import importlib.util
import io
import threading
from collections.abc import Sequence
from pathlib import Path

import plotly
import plotly.graph_objects as go
from PIL import Image

from .flow.animation import MOVE_FRAME_MS, STAGE_HOLD_MS

PLOTLY_JS = Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"
STATIC_FORMATS = {"png": "image/png", "svg": "image/svg+xml"}
RENDER_TIMEOUT_S = 60  # one figure; a busy 2-core server renders one in well under a second once warm
KEY_FRAME_MS = STAGE_HOLD_MS  # the GIF holds each stage of the shuffle as long as the page's Play does


class ExportError(Exception):
    """An export could not be made; the message says why and what still works."""


def animation_html(figure: go.Figure, title: str, auto_play: bool = False) -> str:
    """The figure as one HTML file with plotly.js embedded: it opens and plays with no network."""
    html = figure.to_html(include_plotlyjs=True, include_mathjax=False, full_html=True, auto_play=auto_play,
                          config={"displaylogo": False, "responsive": True})
    safe_title = title.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    charset = '<meta charset="utf-8" />'
    if charset in html:
        return html.replace(charset, f"{charset}\n    <title>{safe_title}</title>", 1)
    return html.replace("<head>", f"<head><title>{safe_title}</title>", 1)


def static_export_problem() -> str | None:
    """Why PNG, SVG and GIF exports cannot be made on this machine, or None when they can."""
    try:
        from choreographer.browsers.chromium import Chromium
    except ImportError:
        Chromium = None
    if Chromium is None or importlib.util.find_spec("kaleido") is None:
        return ("PNG, SVG and GIF exports need the kaleido package (`pip install -r requirements.txt`); "
                "the HTML export works without it.")
    if not PLOTLY_JS.is_file():
        return f"PNG, SVG and GIF exports need plotly.js from the plotly package, missing at {PLOTLY_JS}."
    if Chromium.find_browser(skip_local=False) is None:
        return ("PNG, SVG and GIF exports render in a headless Chromium, and none is installed on this server "
                "(Debian: `apt-get install chromium`); the HTML export works without it.")
    return None


def _run_in_thread(coroutine_factory):
    """Run an asyncio coroutine to completion on a thread of its own (the caller may already run a loop)."""
    outcome: dict = {}

    def target() -> None:
        try:
            outcome["value"] = asyncio.run(coroutine_factory())
        except BaseException as error:  # handed to the caller's thread below
            outcome["error"] = error

    worker = threading.Thread(target=target, name="static-export", daemon=True)
    worker.start()
    worker.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def render_images(figures: Sequence[go.Figure], image_format: str = "png", width: int = 1280,
                  height: int | None = None, scale: float = 1.0) -> list[bytes]:
    """Each figure as PNG or SVG bytes, all rendered by one headless Chromium (started once for the batch).

    `height` None keeps each figure's own height (or 720).
    """
    if image_format not in STATIC_FORMATS:
        raise ValueError(f"image_format must be one of {list(STATIC_FORMATS)}, got {image_format!r}")
    problem = static_export_problem()
    if problem:
        raise ExportError(problem)
    import kaleido

    async def render() -> list[bytes]:
        async with kaleido.Kaleido(n=1, timeout=RENDER_TIMEOUT_S, plotlyjs=str(PLOTLY_JS), mathjax=False) as k:
            images = []
            for figure in figures:
                own_height = figure.layout.height or 720
                options = dict(format=image_format, width=width, height=height or own_height, scale=scale)
                images.append(await k.calc_fig(figure.to_dict(), opts=options))
            return images

    try:
        return _run_in_thread(render)
    except Exception as error:
        raise ExportError(f"The {image_format.upper()} export failed in the headless Chromium ({error}); the HTML "
                          f"export still works.") from error


def figure_image(figure: go.Figure, image_format: str = "png", width: int = 1280, height: int | None = None,
                 scale: float = 1.0) -> bytes:
    """One figure as PNG or SVG bytes (see `render_images`)."""
    return render_images([figure], image_format, width, height, scale)[0]


def animation_frames(figure: go.Figure) -> tuple[list[go.Figure], list[bool]]:
    """Every frame of a plotly animation as a still figure (without play button and slider), and for each
    whether it is a key frame (one the animation's slider jumps to)."""
    if not figure.frames:
        raise ValueError("the figure has no animation frames")
    layout = go.Layout(figure.layout)
    layout.updatemenus, layout.sliders = (), ()
    layout.margin.b = 30
    keys = {str(arg) for step in (figure.layout.sliders[0].steps if figure.layout.sliders else ())
            for arg in (step.args[0] if step.args else [])}
    stills = [go.Figure(data=frame.data, layout=layout) for frame in figure.frames]
    return stills, [frame.name in keys for frame in figure.frames]


def animation_gif(figure: go.Figure, width: int = 1280, height: int | None = None) -> bytes:
    """A plotly animation as an animated GIF that loops: key frames held, the moves between them smooth."""
    stills, key = animation_frames(figure)
    height = height or int((figure.layout.height or 600) - 80)
    pngs = render_images(stills, "png", width, height)
    frames = [Image.open(io.BytesIO(png)).convert("RGB") for png in pngs]
    durations = [KEY_FRAME_MS if is_key else MOVE_FRAME_MS for is_key in key]
    output = io.BytesIO()
    # One adaptive palette per frame: the figures use a handful of flat colours, which GIF keeps exactly.
    paletted = [frame.quantize(colors=64, method=Image.Quantize.MEDIANCUT) for frame in frames]
    paletted[0].save(output, format="GIF", save_all=True, append_images=paletted[1:], duration=durations, loop=0,
                     optimize=False, disposal=1)
    return output.getvalue()
