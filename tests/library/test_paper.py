"""paper.py holds the paper's numbers as printed (Zhang et al. 2017, Tables 1-3), and the experiment's results file
carries the same ones."""

from __future__ import annotations

import json

from shufflenet_viz import paper
from shufflenet_viz.experiment_results import results_path
from shufflenet_viz.weights import WEIGHTS_DIR


def test_tables_as_printed():
    assert paper.TABLE1_STAGE_REPEATS == (4, 8, 4)
    assert paper.TABLE1_MFLOPS == {1: 143, 2: 140, 3: 137, 4: 133, 8: 137}
    assert paper.TABLE2_ERROR == {1.0: {1: 33.6, 2: 32.7, 3: 32.6, 4: 32.8, 8: 32.4},
                                  0.5: {1: 45.1, 2: 44.4, 3: 43.2, 4: 41.6, 8: 42.3},
                                  0.25: {1: 57.1, 2: 56.8, 3: 55.0, 4: 54.2, 8: 52.7}}
    rows = {key: (row.error_without_shuffle, row.error_with_shuffle) for key, row in paper.TABLE3.items()}
    assert rows == {(1.0, 3): (34.5, 32.6), (1.0, 8): (37.6, 32.4), (0.5, 3): (45.7, 43.2), (0.5, 8): (48.1, 42.3),
                    (0.25, 3): (56.3, 55.0), (0.25, 8): (56.5, 52.7)}
    assert paper.TABLE3[(1.0, 3)].model == "ShuffleNet 1x (g=3)"


def test_the_shipped_results_file_quotes_the_same_numbers():
    path = results_path(WEIGHTS_DIR)
    if path.exists():
        assert json.loads(path.read_text())["paper"] == paper.results_section(0.5)
