"""Classify (landing page): both models' top-5 for the current picture, what each model sees, their model cards.
An open card stays open in a bookmark (?left_card=1)."""

import streamlit as st

import ui
from ui import url as ui_url
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


def card_key(side: int) -> str:
    """The key of a side's model card (an expander whose open state is kept)."""
    return f"model_card_{side}"


def model_card(loaded: LoadedModel, side: int) -> None:
    """What the manifest says about a model: data, accuracy, per-class results, how it was trained.

    Its content runs only while the card is open: two charts per card would otherwise be sent on every run.
    """
    ui_url.flag(card_key(side), f"{ui.SIDES[side]}_card", False)
    with st.expander(f"Model card: {loaded.label}", key=card_key(side), on_change="rerun") as card:
        if not card.open:
            return
        entry, metrics, training = loaded.entry, loaded.entry.get("metrics", {}), loaded.entry.get("training", {})
        more = " ..." if len(loaded.classes) > ui.CARD_MAX_CLASSES else ""
        st.markdown(f"**Dataset:** {entry.get('dataset', 'not recorded')}  \n"
                    f"**Classes ({len(loaded.classes)}):** {', '.join(loaded.classes[:ui.CARD_MAX_CLASSES])}{more}  \n"
                    f"**Preprocessing:** {loaded.preprocessing.describe()}")
        accuracy = metrics.get("test_accuracy")
        reported_error = metrics.get("top1_error_percent_reported")
        if isinstance(accuracy, (int, float)):
            st.metric("Test accuracy", f"{accuracy:.2%}", help="Measured by this project on the test set.")
        elif isinstance(reported_error, (int, float)):
            st.metric("Top-1 accuracy (reported)", f"{100 - reported_error:.1f}%",
                      help="Reported by the publisher on the ImageNet-1k validation set; not measured here "
                           "(ImageNet is not available to this project).")
        elif isinstance(metrics.get("top5_error_percent_reported"), (int, float)):
            st.metric("Top-5 accuracy (reported)", f"{100 - metrics['top5_error_percent_reported']:.1f}%",
                      help="Reported by the publisher on the ImageNet-1k validation set; not measured here.")
        else:
            st.metric("Accuracy", "not measured here")
        if metrics.get("source"):
            st.caption(metrics["source"])
        provenance = entry.get("provenance")
        if provenance:
            st.markdown(f"**Published by:** {provenance.get('homepage', 'not recorded')}  \n"
                        f"**Licence:** {provenance.get('licence', 'not recorded')}  \n"
                        f"**Downloaded from:** {provenance.get('fetched_from', 'not recorded')}  \n"
                        f"**Unit layout:** {loaded.model.config.unit_layout.description}")
        ablation = metrics.get("ablation", {})
        if "accuracy_with_shuffle" in ablation and "accuracy_without_shuffle" in ablation:
            st.markdown(f"**Channel shuffle switched off** ({ablation.get('images', 'test subset')}): "
                        f"{ablation['accuracy_with_shuffle']:.1%} with shuffle, "
                        f"{ablation['accuracy_without_shuffle']:.1%} without"
                        f"{' (with one group the shuffle changes nothing)' if loaded.groups == 1 else ''}.")
        per_class_figure, matrix_figure = ui.model_card_figures_cached(loaded.name, side)
        if per_class_figure is not None:
            st.plotly_chart(per_class_figure, theme=None, key=f"per_class_{side}")
        if matrix_figure is not None:
            st.plotly_chart(matrix_figure, theme=None, key=f"confusion_{side}")
        if training:
            minutes = training.get("wall_time_s")
            duration = f", {minutes / 60:.1f} min" if isinstance(minutes, (int, float)) else ""
            epochs = f", {training['epochs']} epochs" if "epochs" in training else ""
            st.markdown(f"**Trained on:** {training.get('hardware', 'not recorded')}{duration}{epochs}  \n"
                        f"**Recipe:** {training.get('recipe', 'not recorded')}")
            if training.get("command"):
                st.code(training["command"], language="bash")


current = ui.require_image()
left, right = ui.model_pair()
answers = [ui.classify_cached(m.name, current.sha256, current.image) for m in (left, right)]

st.title("Classify")
picture_column, summary_column = st.columns([1, 3], gap="large")
with picture_column:
    st.image(current.thumbnail_jpeg, caption=current.name, output_format="JPEG")
with summary_column:
    agreement_line(left, right, answers)
    st.markdown("Each model answers with one of the classes it was trained on, even when the picture shows "
                "none of them. Below: the five most likely classes, the time of the forward pass, and the "
                "picture exactly as the network receives it.")

for side, (column, loaded, answer) in enumerate(zip(st.columns(2, gap="large"), (left, right), answers)):
    with column:
        st.subheader(loaded.label)
        st.plotly_chart(ui.top_k_figure_cached(loaded.name, current.sha256, side, current.image), theme=None,
                        key=f"top_k_{side}")
        st.metric("Forward pass", f"{answer.forward_seconds * 1000:.1f} ms",
                  help="One image on this server's CPU, measured when the picture was first classified.")
        spec = loaded.preprocessing
        upsampled = f", upsampled to {spec.input_size}x{spec.input_size}" if spec.input_size != spec.native_size else ""
        st.image(ui.seen_png_cached(loaded.name, current.sha256, current.image), output_format="PNG",
                 caption=f"What the model sees: {spec.native_size}x{spec.native_size} pixels{upsampled}")
        model_card(loaded, side)
ui_url.to_url({f"{ui.SIDES[side]}_card": (card_key(side), bool(st.session_state[card_key(side)]))
               for side in range(2)})
