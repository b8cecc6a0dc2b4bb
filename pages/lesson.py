"""A guided lesson: ShuffleNet in seven projector screens on the current picture, reusing the app's figures.
The step lives in the URL (?step=3), so a link opens the lesson where the teacher left it."""

import streamlit as st

import ui
from ui import cost as cost_ui
from ui import information_flow as ui_flow
from ui import lesson as lesson_ui
from ui import shuffle as shuffle_ui
from ui import unit as unit_ui
from ui import url as ui_url
from shufflenet_viz import flow
from shufflenet_viz.cost import affordable_widths_sentence
from shufflenet_viz.paper import TABLE1_MFLOPS
from shufflenet_viz.unit_diagram import figure2_name, unit_lesson_text, unit_of

ui.ensure_shell()

SHUFFLE_VIEWS = {"animation": "the operation", "figure1": "group convs + shuffle (Figure 1c)"}
STEPS = ("1x1 convolutions dominate", "Group convolution", "Stacked groups go blind", "The channel shuffle",
         "The ShuffleNet unit", "The network and its cost", "The result on your picture")


def step_1() -> None:
    """Why 1x1 convolutions dominate: the g=1 network's multiply-adds by op."""
    st.markdown(f"A 1x1 convolution mixes its **c** input channels into each of its **m** output channels: c x m "
                f"multiply-adds per pixel. With ordinary 1x1 convolutions (one group, g=1: the bars' \"1x1 GConv\"), "
                f"they are **{lesson_ui.pointwise_share():.0%}** of ShuffleNet's multiply-adds; the 3x3 depthwise "
                f"conv costs only 9 per channel and pixel.")
    ui.show(lesson_ui.pointwise_figure(), "lesson_pointwise", download="lesson_1_pointwise", **lesson_ui.fit())


def step_2() -> None:
    """One group convolution: each output reads its own group."""
    st.markdown("A **group convolution** splits the channels into **g** groups (colours); each output channel "
                "reads only its own group, so a 1x1 conv takes c x m / g multiply-adds: with g=3 it costs a third, "
                "and the same budget affords wider layers. Each channel is drawn as g dots, one per input group: filled in the group's "
                "colour when that group reaches the channel, an empty circle when it does not.")
    figure, _ = shuffle_ui.figure1(12, 3, 1, (False,))
    ui.show(figure, "lesson_group_conv", download="lesson_2_group_conv", **lesson_ui.fit())


def step_3() -> None:
    """Stacked group convolutions without shuffle (the paper's Figure 1a)."""
    figure, stacks = shuffle_ui.figure1(12, 3, 3, (False,))
    ui.show(figure, "lesson_blind", download="lesson_3_blind", **lesson_ui.fit())
    st.metric("Output channels that hear every group", f"{stacks[0].outputs_hearing_every_group} of "
                                                          f"{stacks[0].channels}")
    st.markdown("Stack group convolutions and each group stays **blind** to the others (the paper's Figure 1a): "
                "however deep the stack, information never crosses between groups.")


def step_4() -> None:
    """The shuffle: the animation with its exports, or Figure 1 with a shuffle."""
    channels = lesson_ui.LESSON_CHANNELS[ui.projector_mode()]
    figure, stacks = shuffle_ui.figure1(12, 3, 2)
    choice, exports = st.columns(2, vertical_alignment="center")
    view = choice.segmented_control("Show", list(SHUFFLE_VIEWS), format_func=SHUFFLE_VIEWS.get,
                                    key="lesson_shuffle_view", required=True, default="animation",
                                    label_visibility="collapsed")
    if view == "animation":
        with exports:
            lesson_ui.animation_exports(channels, 3, "lesson_export")
        # On a slide the exports above stand for the figure's own downloads.
        ui.show(lesson_ui.shuffle_animation_for_screen(channels, 3), "lesson_animation",
                download=None if ui.projector_mode() else "lesson_4_shuffle")
    else:
        ui.show(figure, "lesson_figure1", download="lesson_4_figure1", **lesson_ui.fit())
    st.markdown(f"Reshape to g x C/g, transpose, flatten: no arithmetic at all. {flow.toy_shuffle_sentence(*stacks)}")


def step_5(current) -> None:
    """The unit of the right-hand model on the picture (Figure 2b, in this model's order)."""
    loaded = ui.model_pair()[1]
    unit = "stage2.unit2"
    title = f"{loaded.label}, {unit}: {figure2_name(unit_of(loaded.model, unit))}"
    ui.show(unit_ui.diagram_figure(loaded.name, current.sha256, unit, "live", "shuffle", title, current.image,
                                   compact=True), "lesson_unit", download="lesson_5_unit", **lesson_ui.fit(1.15))
    st.markdown(unit_lesson_text(unit_of(loaded.model, unit)))
    st.page_link("pages/unit.py", label="Open the unit page: click any box for its feature maps",
                 icon=":material/account_tree:", query_params=unit_ui.link_to_unit(loaded.name, unit))


def step_6() -> None:
    """The widths a fixed budget affords for each g (Table 1)."""
    _, rows = cost_ui.widths()
    ui.show(cost_ui.widths_figure(), "lesson_widths", download="lesson_6_widths", **lesson_ui.fit())
    st.markdown(affordable_widths_sentence(rows) + " The whole network stays near 140 million multiply-adds (the "
                "paper's \"MFLOPs\": millions of multiply-adds; Table 1: "
                + ", ".join(f"{TABLE1_MFLOPS[row.groups]}" for row in rows) + " for g = "
                + ", ".join(str(row.groups) for row in rows) + "; the FLOPs page recounts them).")


def step_7(current) -> None:
    """Both models' answers on the picture, then the right-hand model with its shuffle on and switched off."""
    pair = ui.model_pair()
    for side, loaded in ui.side_by_side(pair):
        name, probability = ui.classify_cached(loaded.name, current.sha256, current.image).top(1)[0]
        st.subheader(f"{loaded.label}: {name} ({probability:.0%})", anchor=False)
    right = pair[1]
    ui.show(lesson_ui.shuffle_off_figure(right.name, current.sha256, current.image), "lesson_shuffle_off",
            download="lesson_7_shuffle_off", **lesson_ui.fit(1.05))
    st.markdown(lesson_ui.shuffle_off_sentence(
        right, ui.classify_cached(right.name, current.sha256, current.image),
        ui_flow.classify_without_shuffle(right.name, current.sha256, current.image)))


current = ui.require_image()
step = lesson_ui.open_step(len(STEPS))
st.title(f"Lesson {step} of {len(STEPS)}: {STEPS[step - 1]}", anchor=False)
lesson_ui.step_buttons(step, len(STEPS))
[step_1, step_2, step_3, step_4, lambda: step_5(current), step_6, lambda: step_7(current)][step - 1]()
ui_url.to_url({"step": (lesson_ui.STEP_KEY, step)})
