"""Figures and tables of the shuffle experiment: this project's CIFAR-10 runs beside the paper's Tables 2 and 3.

Every number comes from the experiment's results file (via `experiment_results.summarize`); the paper's error
columns from the results file's copy of the paper's tables (`paper.results_section`), the paper's shuffle gains
and Table 2's reading from `paper` itself, by the width the set was trained at.
"""

from __future__ import annotations

import math

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .. import paper as paper_tables
from ..experiment_results import CONFIDENCE, Configuration, ShuffleGain, Summary, student_t_quantile
from .common import FONT_SIZE, GROUP_COLOURS, group_colour, style

SHUFFLE_COLOURS = {True: GROUP_COLOURS[0], False: GROUP_COLOURS[1]}  # blue with shuffle, orange without
SHUFFLE_NAMES = {True: "with shuffle", False: "without shuffle"}
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


def paper_gain_points(width: float | None, groups: int) -> float | None:
    """Table 3's error without shuffle minus Table 2's with it (points) for this width and g; None when the paper
    has no such row."""
    row = paper_tables.TABLE3.get((width, groups))
    return None if row is None else round(row.error_without_shuffle - row.error_with_shuffle, 1)


def gain_rows(summary: Summary) -> list[dict]:
    """The shuffle gain per g: accuracy with minus without (percentage points) per seed, their mean and its 95 %
    confidence interval (None with one seed), beside the paper's error reduction for the same width and g."""
    rows = []
    for gain in summary.gains:
        interval = gain.interval()
        rows.append({
            "groups": gain.groups,
            "seeds": gain.seeds,
            "gain_points_by_seed": ", ".join(f"seed {s}: {100 * v:+.2f}" for s, v in sorted(gain.by_seed.items())),
            "gain_points_mean": round(100 * gain.mean, 2),
            "interval_low_points": round(100 * interval.low, 2) if interval else None,
            "interval_high_points": round(100 * interval.high, 2) if interval else None,
            "paper_gain_points": paper_gain_points(summary.width, gain.groups),
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


def gain_figure(summary: Summary) -> go.Figure:
    """The shuffle gain (percentage points of accuracy) per g: a dot per seed, a bar for the mean with its 95 %
    confidence interval (none with one seed), and the paper's ImageNet gain for the same width and g."""
    rows = gain_rows(summary)
    categories = [f"g={row['groups']}" for row in rows]
    figure = go.Figure()
    confidence = f"{CONFIDENCE:.0%}"
    above = [None if row["interval_high_points"] is None else row["interval_high_points"] - row["gain_points_mean"]
             for row in rows]
    below = [None if row["interval_low_points"] is None else row["gain_points_mean"] - row["interval_low_points"]
             for row in rows]
    figure.add_trace(go.Bar(
        x=categories, y=[row["gain_points_mean"] for row in rows],
        name=f"this project (CIFAR-10): mean, {confidence} interval", marker_color=SHUFFLE_COLOURS[True],
        opacity=0.8, error_y=dict(type="data", symmetric=False, array=above, arrayminus=below, color="black",
                                  thickness=2, width=12),
        customdata=[[f"{row['seeds']} seed{'s' if row['seeds'] > 1 else ''}", _interval_text(row)] for row in rows],
        hovertemplate="%{x}: mean gain %{y:+.2f} points over %{customdata[0]}; %{customdata[1]}<extra></extra>"))
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
    values = (dots_y + [row["paper_gain_points"] for row in paper_rows]
              + [row[key] for row in rows for key in ("interval_low_points", "interval_high_points")
                 if row[key] is not None])
    low, high = min(values + [-0.5]), max(values + [0.5])
    pad = 0.15 * (high - low)
    figure.update_yaxes(range=[low - pad, high + pad], title_text="gain (points of accuracy)")
    figure.update_layout(legend=dict(orientation="h", y=-0.15))
    return style(figure, None, height=440)


def _interval_text(row: dict) -> str:
    if row["interval_low_points"] is None:
        return "one seed: no interval"
    return (f"{CONFIDENCE:.0%} interval {row['interval_low_points']:+.2f} to {row['interval_high_points']:+.2f} "
            "points")


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


def gain_verdict(gain: ShuffleGain) -> str:
    """One line on a shuffle gain: each seed's paired gain, their mean, its 95 % confidence interval by Student's
    t, and whether that interval excludes zero (with one seed: that no interval can be given)."""
    per_seed = ", ".join(f"{100 * value:+.2f}" for _, value in sorted(gain.by_seed.items()))
    if gain.seeds == 1:
        (seed, value), = gain.by_seed.items()
        return (f"shuffle gain {format_points(value)} (one seed, seed {seed}): with one seed no confidence "
                "interval can be given, so this run cannot say whether the gain is more than seed-to-seed noise")
    interval = gain.interval()
    head = (f"shuffle gain {format_points(gain.mean)}, the mean of {gain.seeds} seeds' paired gains ({per_seed}); "
            f"{interval.confidence:.0%} confidence interval {format_points(interval.low)} to "
            f"{format_points(interval.high)} (Student's t, {interval.degrees_of_freedom} degree"
            f"{'s' if interval.degrees_of_freedom > 1 else ''} of freedom)")
    if not interval.excludes_zero:
        return f"{head}: the interval includes zero, so these seeds cannot tell the gain from no gain at all"
    if interval.low > 0:
        return f"{head}: the interval lies above zero, so the shuffle helped here beyond what the seeds' noise explains"
    return f"{head}: the interval lies below zero, so the shuffle hurt in this run beyond the seeds' noise"


def noise_note(summary: Summary) -> str:
    """How the gains' noise is measured: paired seeds, the interval's formula and the t quantile for each number
    of seeds in the set."""
    if not summary.gains:
        return "no configuration has been trained both with and without shuffle yet, so no gain is measured."
    counts = sorted({gain.seeds for gain in summary.gains})
    by_groups = ", ".join(f"{gain.seeds} at g={gain.groups}" for gain in summary.gains)
    text = (f"each gain pairs two models of one seed, trained with and without shuffle (paired seeds: {by_groups}). "
            f"Over n paired gains the {CONFIDENCE:.0%} confidence interval is the mean \u00b1 t \u00d7 s / \u221an, "
            "s their standard deviation and t Student's quantile for n - 1 degrees of freedom")
    quantiles = [f"t = {student_t_quantile((1 + CONFIDENCE) / 2, n - 1):.2f} for {n} seeds" for n in counts if n > 1]
    text += f" ({', '.join(quantiles)})." if quantiles else "."
    if 1 in counts:
        text += " With one seed there is no standard deviation, so no interval can be given."
    if 2 in counts:
        text += (" With two seeds t is large; more seeds shrink it (t = "
                 f"{student_t_quantile((1 + CONFIDENCE) / 2, 2):.2f} for 3 seeds, "
                 f"{student_t_quantile((1 + CONFIDENCE) / 2, 4):.2f} for 5) and measure s better.")
    return text


def table2_reading(width: float | None) -> str:
    """What Table 2 shows at one width, chosen by its numbers: whether every grouped network beats g=1, and
    whether the error falls with every step up in g or where it is lowest."""
    if width is None:
        return "Table 2 has one row per width, and these runs record no width, so none is read here"
    errors = paper_tables.TABLE2_ERROR.get(width)
    if errors is None:
        return f"Table 2 has no row for {width:g}x"
    groups = sorted(errors)
    listed = " / ".join(f"{errors[g]:.1f}" for g in groups)
    text = (f"Table 2 at {width:g}x (~{paper_tables.TABLE2_MFLOPS[width]} MFLOPs) gives {listed} % top-1 error for "
            f"g = {' / '.join(map(str, groups))}: ")
    grouped = [g for g in groups if g > 1]
    if all(errors[g] < errors[1] for g in grouped):
        text += "every grouped network has lower error than g=1"
    else:
        behind = ", ".join(f"g={g}" for g in grouped if errors[g] >= errors[1])
        text += f"not every grouped network beats g=1 ({behind} does not)"
    rises = [(a, b) for a, b in zip(groups, groups[1:]) if errors[b] >= errors[a]]
    if not rises:
        return text + ", and the error falls with every step up in g"
    best = min(groups, key=errors.get)
    steps = ", ".join(f"g={a} to g={b} ({errors[a]:.1f} to {errors[b]:.1f})" for a, b in rises)
    return text + f", but more groups do not always help: the error rises from {steps}, and is lowest at g={best}"


def table3_reading() -> str:
    """What Table 3 shows, chosen by its numbers: in how many of its rows the network trained without shuffle has
    the higher error."""
    rows = list(paper_tables.TABLE3.values())
    worse = [row for row in rows if row.error_without_shuffle > row.error_with_shuffle]
    listed = ", ".join(f"{row.width:g}x g={row.groups}" for row in rows)
    if len(worse) == len(rows):
        return (f"in every row of Table 3 ({listed}) a network **trained** without shuffle has higher error than "
                "the same network trained with it")
    return (f"in {len(worse)} of Table 3's {len(rows)} rows ({listed}) a network **trained** without shuffle has "
            "higher error than the same network trained with it")


def introduction(summary: Summary) -> str:
    """The page's opening: the paper's two claims, Tables 2 and 3 read from their numbers, and what was rerun here."""
    seeds = "; ".join(f"{len(c.accuracy_by_seed)} seed{'s' if len(c.accuracy_by_seed) > 1 else ''} of {c.label}"
                      for c in summary.configurations)
    width = "" if summary.width is None else f" {summary.width:g}x"
    return ("The paper's claims about the shuffle are experiments, not demonstrations. At the same budget, "
            f"{table2_reading(summary.width)}. And {table3_reading()}. This page shows the same comparisons rerun "
            f"here on CIFAR-10: ShuffleNet{width}, every model trained with one recipe ({seeds}); a shuffle gain "
            "compares two models of the same seed, and the gains of several seeds measure its noise.")


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
