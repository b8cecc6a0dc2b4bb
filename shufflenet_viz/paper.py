"""Every number this project quotes from the ShuffleNet v1 paper, with the table it stands in.

Zhang, Zhou, Lin and Sun, "ShuffleNet: An Extremely Efficient Convolutional Neural Network for Mobile
Devices", 2017, arXiv 1707.01083 (v2). Errors are ImageNet top-1 classification errors in percent, complexities
MFLOPs as the paper counts them (multiply-adds) at 224x224.

Table 1's architecture columns, the units per stage and the output channels of each stage for every g, are the
data the network is built from, so they are written once, in `model.py` (`STAGE_REPEATS`,
`STAGE_OUT_CHANNELS`), and shown here beside the rest of the table.
"""

from __future__ import annotations

from dataclasses import dataclass

from .model import STAGE_OUT_CHANNELS, STAGE_REPEATS

CITATION = "Zhang et al. 2017"

TABLE1_STAGE_REPEATS = STAGE_REPEATS
TABLE1_STAGE_OUT_CHANNELS = STAGE_OUT_CHANNELS
# Table 1, complexity row: MFLOPs of ShuffleNet 1x for g = 1, 2, 3, 4, 8.
TABLE1_MFLOPS: dict[int, int] = {1: 143, 2: 140, 3: 137, 4: 133, 8: 137}

# Table 2, complexity column: MFLOPs of each width (the groups share one budget per width).
TABLE2_MFLOPS: dict[float, int] = {1.0: 140, 0.5: 38, 0.25: 13}
# Table 2: top-1 error by width (ShuffleNet 1x, 0.5x, 0.25x) and number of groups g.
TABLE2_ERROR: dict[float, dict[int, float]] = {
    1.0: {1: 33.6, 2: 32.7, 3: 32.6, 4: 32.8, 8: 32.4},
    0.5: {1: 45.1, 2: 44.4, 3: 43.2, 4: 41.6, 8: 42.3},
    0.25: {1: 57.1, 2: 56.8, 3: 55.0, 4: 54.2, 8: 52.7},
}

# Table 3: top-1 error of each network trained from scratch without channel shuffle, by (width, g). Its "with
# shuffle" column repeats Table 2's entry for the same network, so it is read from there.
TABLE3_ERROR_WITHOUT_SHUFFLE: dict[tuple[float, int], float] = {
    (1.0, 3): 34.5, (1.0, 8): 37.6,
    (0.5, 3): 45.7, (0.5, 8): 48.1,
    (0.25, 3): 56.3, (0.25, 8): 56.5,
}


@dataclass(frozen=True)
class ShuffleAblation:
    """One row of Table 3: a network's top-1 error (%) trained without and with channel shuffle."""

    width: float
    groups: int
    error_without_shuffle: float
    error_with_shuffle: float

    @property
    def model(self) -> str:
        return f"ShuffleNet {self.width:g}x (g={self.groups})"

    @property
    def source(self) -> str:
        return f"{CITATION}, Table 3: ImageNet top-1 error, each variant trained from scratch"


TABLE3: dict[tuple[float, int], ShuffleAblation] = {
    (width, groups): ShuffleAblation(width, groups, without, TABLE2_ERROR[width][groups])
    for (width, groups), without in TABLE3_ERROR_WITHOUT_SHUFFLE.items()
}


def results_section(width: float) -> dict:
    """The paper's Tables 2 and 3 at one width as an experiment results file stores them (keys as text)."""
    rows = [ablation for (row_width, _), ablation in TABLE3.items() if row_width == width]
    return {
        "table2": {"source": f"{CITATION}, Table 2 (ShuffleNet {width:g}x, ~{TABLE2_MFLOPS[width]} MFLOPs, "
                             f"ImageNet top-1 error %)",
                   "error": {str(groups): error for groups, error in TABLE2_ERROR[width].items()}},
        "table3": {"source": f"{CITATION}, Table 3 (ShuffleNet {width:g}x, ImageNet top-1 error %, each variant "
                             f"trained from scratch)",
                   "error_with_shuffle": {str(row.groups): row.error_with_shuffle for row in rows},
                   "error_without_shuffle": {str(row.groups): row.error_without_shuffle for row in rows}},
    }
