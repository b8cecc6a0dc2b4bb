"""A guided lesson: ShuffleNet in seven projector screens on the current picture, reusing the app's figures.
The step lives in the URL (?step=3), so a link opens the lesson where the teacher left it."""

import streamlit as st

import ui
from ui import flops as ui_flops
from ui import lesson as ui_lesson
from ui import url as ui_url
from shufflenet_viz.model import PAPER_MFLOPS

ui.ensure_shell()

STEP_KEY = "lesson_step"
PROJECTOR_CHART_PX = 420  # below the step's title and buttons on a 720-pixel screen
SHUFFLE_VIEWS = {"animation": "the operation", "figure1": "two group convs with a shuffle (Figure 1c)"}
STEPS = ("1x1 convolutions dominate", "Group convolution", "Stacked groups go blind", "The channel shuffle",
         "The ShuffleNet unit", "The network and its cost", "The result on your picture")


def fit() -> dict:
    """Chart options that keep a step on one projector screen (1280x720) in projector mode."""
    return {"height": PROJECTOR_CHART_PX} if ui.projector_mode() else {}


def go_to(step: int) -> None:
    """Open step `step` (the URL follows at the end of the run)."""
    st.session_state[STEP_KEY] = step


def step_1() -> None:
    """Why 1x1 convolutions dominate: the g=1 network's multiply-adds by op."""
    report = ui_flops.report(1, 1.0, 224, 1000)
    ops = [op for unit in report.units for op in unit.ops]
    pointwise = sum(op.macs for op in ops if op.op in ("compress_conv", "expand_conv")) / report.total_macs
    st.markdown(f"In a ShuffleNet with dense 1x1 convolutions (g=1), **{pointwise:.0%}** of the multiply-adds are "
                f"1x1 convolutions: they mix every channel with every other one, c x m per pixel. The 3x3 "
                f"depthwise conv costs only 9 per channel and pixel.")
    ui_lesson.show_figure(ui_lesson.pointwise_figure(), "lesson_pointwise", "lesson_1_pointwise", **fit())


def step_2() -> None:
    """One group convolution: each output reads its own group."""
    figure, _ = ui_lesson.flow_figure(12, 3, 1, (False,))
    ui_lesson.show_figure(figure, "lesson_group_conv", "lesson_2_group_conv", **fit())
    st.markdown("A **group convolution** splits the channels into g groups; each output channel reads only its own "
                "group. A 1x1 conv with g=3 costs a third of the dense one, so the same budget affords wider "
                "layers.")


def step_3() -> None:
    """Stacked group convolutions without shuffle (the paper's Figure 1a)."""
    figure, stacks = ui_lesson.flow_figure(12, 3, 3, (False,))
    ui_lesson.show_figure(figure, "lesson_blind", "lesson_3_blind", **fit())
    st.metric("Output channels that hear every group", f"{stacks[0].outputs_hearing_every_group} of "
                                                          f"{stacks[0].channels}")
    st.markdown("Stack group convolutions and each group stays **blind** to the others (the paper's Figure 1a): "
                "however deep the stack, information never crosses between groups.")


def step_4() -> None:
    """The shuffle: the animation with its exports, or Figure 1 with a shuffle."""
    channels = ui_lesson.LESSON_CHANNELS[ui.projector_mode()]
    figure, stacks = ui_lesson.flow_figure(12, 3, 2, (False, True))
    view = st.segmented_control("Show", list(SHUFFLE_VIEWS), format_func=SHUFFLE_VIEWS.get, key="lesson_shuffle_view",
                                required=True, default="animation", label_visibility="collapsed")
    if view == "animation":
        ui_lesson.show_figure(ui_lesson.animation(channels, 3), "lesson_animation", "lesson_4_shuffle", **fit())
        ui_lesson.animation_exports(channels, 3, "lesson_export")
    else:
        ui_lesson.show_figure(figure, "lesson_figure1", "lesson_4_figure1", **fit())
    st.markdown(f"Reshape to g x C/g, transpose, flatten: no arithmetic at all. After one shuffle every group "
                f"hears every group: {stacks[1].outputs_hearing_every_group} of {stacks[1].channels} output "
                f"channels, against {stacks[0].outputs_hearing_every_group} without.")


def step_5(current) -> None:
    """The unit of the right-hand model on the picture (Figure 2b)."""
    loaded = ui.model_pair()[1]
    unit = "stage2.unit2"
    title = f"{loaded.label}, {unit}: the paper's Figure 2b"
    ui_lesson.show_figure(ui_lesson.diagram_figure(loaded.name, current.sha256, unit, "live", "shuffle", title,
                                                   current.image, compact=True), "lesson_unit", "lesson_5_unit",
                          **fit())
    st.page_link("pages/unit.py", label="Open the unit page: click any box for its feature maps",
                 icon=":material/account_tree:", query_params={"model": loaded.name, "unit": unit})


def step_6() -> None:
    """The widths a fixed budget affords for each g (Table 1)."""
    _, rows = ui_lesson.widths()
    ui_lesson.show_figure(ui_lesson.widths_figure(), "lesson_widths", "lesson_6_widths", **fit())
    st.markdown("At the budget of the g=1 unit, larger g affords more channels: "
                + ", ".join(f"g={row.groups}: **{row.affordable}**" for row in rows)
                + ", Table 1's widths. The whole network stays near 140 MFLOPs (Table 1: "
                + ", ".join(f"{PAPER_MFLOPS[row.groups]}" for row in rows) + " for g = 1, 2, 3, 4, 8; the FLOPs "
                "page recounts them).")


def step_7(current) -> None:
    """Both models' answers on the picture."""
    pair = ui.model_pair()
    for side, (column, loaded) in enumerate(zip(st.columns(2, gap="large"), pair)):
        with column:
            name, probability = ui.classify_cached(loaded.name, current.sha256, current.image).top(1)[0]
            st.subheader(f"{loaded.label}: {name} ({probability:.0%})")
            ui_lesson.show_figure(ui.top_k_figure_cached(loaded.name, current.sha256, side, current.image),
                                  f"lesson_top_k_{side}", f"lesson_7_top5_{side}", **fit())
    st.caption("The comparison is the one chosen in the sidebar: with the ImageNet models installed, g=3 vs g=8 "
               "(official 0.5x); otherwise the CIFAR-10 g=1 vs g=3 pair trained here.")


current = ui.require_image()
ui_url.from_url(STEP_KEY, "step", lambda raw: int(raw) if 1 <= int(raw) <= len(STEPS) else None,
                lambda raw: f"The link asks for step {raw!r}; the lesson has steps 1 to {len(STEPS)}. "
                            f"Starting at step 1.")
step = st.session_state.setdefault(STEP_KEY, 1)
st.title(f"Lesson {step} of {len(STEPS)}: {STEPS[step - 1]}", anchor=False)
back, middle, forward = st.columns([1, 4, 1], vertical_alignment="center")
back.button("Back", key="lesson_back", on_click=go_to, args=(step - 1,), disabled=step == 1,
            icon=":material/arrow_back:", width="stretch")
middle.progress(step / len(STEPS))
forward.button("Next", key="lesson_next", on_click=go_to, args=(step + 1,), disabled=step == len(STEPS),
               icon=":material/arrow_forward:", width="stretch", type="primary")
[step_1, step_2, step_3, step_4, lambda: step_5(current), step_6, lambda: step_7(current)][step - 1]()
ui_url.to_url({"step": (STEP_KEY, step)})
