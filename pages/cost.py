"""The cost arithmetic of section 3.2: ResNet, ResNeXt and ShuffleNet units for chosen c, m, g, h, w, and the
widths a fixed budget buys for each g (Table 1), checked against flops.py."""

import streamlit as st

import ui
from ui import cost as cost_ui
from ui import flops as flops_ui
from ui.url import bound_number
from shufflenet_viz.cost import (ARCHITECTURES, LIMIT, dominance_caption, format_macs, network_mflops,
                                 setting_problem, unit_macs, widths_against_table1)
from shufflenet_viz.model import GROUPS
from shufflenet_viz.paper import TABLE1_MFLOPS

ui.ensure_shell()

FIELDS = {  # key -> (label, default: Stage 2 of the g=3 network at 224x224, help)
    "c": ("c: input = output channels", 240, "Channels entering and leaving the unit."),
    "m": ("m: bottleneck channels", 60, "Channels inside the unit; ShuffleNet uses c/4."),
    "g": ("g: groups", 3, "Groups of the group convolutions (ResNet ignores it)."),
    "h": ("h: map height", 28, "Stage 2 of a 224x224 input: 28."),
    "w": ("w: map width", 28, "Stage 2 of a 224x224 input: 28."),
}
PRESET_KEY = "cost_preset"
OWN = "my own numbers"


def on_preset() -> None:
    """Copy a real unit's c, m, g, h, w into the inputs (their keys are the fields' names)."""
    setting = cost_ui.PRESETS.get(st.session_state.get(PRESET_KEY))
    if setting:
        for field, value in zip(FIELDS, setting):
            st.session_state[field] = value


st.title("Cost arithmetic")
st.markdown("Section 3.2 of the paper in numbers. A bottleneck unit with **c** channels in and out, **m** "
            "channels inside and an **h x w** feature map costs, in multiply-adds:\n"
            "- **ResNet**: 1x1 conv, 3x3 conv, 1x1 conv: `hw(2cm + 9m²)`\n"
            "- **ResNeXt**: the 3x3 conv in g groups: `hw(2cm + 9m²/g)`\n"
            "- **ShuffleNet**: both 1x1 convs in g groups, the 3x3 depthwise: `hw(2cm/g + 9m)`")
st.selectbox("Take the numbers of a real unit", [OWN, *cost_ui.PRESETS], key=PRESET_KEY, on_change=on_preset)
inputs = st.columns(len(FIELDS))
values = {field: int(bound_number(column.number_input, text, 1, LIMIT, key=field, default=default, step=1, help=hint))
          for column, (field, (text, default, hint)) in zip(inputs, FIELDS.items())}
problem = setting_problem(**values)
if problem:
    st.error(problem)
else:
    macs = unit_macs(**values)
    cells = st.columns(3)
    for cell, (name, words) in zip(cells, ARCHITECTURES.items()):
        cell.metric(words.split(":")[0], format_macs(macs[name]),
                    f"{macs[name] / macs['resnet']:.1%} of ResNet" if name != "resnet" else None,
                    delta_color="off", delta_arrow="off")
    ui.show(cost_ui.unit_cost_figure(*values.values(), tuple(macs.items())), "cost_formulas",
            download="cost_formulas")
    same = [name for name, setting in cost_ui.PRESETS.items() if setting == tuple(values.values())]
    if same:
        counted = cost_ui.flops_unit(values["g"])
        st.success(f"These are the numbers of the {same[0]}: the FLOPs page counts "
                   f"{counted.flops_macs:,} multiply-adds for it, and the ShuffleNet formula gives "
                   f"{macs['shufflenet']:,.0f}.")
    st.caption(dominance_caption(values["c"], values["m"], values["g"]))

st.header("What the savings buy: wider layers (Table 1)")
budget, rows = cost_ui.widths()
st.markdown(f"Fix the budget at one Stage 2 unit of the g=1 network (144 channels on 28x28: "
            f"{budget / 1e6:.2f} M multiply-adds). Solving `hw(c²/(2g) + 9c/4) = budget` for each g, and "
            f"rounding down so the bottleneck c/4 splits into g groups, and doubling the channels in each later "
            f"stage (which halves h and w), gives {widths_against_table1(rows)}.")
ui.show(cost_ui.widths_figure(), "cost_widths", download="affordable_widths")
st.dataframe([{"g": row.groups, "c that spends the budget": round(row.exact, 1), "affordable width": row.affordable,
               "stage widths": " / ".join(map(str, row.stage_widths)),
               "Table 1": " / ".join(map(str, row.table1)), "same": "yes" if row.matches_table1 else "no"}
              for row in rows], hide_index=True, key="cost_width_table")
with st.expander("The whole network at these widths (as the FLOPs page counts it)", key="cost_network",
                 on_change="rerun") as network:
    if network.open:  # five reports take a moment on a busy server: computed only when asked for
        reports = {g: flops_ui.report(g, 1.0, 224, 1000) for g in GROUPS}
        st.dataframe([{"g": g, "MFLOPs (counted here)": round(network_mflops(g, reports[g]), 1),
                       "MFLOPs (Table 1)": TABLE1_MFLOPS[g]} for g in GROUPS], hide_index=True,
                     key="cost_network_table")
        st.caption("The whole ShuffleNet 1x at 224x224 with Table 1's widths, as the FLOPs page counts it: about "
                   "140 M for every g, as the paper designed.")
