"""The Classify page's model card: what a model's manifest says about it (data, accuracy, per-class results,
how it was trained), in an expander whose open state is kept in the URL (left_card, right_card)."""

from __future__ import annotations

import streamlit as st

from shufflenet_viz.weights import LoadedModel

from .classify import CARD_MAX_CLASSES, model_card_figures
from .display import show
from .state import SIDES
from .url import bound_flag


def card_key(side: int) -> str:
    """The key (and URL parameter) of a side's model card."""
    return f"{SIDES[side]}_card"


def model_card(loaded: LoadedModel, side: int) -> None:
    """The model card of one side. Its content runs only while the card is open: two charts per card would
    otherwise be sent on every run."""
    with bound_flag(st.expander, f"Model card: {loaded.label}", key=card_key(side), on_change="rerun") as card:
        if card.open:
            _card_body(loaded, side)


def _card_body(loaded: LoadedModel, side: int) -> None:
    entry, metrics, training = loaded.entry, loaded.entry.get("metrics", {}), loaded.entry.get("training", {})
    more = " ..." if len(loaded.classes) > CARD_MAX_CLASSES else ""
    st.markdown(f"**Dataset:** {entry.get('dataset', 'not recorded')}  \n"
                f"**Classes ({len(loaded.classes)}):** {', '.join(loaded.classes[:CARD_MAX_CLASSES])}{more}  \n"
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
    per_class_figure, matrix_figure = model_card_figures(loaded.name, side)
    if per_class_figure is not None:
        show(per_class_figure, f"per_class_{side}")
    if matrix_figure is not None:
        show(matrix_figure, f"confusion_{side}")
    if training:
        minutes = training.get("wall_time_s")
        duration = f", {minutes / 60:.1f} min" if isinstance(minutes, (int, float)) else ""
        epochs = f", {training['epochs']} epochs" if "epochs" in training else ""
        st.markdown(f"**Trained on:** {training.get('hardware', 'not recorded')}{duration}{epochs}  \n"
                    f"**Recipe:** {training.get('recipe', 'not recorded')}")
        if training.get("command"):
            st.code(training["command"], language="bash")
