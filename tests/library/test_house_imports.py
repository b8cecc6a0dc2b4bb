"""The app reads experiment results without the training machinery: importing `ui`, every `ui.*` module and every
page's imports loads neither the training code nor the experiment runner (nor tqdm, unless torch itself brings it),
and the library never imports Streamlit."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Run in a fresh interpreter: the test session has long imported everything.
PROBE = """
import ast, importlib, json, pkgutil, sys
from pathlib import Path

import torch
torch_brings_tqdm = "tqdm" in sys.modules

import ui
for module in pkgutil.iter_modules(ui.__path__):
    importlib.import_module(f"ui.{module.name}")
for page in sorted(Path("pages").glob("*.py")):
    for node in ast.parse(page.read_text()).body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            exec(compile(ast.Module([node], []), str(page), "exec"), {})
print(json.dumps({"torch_brings_tqdm": torch_brings_tqdm, "modules": sorted(sys.modules)}))
"""

LIBRARY_PROBE = """
import importlib, json, pkgutil, sys
import shufflenet_viz
for module in pkgutil.walk_packages(shufflenet_viz.__path__, "shufflenet_viz."):
    if module.name != "shufflenet_viz.__main__":
        importlib.import_module(module.name)
print(json.dumps(sorted(sys.modules)))
"""


def _run(code: str):
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_app_imports_no_training_code():
    probe = _run(PROBE)
    modules = set(probe["modules"])
    assert "ui.experiments" in modules and "shufflenet_viz.experiment_results" in modules  # the probe ran
    assert "shufflenet_viz.train" not in modules
    assert "shufflenet_viz.experiment" not in modules
    if not probe["torch_brings_tqdm"]:
        assert "tqdm" not in modules


def test_the_library_never_imports_streamlit():
    modules = set(_run(LIBRARY_PROBE))
    assert "shufflenet_viz.flow.sentences" in modules and "shufflenet_viz.copies" in modules
    assert not any(name == "streamlit" or name.startswith("streamlit.") for name in modules)
