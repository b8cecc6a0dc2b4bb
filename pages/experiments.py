"""Does the shuffle help? This project's CIFAR-10 rerun of the paper's Tables 2 and 3, from the results file.
The recipe section, when open, stays open in a bookmark (?recipe=true), and so do the models measured."""

import streamlit as st

import ui
from ui import experiments as ui_experiments
from ui.display import show
from ui.url import bound_flag
from shufflenet_viz.experiment_results import CONFIDENCE
from shufflenet_viz.figures.experiments import (comparison_rows, cost_note, describe_configuration, gain_rows,
                                                gain_verdict, introduction, noise_note)

ui.ensure_shell()

st.title("Does the shuffle help? Tables 2 and 3, rerun")

data = ui_experiments.results()
if data is None:
    st.info(f"No experiment results in `{ui_experiments.results_file()}` yet. Train the set with "
            "`python -m shufflenet_viz experiment --data ../shared/data/cifar10/cifar10_jpg.tar.gz` (it resumes "
            "where it stopped) and reload this page.")
    st.stop()

path = ui_experiments.results_file()
recipe = data.get("recipe", {})
order = data.get("order") or list(data["runs"])
missing = [name for name in order if name not in data["runs"]]
if not data["runs"]:
    st.info("The experiment has started but no model has finished yet; the numbers appear here as each one does.")
    st.stop()
if missing:
    st.warning(f"{len(data['runs'])} of {len(order)} models have finished; still to come: {', '.join(missing)}. "
               "Everything below covers the finished ones only.")

summary, error_fig, gain_fig, curves_fig = ui_experiments.figures(str(path), path.stat().st_mtime)
paper = data.get("paper", {})
st.markdown(introduction(summary))
st.caption(f"{data.get('train_images', 0):,} training images, {data.get('test_images', 0):,} test images, "
           f"{recipe.get('epochs')} epochs at {recipe.get('size')}x{recipe.get('size')}, width "
           f"{recipe.get('width')}x, batch {recipe.get('batch_size')}. Paper: Zhang et al. 2017, "
           "[arXiv 1707.01083](https://arxiv.org/abs/1707.01083), ImageNet.")

st.header("Test error per configuration, beside the paper")
show(error_fig, "experiments_error")
st.dataframe(comparison_rows(summary, paper), hide_index=True, column_config={
    "cifar10_error_percent": st.column_config.NumberColumn("CIFAR-10 error % (mean)", format="%.2f"),
    "cifar10_error_by_seed": "CIFAR-10 error % by seed",
    "paper_imagenet_error_percent": st.column_config.NumberColumn("paper ImageNet error %", format="%.1f"),
    "mflops_trained_size": st.column_config.NumberColumn(f"MFLOPs at {recipe.get('size')}px, 10 classes",
                                                         format="%.2f"),
    "mflops_224_imagenet": st.column_config.NumberColumn("MFLOPs at 224px, 1000 classes", format="%.1f"),
    "wall_time_min": st.column_config.NumberColumn("training time (min)", format="%.1f")})
st.caption("Multiply-adds as the paper counts them (convolutions and classifier, as on the FLOPs page); "
           "parameters of the 10-class models. Training time is wall time on the machine named below.")

st.header("The shuffle gain, against the noise")
show(gain_fig, "experiments_gain")
points = {"format": "%+.2f"}
st.dataframe(gain_rows(summary), hide_index=True, column_config={
    "groups": "g", "seeds": "seeds", "gain_points_by_seed": "gain by seed (points)",
    "gain_points_mean": st.column_config.NumberColumn("gain (points, mean)", **points),
    "interval_low_points": st.column_config.NumberColumn(f"{CONFIDENCE:.0%} interval from", **points),
    "interval_high_points": st.column_config.NumberColumn(f"{CONFIDENCE:.0%} interval to", **points),
    "paper_gain_points": st.column_config.NumberColumn("paper's gain (points)", format="%.1f")})
for gain in summary.gains:
    st.markdown(f"- **g={gain.groups}**: {gain_verdict(gain)}.")
st.caption("Gain = test accuracy trained with shuffle minus trained without, for the same seed: both start from "
           "the same weights and see the same batches, so the pair differs only in the shuffle. The interval is "
           "Student's t over the seeds' paired gains; the paper's gain is Table 3's error without shuffle minus "
           "with it, on ImageNet, for the same width and g.")

st.header("Training curves")
show(curves_fig, "experiments_curves")

st.header("Trained without shuffle, measured on your picture")
no_shuffle = [name for name in order if name in data["runs"] and not data["runs"][name]["shuffle"]]
available = [name for name in no_shuffle if name in ui.loaded_models()]
st.markdown("Trained without shuffle, a grouped network's groups never meet inside a stage: its 1x1 group "
            "convolutions and depthwise convolutions keep every channel in its group. These models are in the "
            "sidebar's model lists like any other; here each one is checked on the current picture, from the "
            f"output of {ui_experiments.FLOW_STAGE}."
            f"unit{ui_experiments.FLOW_AFTER} to the end of the stage (the first unit of a stage concatenates "
            "its branch with the pooled input, which straddles groups by construction).")
current = ui.current_image()
if not available:
    st.info("None of the experiment's models trained without shuffle could be loaded; the sidebar says why.")
elif current is None:
    st.info("Choose a picture in the sidebar to measure these models on it.")
else:
    ui_experiments.show_separation(data, ui_experiments.measured_input(data, available), current)

st.header("What these numbers do and do not show")
best = max(summary.configurations, key=lambda c: c.mean_accuracy)
st.markdown(
    f"- **Shown:** with this recipe, on this data, these configurations reach the accuracies above; "
    f"the best is {describe_configuration(best)}. Accuracies and gains are measured on "
    f"{data.get('test_images', 0):,} CIFAR-10 test images.\n"
    f"- **Not shown:** the paper's ImageNet numbers. CIFAR-10 has 10 classes and 32x32 pictures "
    f"(trained here at {recipe.get('size')}x{recipe.get('size')}), so the last stage sees very few pixels; "
    f"{data.get('train_images', 0):,} training images and {recipe.get('epochs')} epochs make a short schedule: "
    "the models are far from converged, and differences between configurations can shrink, grow or reverse "
    "with longer training.\n"
    f"- **Noise:** {noise_note(summary)}\n"
    f"- **Cost:** {cost_note(summary, data.get('planning', {}))}")

with bound_flag(st.expander, "The recipe and how it was chosen", key="recipe", on_change="rerun") as recipe_card:
    if recipe_card.open:
        st.json({"recipe": recipe, "planning": data.get("planning", {}), "command": data.get("command", "")})
        hardware = sorted({run.get("hardware", "") for run in data["runs"].values()})
        st.caption(f"Trained on: {'; '.join(hardware)}. Results file: `{path.name}` in `{path.parent}`.")
