"""Classify (landing page): both models' top-5 for the current picture, what each model sees, their model cards.
An open card stays open in a bookmark (?left_card=true)."""

import streamlit as st

import ui
from ui.model_card import model_card
from ui.screen import narrow_screen
from shufflenet_viz.weights import LoadedModel

ui.ensure_shell()


def agreement_line(left: LoadedModel, right: LoadedModel, answers) -> None:
    """One sentence: do the two models give the same class?"""
    (left_class, left_p), (right_class, right_p) = (answer.top(1)[0] for answer in answers)
    if left_class == right_class:
        st.success(f"The models agree: both say **{left_class}** ({left.label}: {left_p:.0%}, "
                   f"{right.label}: {right_p:.0%}).")
    else:
        st.warning(f"The models disagree: {left.label} says **{left_class}** ({left_p:.0%}), "
                   f"{right.label} says **{right_class}** ({right_p:.0%}).")


st.title("Classify")
current = ui.require_image()
left, right = ui.model_pair()
answers = [ui.classify_cached(m.name, current.sha256, current.image) for m in (left, right)]

# A phone stacks the columns: its answer comes first, the picture (as tall as the screen is wide) under it.
if narrow_screen():
    summary_column, picture_column = st.container(), st.container()
else:
    picture_column, summary_column = st.columns([1, 3], gap="large")
with summary_column:
    with st.container(key="classify_answer"):
        agreement_line(left, right, answers)
    st.markdown("Each model answers with one of the classes it was trained on, even when the picture shows "
                "none of them. Below: the five most likely classes, the time of the forward pass, and the "
                "picture exactly as the network receives it.")
with picture_column:
    st.image(current.thumbnail_jpeg, caption=current.name, output_format="JPEG")

for side, (loaded, answer) in ui.side_by_side(list(zip((left, right), answers))):
    st.subheader(loaded.label)
    ui.show(ui.top_k_figure(loaded.name, current.sha256, side, current.image), f"top_k_{side}")
    st.metric("Forward pass", f"{answer.forward_seconds * 1000:.1f} ms",
              help="One image on this server's CPU, measured when the picture was first classified.")
    spec = loaded.preprocessing
    upsampled = f", upsampled to {spec.input_size}x{spec.input_size}" if spec.input_size != spec.native_size else ""
    st.image(ui.seen_png_cached(loaded.name, current.sha256, current.image), output_format="PNG",
             caption=f"What the model sees: {spec.native_size}x{spec.native_size} pixels{upsampled}")
    model_card(loaded, side)
