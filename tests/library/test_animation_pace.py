"""The shuffle animation at a speaking pace: each stage takes about three seconds when Play runs it, and the GIF
export holds and moves its frames exactly as long as the page's Play does."""

import io

from PIL import Image

from conftest import fail_or_skip
from shufflenet_viz import export, flow
from shufflenet_viz.figures.shuffle import shuffle_animation_figure

SPEAKING_PACE_S = (2.5, 3.5)  # long enough to say what a stage did, short enough to keep the room


def play_durations(figure) -> list[int]:
    play = figure.layout.updatemenus[0].buttons[0]
    assert play.label == "\u25B6 Play" and play.args[0] is None  # every frame, from the first stage
    assert not play.args[1].get("fromcurrent")  # per-frame times index the frames Play queues
    return [frame["duration"] for frame in play.args[1]["frame"]]


def test_play_holds_every_stage_for_about_three_seconds():
    animation = flow.shuffle_animation(12, 3)
    durations = play_durations(shuffle_animation_figure(animation))
    assert len(durations) == len(animation.positions)
    keys = animation.key_frames
    for start, end in zip(keys, keys[1:]):  # a stage: the moves towards it, then the hold on it
        stage_s = sum(durations[start + 1:end + 1]) / 1000
        assert SPEAKING_PACE_S[0] <= stage_s <= SPEAKING_PACE_S[1], (start, end, stage_s)
    assert durations[0] < min(durations[key] for key in keys[1:])  # Play starts moving at once


def test_the_gif_keeps_the_pace_of_play():
    problem = export.static_export_problem()
    if problem:
        fail_or_skip(problem)
    figure = shuffle_animation_figure(flow.shuffle_animation(6, 2, steps_between=1))
    durations = play_durations(figure)
    gif = Image.open(io.BytesIO(export.animation_gif(figure, width=480)))
    shown = []
    for index in range(gif.n_frames):
        gif.seek(index)
        shown.append(gif.info["duration"])
    assert shown[1:] == durations[1:]  # the first frame: the GIF loops and holds it, Play moves on at once
    assert shown[0] == durations[-1]
