"""Figures and tables of the shuffle experiment: this project's CIFAR-10 runs beside the paper's Tables 2 and 3.

Every number comes from the experiment's results file (via `experiment_results.summarize`), the paper's columns
from the results file's copy of the paper's tables (`paper.results_section`).
"""

from __future__ import annotations

import math

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..experiment_results import Configuration, ShuffleGain, Summary
from .common import FONT_SIZE, GROUP_COLOURS, group_colour, style

SHUFFLE_COLOURS = {True: GROUP_COLOURS[0], False: GROUP_COLOURS[1]}  # blue with shuffle, orange without
SHUFFLE_NAMES = {True: "with shuffle", False: "without shuffle"}
SPREAD_COLOUR = "#BBBBBB"
CURVE_COLOURS = {1: GROUP_COLOURS[2], 3: GROUP_COLOURS[0], 8: GROUP_COLOURS[5]}  # green, blue, vermillion


def _paper_error(paper: dict, groups: int, shuffle: bool) -> float | None:
    """The paper's ImageNet top-1 error (%) for ShuffleNet 0.5x with `groups`, trained with or without shuffle."""
    table3 = paper.get("table3", {})
    key = "error_with_shuffle" if shuffle else "error_without_shuffle"
    value = table3.get(key, {}).get(str(groups))
    if value is None and shuffle:
        value = paper.get("table2", {}).get("error", {}).get(str(groups))
    return value


def comparison_rows(summary: Summary, paper: dict) -> list[dict]:
    """One row per configuration: this experiment's CIFAR-10 test error beside the paper's ImageNet error."""
    rows = []
    for c in summary.configurations:
        seeds = sorted(c.accuracy_by_seed)
        rows.append({
            "configuration": c.label,
            "seeds": ", ".join(str(s) for s in seeds),
            "cifar10_error_percent": round(c.mean_error_percent, 2),
            "cifar10_error_by_seed": ", ".join(f"{100 * (1 - c.accuracy_by_seed[s]):.2f}" for s in seeds),
            "paper_imagenet_error_percent": _paper_error(paper, c.groups, c.shuffle),
            "parameters": c.parameters,
            "mflops_trained_size": c.mflops,
            "mflops_224_imagenet": c.mflops_224_imagenet,
            "wall_time_min": round(sum(c.wall_time_s.values()) / len(c.wall_time_s) / 60, 1),
        })
    return rows


def gain_rows(summary: Summary, paper: dict) -> list[dict]:
    """The shuffle gain per g: accuracy with minus without (percentage points), per seed and on average,
    beside the paper's error reduction and the largest seed-to-seed spread of the set."""
    table3 = paper.get("table3", {})
    rows = []
    for gain in summary.gains:
        with_error = table3.get("error_with_shuffle", {}).get(str(gain.groups))
        without_error = table3.get("error_without_shuffle", {}).get(str(gain.groups))
        rows.append({
            "groups": gain.groups,
            "gain_points_mean": round(100 * gain.mean, 2),
            "gain_points_by_seed": ", ".join(f"seed {s}: {100 * v:+.2f}" for s, v in sorted(gain.by_seed.items())),
            "seed_spread_points": (round(100 * summary.largest_seed_spread, 2)
                                   if summary.largest_seed_spread is not None else None),
            "paper_gain_points": (round(without_error - with_error, 1)
                                  if with_error is not None and without_error is not None else None),
        })
    return rows


