"""Slide exports: the shuffle animation as self-contained HTML (no CDN, every frame inside), as an animated GIF,
and figures as PNG/SVG rendered by kaleido in the system Chromium; a clear refusal where Chromium is missing."""

import io
import re

import plotly.graph_objects as go
import pytest
from PIL import Image

from conftest import fail_or_skip
from shufflenet_viz import export, flow
from shufflenet_viz.figures.common import projector_style
from shufflenet_viz.figures.shuffle import shuffle_animation_figure


@pytest.fixture(scope="module")
def small_animation() -> go.Figure:
    """The shuffle of 6 channels in 2 groups with one frame between stages: 4 key frames + 3 moves."""
    return shuffle_animation_figure(flow.shuffle_animation(6, 2, steps_between=1))


def needs_chromium() -> None:
    problem = export.static_export_problem()
    if problem:
        fail_or_skip(problem)


def test_html_is_self_contained(small_animation):
    html = export.animation_html(small_animation, "Channel shuffle <C=6>")
    assert html.lstrip().lower().startswith("<!doctype html>")
    assert "<title>Channel shuffle &lt;C=6&gt;</title>" in html
    assert not re.search(r"<script[^>]+src=", html), "an external script would need the network"
    assert not re.search(r"<link[^>]+href=\"?https?:", html)
    assert "Plotly.newPlot" in html and "plotly.js v" in html  # the library itself is inside
    assert html.count('"name":"') >= len(small_animation.frames)  # every frame travels with the file
    assert "Plotly.animate" not in html  # no autoplay: the teacher presses Play


def test_animation_frames(small_animation):
    stills, key = export.animation_frames(small_animation)
    assert len(stills) == len(small_animation.frames) == 7
    assert key == [True, False, True, False, True, False, True]
    assert all(not still.layout.updatemenus and not still.layout.sliders for still in stills)
    with pytest.raises(ValueError, match="no animation frames"):
        export.animation_frames(go.Figure())


def test_png_svg_and_gif_render_in_chromium(small_animation):
    needs_chromium()
    png, svg = export.render_images([small_animation, projector_style(small_animation)], "png", width=640), None
    assert all(image.startswith(b"\x89PNG") for image in png)
    assert Image.open(io.BytesIO(png[0])).size[0] == 640
    svg = export.figure_image(small_animation, "svg", width=640)
    assert svg.lstrip().startswith(b"<svg") and b"Channel shuffle of C=6" in svg
    gif = Image.open(io.BytesIO(export.animation_gif(small_animation, width=480)))
    assert gif.format == "GIF" and gif.n_frames == 7 and gif.size[0] == 480
    durations = []
    for index in range(gif.n_frames):
        gif.seek(index)
        durations.append(gif.info["duration"])
    assert durations == [export.KEY_FRAME_MS, export.MOVE_FRAME_MS] * 3 + [export.KEY_FRAME_MS]


def test_missing_chromium_is_said_clearly(monkeypatch, small_animation):
    from choreographer.browsers.chromium import Chromium

    monkeypatch.setattr(Chromium, "find_browser", classmethod(lambda cls, **_: None))
    problem = export.static_export_problem()
    assert "apt-get install chromium" in problem and "HTML export works" in problem
    with pytest.raises(export.ExportError, match="Chromium"):
        export.figure_image(small_animation, "png")
    with pytest.raises(ValueError, match="image_format"):
        export.render_images([small_animation], "jpeg")
