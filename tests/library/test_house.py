"""The house's structure: who may import whom, how long a module may grow, what the repository root holds.

Each check is a function of a folder, run on the repository and, to show that it can fail, on a small tree made
for the test that breaks its rule.

The layers: `shufflenet_viz` computes (no Streamlit), `ui` is the Streamlit layer, `pages/*.py` are thin scripts
over it and `app.py` is the frame; `serving` runs the app for a class (replicas, load balancer, supervisor, and a
client of Streamlit's protocol). The project's modules import each other without a cycle, counting every
import wherever it stands (a function-level import closes a cycle as surely as one at the top of a file).
"""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT

LIBRARY = "shufflenet_viz"
STREAMLIT_LAYER = "ui"
PAGES = "pages"
FRAME = "app.py"
SERVING = "serving"
PACKAGES = (STREAMLIT_LAYER, LIBRARY, SERVING)
MODULE_LINES_MAX = 600  # a module of shufflenet_viz/, ui/ or serving/
PAGE_LINES_MAX = 120  # a page script: it lays out what ui/ computes and draws
# What the repository root holds, besides dot-entries (.ci/, .streamlit/, .gitignore).
ROOT_ENTRIES = {FRAME, PAGES, STREAMLIT_LAYER, LIBRARY, SERVING, "deploy", "weights", "tests", "bench", "samples",
                "assets", "requirements.txt", "requirements-test.txt", "Makefile", "README.md", "pyproject.toml"}
# The tests, the benchmarks and the serving package drive the app through Streamlit's own tools (AppTest, its
# config, its protocol's messages).
STREAMLIT_ALLOWED = (FRAME, f"{PAGES}/", f"{STREAMLIT_LAYER}/", f"{SERVING}/", "tests/", "bench/")
# Every figure reaches the screen through ui.display.show: the only caller of st.plotly_chart.
PLOTLY_CHART_MODULE = f"{STREAMLIT_LAYER}/display.py"


# --- the checkers -------------------------------------------------------------------------------------------------