def error_figure(summary: Summary, paper: dict) -> go.Figure:
    """Test error per configuration: this experiment (CIFAR-10, one dot per seed, bar = mean) on the left, the
    paper's ImageNet error for the same configurations on the right (different data: separate axes)."""
    groups = list(dict.fromkeys(c.groups for c in summary.configurations))
    categories = [f"g={g}" for g in groups]
    figure = make_subplots(rows=1, cols=2, horizontal_spacing=0.12, subplot_titles=(
        "this project: CIFAR-10 test error (%)", "the paper: ImageNet top-1 error (%)"))
    for shuffle in (True, False):
        members = {c.groups: c for c in summary.configurations if c.shuffle == shuffle}
        if not members:
            continue
        x = [f"g={g}" for g in groups if g in members]
        figure.add_trace(go.Bar(
            x=x, y=[members[g].mean_error_percent for g in groups if g in members], name=SHUFFLE_NAMES[shuffle],
            marker_color=SHUFFLE_COLOURS[shuffle], offsetgroup=str(shuffle), legendgroup=str(shuffle),
            text=[f"{members[g].mean_error_percent:.1f}" for g in groups if g in members], textposition="inside",
            insidetextanchor="start",  # at the foot of the bar, clear of the seeds' dots at its top
            hovertemplate="%{x}, " + SHUFFLE_NAMES[shuffle] + ": mean error %{y:.2f}%<extra></extra>"),
            row=1, col=1)
        dots_x, dots_y, dots_text = [], [], []
        for g in groups:
            if g in members:
                for seed, accuracy in sorted(members[g].accuracy_by_seed.items()):
                    dots_x.append(f"g={g}")
                    dots_y.append(100 * (1 - accuracy))
                    dots_text.append(f"seed {seed}")
        figure.add_trace(go.Scatter(
            x=dots_x, y=dots_y, mode="markers", name=f"each seed, {SHUFFLE_NAMES[shuffle]}",
            marker=dict(color="black", size=9, symbol="circle-open", line=dict(width=2)),
            offsetgroup=str(shuffle), legendgroup=str(shuffle), showlegend=False, text=dots_text,
            hovertemplate="%{x}, %{text}: error %{y:.2f}%<extra></extra>"), row=1, col=1)
        paper_values = [(f"g={g}", _paper_error(paper, g, shuffle)) for g in groups if g in members]
        paper_values = [(x_, y_) for x_, y_ in paper_values if y_ is not None]
        if paper_values:
            figure.add_trace(go.Bar(
                x=[v[0] for v in paper_values], y=[v[1] for v in paper_values], name=SHUFFLE_NAMES[shuffle],
                marker_color=SHUFFLE_COLOURS[shuffle], marker_pattern_shape="/", offsetgroup=str(shuffle),
                legendgroup=str(shuffle), showlegend=False, text=[f"{v[1]:.1f}" for v in paper_values],
                textposition="outside",
                hovertemplate="%{x}, " + SHUFFLE_NAMES[shuffle] + ": %{y:.1f}% (paper)<extra></extra>"),
                row=1, col=2)
    figure.update_layout(barmode="group", scattermode="group", legend=dict(orientation="h", y=-0.15))
    for col in (1, 2):
        figure.update_xaxes(categoryorder="array", categoryarray=categories, row=1, col=col)
    top = max([100 * (1 - min(c.accuracy_by_seed.values())) for c in summary.configurations] or [1.0])
    figure.update_yaxes(range=[0, top * 1.2], title_text="error (%)", row=1, col=1)
    paper_top = max([v for g in groups for s in (True, False) if (v := _paper_error(paper, g, s)) is not None]
                    or [1.0])
    figure.update_yaxes(range=[0, paper_top * 1.2], row=1, col=2)
    return style(figure, None, height=460)


def gain_figure(summary: Summary, paper: dict) -> go.Figure:
    """The shuffle gain (percentage points of accuracy) per g: a dot per seed, a bar for the mean, the paper's
    ImageNet gain as a diamond, and a band of +- the largest seed-to-seed spread around zero."""
    rows = gain_rows(summary, paper)
    categories = [f"g={row['groups']}" for row in rows]
    figure = go.Figure()
    spread = summary.largest_seed_spread
    if spread is not None and categories:
        figure.add_hrect(y0=-100 * spread, y1=100 * spread, fillcolor=SPREAD_COLOUR, opacity=0.35, line_width=0)
        # A legend entry for the band (shapes have none): a marker that is never drawn in the plot area.
        figure.add_trace(go.Scatter(
            x=[None], y=[None], mode="markers", name=f"\u00b1 largest seed spread ({100 * spread:.2f} points)",
            marker=dict(color=SPREAD_COLOUR, size=14, symbol="square"), hoverinfo="skip"))
    figure.add_trace(go.Bar(
        x=categories, y=[row["gain_points_mean"] for row in rows], name="this project (CIFAR-10), mean",
        marker_color=SHUFFLE_COLOURS[True], opacity=0.8,
        hovertemplate="%{x}: mean gain %{y:+.2f} points<extra></extra>"))
    dots_x, dots_y, dots_text = [], [], []
    for gain in summary.gains:
        for seed, value in sorted(gain.by_seed.items()):
            dots_x.append(f"g={gain.groups}")
            dots_y.append(100 * value)
            dots_text.append(f"seed {seed}")
    figure.add_trace(go.Scatter(
        x=dots_x, y=dots_y, mode="markers", name="each seed", text=dots_text,
        marker=dict(color="black", size=10, symbol="circle-open", line=dict(width=2)),
        hovertemplate="%{x}, %{text}: %{y:+.2f} points<extra></extra>"))
    paper_rows = [row for row in rows if row["paper_gain_points"] is not None]
    figure.add_trace(go.Scatter(
        x=[f"g={row['groups']}" for row in paper_rows], y=[row["paper_gain_points"] for row in paper_rows],
        mode="markers", name="the paper (ImageNet, Table 3)",
        marker=dict(color=SHUFFLE_COLOURS[False], size=14, symbol="diamond"),
        hovertemplate="%{x}: paper's gain %{y:.1f} points<extra></extra>"))
    figure.add_hline(y=0, line_color="black", line_width=1)
    figure.update_xaxes(type="category", categoryorder="array", categoryarray=categories)
    values = dots_y + [row["paper_gain_points"] for row in paper_rows]
    if spread is not None:
        values += [100 * spread, -100 * spread]
    low, high = min(values + [-0.5]), max(values + [0.5])
    pad = 0.15 * (high - low)
    figure.update_yaxes(range=[low - pad, high + pad], title_text="gain (points of accuracy)")
    figure.update_layout(legend=dict(orientation="h", y=-0.15))
    return style(figure, None, height=440)


def curves_figure(results: dict) -> go.Figure:
    """Test accuracy (left) and training loss (right) after every epoch, one line per run: colour by g, dashed
    without shuffle."""
    curve_images = results.get("curve_images")
    accuracy_title = "test accuracy after each epoch" + (f" ({curve_images:,} images)" if curve_images else "")
    figure = make_subplots(rows=1, cols=2, horizontal_spacing=0.1,
                           subplot_titles=(accuracy_title, "training loss (epoch mean)"))
    order = results.get("order") or list(results["runs"])
    groups = sorted({run["groups"] for run in results["runs"].values()})
    colours = {g: CURVE_COLOURS.get(g, group_colour(i + 4)) for i, g in enumerate(groups)}
    for name in order:
        run = results["runs"].get(name)
        if run is None:
            continue
        epochs = [point["epoch"] for point in run["curve"]]
        label = f"g={run['groups']}{'' if run['shuffle'] else ' no shuffle'}, seed {run['seed']}"
        line = dict(color=colours[run["groups"]], dash="solid" if run["shuffle"] else "dash", width=2)
        figure.add_trace(go.Scatter(
            x=epochs, y=[point["test_accuracy"] for point in run["curve"]], mode="lines+markers", name=label,
            line=line, legendgroup=name,
            hovertemplate=label + ", epoch %{x}: %{y:.2%}<extra></extra>"), row=1, col=1)
        figure.add_trace(go.Scatter(
            x=epochs, y=[point["train_loss"] for point in run["curve"]], mode="lines+markers", name=label,
            line=line, legendgroup=name, showlegend=False,
            hovertemplate=label + ", epoch %{x}: loss %{y:.3f}<extra></extra>"), row=1, col=2)
    figure.update_yaxes(tickformat=".0%", row=1, col=1)
    figure.update_xaxes(title_text="epoch", dtick=1)
    figure.update_layout(legend=dict(font=dict(size=FONT_SIZE - 4)))
    return style(figure, None, height=460)


def format_points(value: float | None) -> str:
    """A difference of accuracies as signed percentage points, or 'n/a'."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{100 * value:+.2f} points"


def describe_configuration(c: Configuration) -> str:
    """'g=3 no shuffle: 61.2% (seeds 0, 1: 61.0%, 61.4%)'."""
    seeds = sorted(c.accuracy_by_seed)
    per_seed = ", ".join(f"{c.accuracy_by_seed[s]:.2%}" for s in seeds)
    return f"{c.label}: {c.mean_accuracy:.2%}" + (f" (seeds {', '.join(map(str, seeds))}: {per_seed})"
                                                   if len(seeds) > 1 else f" (seed {seeds[0]})")


def gain_verdict(gain: ShuffleGain, spread: float | None) -> str:
    """One line on a shuffle gain: its size, and whether it stands out of the seed-to-seed spread measured."""
    seeds = len(gain.by_seed)
    head = f"shuffle gain {format_points(gain.mean)} ({f'mean of {seeds} seeds' if seeds > 1 else 'one seed'})"
    if spread is None:
        return f"{head}; with one seed per configuration, the noise of this comparison is not measured"
    yardstick = f"the largest seed-to-seed spread here ({100 * spread:.2f} points)"
    if seeds == 1:
        yardstick += ", measured on other configurations: this one ran with one seed"
    if min(gain.by_seed.values()) > spread:
        return f"{head}; larger than {yardstick}: the shuffle helped beyond the noise of this run"
    if gain.mean > 0:
        return f"{head}; positive, but not beyond {yardstick}: this run cannot tell it from noise"
    return f"{head}; not positive, against {yardstick}: this run does not reproduce the paper's gain"


def cost_note(summary: Summary, planning: dict) -> str:
    """What the set costs: multiply-adds and parameters (about equal by design) and time per batch, measured
    back to back before training when the results file has that measurement."""
    configs = summary.configurations
    mflops = [c.mflops_224_imagenet for c in configs]
    params = [c.parameters for c in configs]
    text = (f"the configurations cost about the same, {min(mflops):.1f} to {max(mflops):.1f} MFLOPs at 224x224 "
            f"(the paper's setting) and {min(params):,} to {max(params):,} parameters: more groups spend the "
            "budget on wider layers.")
    measured = planning.get("measured", {})
    steps = [(c.label, measured[key]["seconds_per_step"]) for c in configs if c.shuffle
             and (key := f"g{c.groups}") in measured]
    if steps:
        timed = ", ".join(f"{seconds:.2f} s at {label}" for label, seconds in steps)
        text += (f" Time is another matter: one training batch took {timed}, measured back to back on this CPU "
                 "before training; multiply-adds do not predict speed here. The training times in the table "
                 "also depend on what else the shared machine was running at the time.")
    return text