def tree_files(root: Path) -> list[str]:
    """Every file of the working tree git sees (tracked, or untracked and not ignored) that exists, relative to
    `root`, with forward slashes."""
    listed = subprocess.run(["git", "-C", str(root), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            check=True, capture_output=True, text=True).stdout
    return sorted({name for name in listed.split("\0") if name and (root / name).is_file()})


def root_entries(root: Path) -> set[str]:
    """The top-level names of the files git sees in the repository."""
    return {name.split("/", 1)[0] for name in tree_files(root)}


def unexpected_root_entries(root: Path) -> list[str]:
    """Top-level entries that are neither in ROOT_ENTRIES nor dot-entries."""
    return sorted(name for name in root_entries(root) if name not in ROOT_ENTRIES and not name.startswith("."))


def project_modules(root: Path) -> dict[str, Path]:
    """Module name -> file of every module of the project: app.py, pages/*.py, ui/**, shufflenet_viz/** and
    serving/**.
    A package is named by its `__init__.py` (`ui`), a page by its folder (`pages.lesson`)."""
    files = [root / FRAME] if (root / FRAME).is_file() else []
    files += sorted((root / PAGES).glob("*.py"))
    for package in PACKAGES:
        files += sorted((root / package).rglob("*.py"))
    modules = {}
    for path in files:
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _package_of(module: str, path: Path) -> str:
    """The package a module's relative imports start from: itself for a package's `__init__`, else its parent."""
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def _known(name: str, modules: dict[str, Path]) -> str | None:
    """The longest prefix of a dotted name that is a project module (None: not the project's)."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in modules:
            return candidate
    return None


def import_graph(root: Path) -> dict[str, dict[str, int]]:
    """module -> {imported project module: line of its first import} over every import statement at any level
    (module, function, class, conditional). `import a.b` and `from a import b` (b a submodule) lead to the
    submodule `a.b`; `from a import name` (a name defined in a's `__init__`) leads to the package `a`; importing
    a submodule does not count as importing its parent package (Python imports the parent first, but a parent
    that is being imported is already in sys.modules)."""
    modules = project_modules(root)
    graph: dict[str, dict[str, int]] = {}
    for module, path in modules.items():
        edges: dict[str, int] = {}
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str | None] = []
            if isinstance(node, ast.Import):
                targets = [_known(alias.name, modules) for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = _package_of(module, path).split(".")
                    base = base[:len(base) - (node.level - 1)] if node.level > 1 else base
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                for alias in node.names:
                    submodule = f"{source}.{alias.name}"
                    targets.append(submodule if submodule in modules else _known(source, modules))
            for target in targets:
                if target is not None and target != module:
                    edges.setdefault(target, node.lineno)
        graph[module] = edges
    return graph


def import_cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The import cycles, one per group of modules that import each other (a strongly connected component of more
    than one module), each as a path `[a, b, ..., a]`, shortest first from the component's first module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def connect(module: str) -> None:  # Tarjan's algorithm
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in graph.get(module, {}):
            if target not in index:
                connect(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            connect(module)

    cycles = []
    for component in sorted(components):
        start, members = component[0], set(component)
        came_from: dict[str, str] = {}
        frontier = [start]
        while start not in came_from:  # breadth first, back to the start
            following = []
            for module in frontier:
                for target in sorted(graph[module]):
                    if target in members and target not in came_from:
                        came_from[target] = module
                        following.append(target)
            frontier = following
        path = [start]
        while path[-1] != start or len(path) == 1:
            path.append(came_from[path[-1]])
        cycles.append(path[::-1])
    return cycles


def describe_cycle(cycle: list[str], graph: dict[str, dict[str, int]], modules: dict[str, Path],
                   root: Path) -> str:
    """`a -> b (a.py:3) -> a (b.py:7)`: where each import of the cycle stands."""
    steps = [cycle[0]]
    for source, target in zip(cycle, cycle[1:]):
        steps.append(f"{target} ({modules[source].relative_to(root).as_posix()}:{graph[source][target]})")
    return " -> ".join(steps)


def long_files(root: Path, folders: tuple[str, ...], limit: int) -> list[str]:
    """`path: N lines` for each Python file under these folders longer than `limit` lines."""
    found = []
    for folder in folders:
        for path in sorted((root / folder).rglob("*.py")):
            lines = len(path.read_text().splitlines())
            if lines > limit:
                found.append(f"{path.relative_to(root).as_posix()}: {lines} lines")
    return found


def imported_names(path: Path) -> list[tuple[str, int]]:
    """(dotted module name, line) of every absolute import in a file, at any level; `from a import b` gives
    both `a` and `a.b` (b may be a submodule)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append((node.module, node.lineno))
            names += [(f"{node.module}.{alias.name}", node.lineno) for alias in node.names]
    return names


def importers_of(root: Path, top_level: str, files: list[str]) -> list[str]:
    """`path:line` of each import of the package `top_level` (or anything in it) among these files."""
    found = set()
    for name in files:
        for module, line in imported_names(root / name):
            if module == top_level or module.startswith(f"{top_level}."):
                found.add((name, line))
    return [f"{name}:{line}" for name, line in sorted(found)]


def python_files(root: Path) -> list[str]:
    """The Python files git sees in the repository."""
    return [name for name in tree_files(root) if name.endswith(".py")]


def plotly_chart_uses(root: Path) -> list[str]:
    """`path:line` of every mention of `plotly_chart` as an attribute (`st.plotly_chart`, a call or not) or an
    imported name (`from streamlit import plotly_chart`) in the project's modules."""
    found = set()
    for path in project_modules(root).values():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            attribute = isinstance(node, ast.Attribute) and node.attr == "plotly_chart"
            imported = isinstance(node, ast.ImportFrom) and any(a.name == "plotly_chart" for a in node.names)
            if attribute or imported:
                found.add((path.relative_to(root).as_posix(), node.lineno))
    return [f"{name}:{line}" for name, line in sorted(found)]


# --- the house ----------------------------------------------------------------------------------------------------

def test_the_project_modules_import_each_other_without_a_cycle():
    graph, modules = import_graph(ROOT), project_modules(ROOT)
    assert {FRAME.removesuffix(".py"), STREAMLIT_LAYER, f"{STREAMLIT_LAYER}.display", LIBRARY, SERVING} <= set(graph)
    assert sum(len(edges) for edges in graph.values()) > len(graph)  # the graph sees the imports
    cycles = [describe_cycle(cycle, graph, modules, ROOT) for cycle in import_cycles(graph)]
    assert cycles == [], "import cycles:\n" + "\n".join(cycles)


def test_no_module_of_the_library_the_streamlit_layer_or_serving_is_over_600_lines():
    assert long_files(ROOT, PACKAGES, MODULE_LINES_MAX) == []


def test_no_page_is_over_120_lines():
    assert list((ROOT / PAGES).glob("*.py")), "no pages found"
    assert long_files(ROOT, (PAGES,), PAGE_LINES_MAX) == []


def test_the_repository_root_holds_only_the_house():
    entries = root_entries(ROOT)
    assert {FRAME, LIBRARY, "tests", "README.md"} <= entries
    assert unexpected_root_entries(ROOT) == []


def test_the_library_imports_neither_streamlit_nor_the_app():
    library = [name for name in python_files(ROOT) if name.startswith(f"{LIBRARY}/")]
    assert len(library) > 10
    for top_level in ("streamlit", STREAMLIT_LAYER, PAGES, FRAME.removesuffix(".py")):
        assert importers_of(ROOT, top_level, library) == [], f"the library imports {top_level}"


def test_streamlit_is_imported_only_by_the_frame_the_pages_and_ui():
    files = python_files(ROOT)
    assert importers_of(ROOT, "streamlit", [name for name in files if name.startswith(f"{STREAMLIT_LAYER}/")])
    outside = [name for name in files if not name.startswith(STREAMLIT_ALLOWED)]
    assert importers_of(ROOT, "streamlit", outside) == []


def test_every_figure_reaches_the_screen_through_ui_display_show():
    uses = plotly_chart_uses(ROOT)
    assert [use for use in uses if use.startswith(f"{PLOTLY_CHART_MODULE}:")], "ui/display.py draws no chart"
    assert [use for use in uses if not use.startswith(f"{PLOTLY_CHART_MODULE}:")] == []


# --- the checkers catch what they look for --------------------------------------------------------------------------

def write_tree(root: Path, files: dict[str, str]) -> Path:
    """Files (path -> text) under `root`, made a git repository so that tree_files sees them as untracked."""
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    return root


def cycles_in(root: Path) -> list[list[str]]:
    return import_cycles(import_graph(root))


def test_a_function_level_import_that_closes_a_cycle_is_caught(tmp_path):
    write_tree(tmp_path, {
        "ui/__init__.py": "def sidebar():\n    from ui import url\n    return url\n",
        "ui/url.py": "def to_url():\n    import ui\n    return ui\n",
        "ui/state.py": "KEY = 1\n",
    })
    graph = import_graph(tmp_path)
    assert graph["ui"] == {"ui.url": 2} and graph["ui.url"] == {"ui": 2}
    cycles = cycles_in(tmp_path)
    assert cycles == [["ui", "ui.url", "ui"]]
    assert describe_cycle(cycles[0], graph, project_modules(tmp_path), tmp_path) == \
        "ui -> ui.url (ui/__init__.py:2) -> ui (ui/url.py:2)"


def test_from_dot_import_a_name_of_the_package_is_an_edge_to_the_package(tmp_path):
    write_tree(tmp_path, {
        "ui/__init__.py": "from .activations import features_of\n\ndef loaded_models():\n    return {}\n",
        "ui/activations.py": "from . import loaded_models\n\ndef features_of():\n    return loaded_models()\n",
    })
    assert import_graph(tmp_path)["ui.activations"] == {"ui": 1}
    assert cycles_in(tmp_path) == [["ui", "ui.activations", "ui"]]


def test_a_submodule_importing_a_sibling_is_no_edge_to_its_package(tmp_path):
    write_tree(tmp_path, {
        "ui/__init__.py": "from .activations import features_of\nfrom . import models\n",
        "ui/activations.py": "from .models import loaded_models\nfrom ui.state import KEY\n",
        "ui/models.py": "from . import state\n\ndef loaded_models():\n    return state.KEY\n",
        "ui/state.py": "KEY = 1\n",
        "app.py": "import ui\nimport shufflenet_viz.figures.common\n",
        "shufflenet_viz/__init__.py": "",
        "shufflenet_viz/figures/__init__.py": "",
        "shufflenet_viz/figures/common.py": "import plotly\nfrom .. import figures\n",
    })
    graph = import_graph(tmp_path)
    assert graph["ui"] == {"ui.activations": 1, "ui.models": 2}
    assert graph["ui.activations"] == {"ui.models": 1, "ui.state": 2}
    assert graph["ui.models"] == {"ui.state": 1}
    assert graph["app"] == {"ui": 1, "shufflenet_viz.figures.common": 2}
    assert graph["shufflenet_viz.figures.common"] == {"shufflenet_viz.figures": 2}
    assert cycles_in(tmp_path) == []


def test_a_longer_cycle_through_the_library_is_caught(tmp_path):
    write_tree(tmp_path, {
        "shufflenet_viz/__init__.py": "",
        "shufflenet_viz/a.py": "from shufflenet_viz.b import f\n",
        "shufflenet_viz/b.py": "if True:\n    from . import c\n",
        "shufflenet_viz/c.py": "class C:\n    def m(self):\n        from .a import g\n",
        "shufflenet_viz/d.py": "from . import a\n",
    })
    assert cycles_in(tmp_path) == [["shufflenet_viz.a", "shufflenet_viz.b", "shufflenet_viz.c", "shufflenet_viz.a"]]


def test_long_modules_and_pages_are_named(tmp_path):
    write_tree(tmp_path, {
        "ui/short.py": "x = 1\n" * MODULE_LINES_MAX,
        "ui/long.py": "x = 1\n" * (MODULE_LINES_MAX + 1),
        "shufflenet_viz/flow/measure.py": "x = 1\n" * (MODULE_LINES_MAX + 5),
        "pages/lesson.py": "x = 1\n" * (PAGE_LINES_MAX + 1),
        "pages/cost.py": "x = 1\n" * PAGE_LINES_MAX,
    })
    assert long_files(tmp_path, (LIBRARY, STREAMLIT_LAYER), MODULE_LINES_MAX) == [
        "shufflenet_viz/flow/measure.py: 605 lines", "ui/long.py: 601 lines"]
    assert long_files(tmp_path, (PAGES,), PAGE_LINES_MAX) == ["pages/lesson.py: 121 lines"]


def test_a_stray_file_or_folder_at_the_root_is_named(tmp_path):
    write_tree(tmp_path, {"app.py": "", "ui/__init__.py": "", ".ci/run": "", "ui.py": "", "notes/todo.md": "",
                          "scratch.log": "", ".gitignore": "*.log\n"})
    assert root_entries(tmp_path) == {"app.py", "ui", ".ci", "ui.py", "notes", ".gitignore"}
    assert unexpected_root_entries(tmp_path) == ["notes", "ui.py"]


def test_streamlit_and_plotly_chart_outside_their_place_are_named(tmp_path):
    write_tree(tmp_path, {
        "app.py": "import streamlit as st\n",
        "ui/display.py": "import streamlit as st\n\ndef show(f):\n    st.plotly_chart(f)\n",
        "ui/lesson.py": "import streamlit as st\n\ndef step(f):\n    draw = st.plotly_chart\n    draw(f)\n",
        "pages/cost.py": "from streamlit import plotly_chart\n",
        "shufflenet_viz/__init__.py": "",
        "shufflenet_viz/figures.py": "def f():\n    from streamlit.runtime import caching\n",
        "shufflenet_viz/cost.py": "import ui.state\n",
        "tests/test_app.py": "from streamlit.testing.v1 import AppTest\n",
        "tools.py": "import streamlit\n",
    })
    files = python_files(tmp_path)
    library = [name for name in files if name.startswith(f"{LIBRARY}/")]
    assert importers_of(tmp_path, "streamlit", library) == ["shufflenet_viz/figures.py:2"]
    assert importers_of(tmp_path, STREAMLIT_LAYER, library) == ["shufflenet_viz/cost.py:1"]
    outside = [name for name in files if not name.startswith(STREAMLIT_ALLOWED)]
    assert importers_of(tmp_path, "streamlit", outside) == ["shufflenet_viz/figures.py:2", "tools.py:1"]
    assert plotly_chart_uses(tmp_path) == ["pages/cost.py:1", "ui/display.py:4", "ui/lesson.py:4"]


@pytest.mark.parametrize("text", ["import streamlitish\n", "from streamlit_extras import x\n"])
def test_a_module_merely_named_like_streamlit_is_not_streamlit(tmp_path, text):
    write_tree(tmp_path, {"shufflenet_viz/a.py": text})
    assert importers_of(tmp_path, "streamlit", ["shufflenet_viz/a.py"]) == []
