"""The layering of `forethought`'s subpackages, checked over every import in the source tree.

Lower layers never import higher ones, and packages on one level never import each other. Every
import counts: module level, inside functions and methods, under `if TYPE_CHECKING:`, relative
ones, and the lazy ones given as strings (`lazy_exports(__name__, {"Name": "forethought.x.y"})`,
`importlib.import_module("forethought.x")`, entry points `"forethought.x.y:Class"`). The order is
the one written in docs/conventions.md; a new subpackage must be placed in `LAYERS` first.

`check_layers(root)` is the checker (it also runs on the fake trees below, to show that it fails);
each violation reads `forethought/models/world_model.py:160: forethought.models (layer 3) imports
forethought.speculative.rollout (package forethought.speculative, layer 7): a lower layer must not
import a higher one`.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "forethought"

# Lowest first. `forethought/__init__.py` (the root package) is exempt, both ways.
LAYERS: list[tuple[str, ...]] = [
    ("_atomic", "_config_cli", "_files", "_hardware", "_lazy", "_progress", "_schema", "_stats"),  # utilities
    ("envs",),
    ("data",),
    ("models",),
    ("objectives",),  # the training losses are written over the model's predictor (objectives/prediction.py)
    ("training",),
    ("planning", "policies"),
    ("agent", "speculative"),
    ("surprise",),
    ("evaluation",),
    ("online",),  # the online agent: uses agent, surprise, training and evaluation's tasks and MPC config
    ("cli",),
    ("examples",),  # example user code (test-time objectives): nothing imports it
]
RULE_UP = "a lower layer must not import a higher one"
RULE_PEER = "packages on one level must not import each other"
RULE_UNKNOWN = "every subpackage must have a layer (add it to LAYERS here and to docs/conventions.md)"

_ENTRY_POINT = re.compile(r"^forethought(\.\w+)+:\w+$")  # "forethought.envs.pusht:PushTEnv"


@dataclass(frozen=True)
class Violation:
    file: str  # relative to the package root's parent, e.g. "forethought/models/world_model.py"
    line: int
    importer: str  # subpackage that imports, e.g. "models"
    imported: str  # the module named by the import, e.g. "forethought.speculative.rollout"
    rule: str
    layers: tuple[int | None, int | None] = (None, None)  # the importer's and the imported package's

    def __str__(self) -> str:
        if self.layers[0] is None:  # the importing module's own package has no layer
            return f"{self.file}: forethought.{self.importer} is in no layer: {self.rule}"
        return (f"{self.file}:{self.line}: forethought.{self.importer} (layer {self.layers[0]}) imports "
                f"{self.imported} (package forethought.{_package(self.imported)}, layer {self.layers[1]}): {self.rule}")


def _layer_of(package: str | None, layers: list[tuple[str, ...]]) -> int | None:
    for i, level in enumerate(layers):
        if package in level:
            return i
    return None


def _package(module: str) -> str | None:
    """`"forethought.models.rollout"` -> `"models"`; the root package `"forethought"` -> None."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def _module_name(path: Path, root: Path) -> tuple[str, bool]:
    """Dotted module name of `path` under the package folder `root`, and whether it is a package."""
    rel = path.relative_to(root.parent).with_suffix("")
    parts = list(rel.parts)
    is_pkg = parts[-1] == "__init__"
    if is_pkg:
        parts = parts[:-1]
    return ".".join(parts), is_pkg


def _resolve_relative(module: str | None, level: int, current: str, is_pkg: bool) -> str:
    base = current.split(".")
    if not is_pkg:
        base = base[:-1]  # a module's package
    base = base[: len(base) - (level - 1)] if level > 1 else base
    return ".".join(base + ([module] if module else []))


def _is_subpackage(root: Path, name: str) -> bool:
    return (root / name / "__init__.py").is_file() or (root / f"{name}.py").is_file()


def _string_imports(tree: ast.Module) -> list[tuple[str, int]]:
    """Imports given as strings: `lazy_exports` tables, `importlib.import_module`, entry points."""
    found: list[tuple[str, int]] = []
    dicts: dict[str, ast.Dict] = {}  # module-level `NAME = {...}`
    for node in tree.body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and isinstance(node.value, ast.Dict):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            dicts.update({t.id: node.value for t in targets if isinstance(t, ast.Name)})
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            fn = node.func
            name = fn.attr if isinstance(fn, ast.Attribute) else fn.id if isinstance(fn, ast.Name) else ""
            if name == "lazy_exports":
                for arg in [*node.args, *(k.value for k in node.keywords)]:
                    table = dicts.get(arg.id) if isinstance(arg, ast.Name) else arg
                    if not isinstance(table, ast.Dict):
                        continue
                    for v in table.values:
                        if isinstance(v, ast.Constant) and isinstance(v.value, str):
                            found.append((v.value, v.lineno))
            elif name in ("import_module", "__import__") and node.args:
                a = node.args[0]
                if isinstance(a, ast.Constant) and isinstance(a.value, str):
                    found.append((a.value, a.lineno))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and _ENTRY_POINT.match(node.value):
            found.append((node.value.split(":")[0], node.lineno))
    return found


def imports_of(path: Path, root: Path) -> list[tuple[str, int]]:
    """Every `forethought` module that `path` imports, with its line: `[("forethought.data.store", 12), ...]`."""
    current, is_pkg = _module_name(path, root)
    top = root.name
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    out: list[tuple[str, int]] = []
    for node in ast.walk(tree):  # every scope: module level, functions, methods, if-blocks
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = _resolve_relative(node.module, node.level, current, is_pkg) if node.level else node.module or ""
            if module == top:  # `from forethought import evaluation` imports the subpackage; `__version__` the root
                out += [(f"{top}.{a.name}" if _is_subpackage(root, a.name) else top, node.lineno) for a in node.names]
            else:
                out.append((module, node.lineno))
    out += _string_imports(tree)
    return [(m, line) for m, line in out if m == top or m.startswith(top + ".")]


def check_layers(root: Path = SRC, layers: list[tuple[str, ...]] | None = None) -> list[Violation]:
    """Every import under the package folder `root` that breaks the layer order `layers` (lowest first)."""
    layers = layers or LAYERS
    violations: list[Violation] = []
    for path in sorted(root.rglob("*.py")):
        module, _ = _module_name(path, root)
        importer = _package(module)
        if importer is None:  # the root package's __init__.py is exempt
            continue
        file = path.relative_to(root.parent).as_posix()
        mine = _layer_of(importer, layers)
        if mine is None:
            violations.append(Violation(file, 1, importer, module, RULE_UNKNOWN))
            continue
        add = lambda line, imported, rule, theirs: violations.append(  # noqa: E731
            Violation(file, line, importer, imported, rule, (mine, theirs)))
        for imported, line in imports_of(path, root):
            pkg = _package(imported)
            if pkg is None or pkg == importer:
                continue
            theirs = _layer_of(pkg, layers)
            if theirs is None:
                add(line, imported, RULE_UNKNOWN, theirs)
            elif theirs > mine:
                add(line, imported, RULE_UP, theirs)
            elif theirs == mine:
                add(line, imported, RULE_PEER, theirs)
    return violations


# ---------------------------------------------------------------------------------------------
def test_the_source_tree_respects_the_layers():
    violations = check_layers()
    order = "\n".join(f"  {i}: {', '.join(level)}" for i, level in enumerate(LAYERS))
    assert not violations, (f"{len(violations)} import(s) break the layering (lowest layer first):\n{order}\n"
                            + "\n".join(map(str, violations)))


def test_every_subpackage_has_a_layer():
    packages = {p.name for p in SRC.iterdir() if (p / "__init__.py").is_file()}
    packages |= {p.stem for p in SRC.glob("*.py") if p.stem != "__init__"}
    placed = {name for level in LAYERS for name in level}
    assert packages - placed == set(), f"place these in LAYERS (and docs/conventions.md): {packages - placed}"


def test_the_checker_sees_lazy_and_string_imports_of_the_real_tree():
    """Guard against a checker that finds nothing: the real tree's known imports are all seen."""
    def modules(*rel: str) -> set[str]:
        return {m for m, _ in imports_of(SRC.joinpath(*rel), SRC)}

    assert "forethought.evaluation.protocol" in modules("evaluation", "__init__.py")  # a lazy_exports entry
    assert "forethought._lazy" in modules("evaluation", "__init__.py")
    assert "forethought.envs.pusht" in modules("envs", "__init__.py")  # a gymnasium entry point string
    assert "forethought.data.store" in modules("training", "api.py")  # inside a function


def _tree(root: Path, files: dict[str, str]) -> Path:
    pkg = root / "forethought"
    for rel, text in files.items():
        path = pkg / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for d in [pkg, *(p for p in pkg.rglob("*") if p.is_dir())]:
        (d / "__init__.py").touch()
    return pkg


_ALLOWED = {
    "agent/mpc.py": "from forethought.planning import make_planner\nimport forethought.models.rollout\n",
    "evaluation/runner.py": "from forethought.surprise import SurpriseMonitor\nfrom forethought import agent\n",
    "surprise/score.py": "from ..models import WorldModel\nfrom . import clips\nimport forethought\n",
    "surprise/clips.py": "from forethought import __version__\n",
    "cli.py": "def main():\n    from forethought.evaluation import run_eval\n",
    "training/api.py": "from forethought.objectives import JEPALoss\n",
}


def test_the_checker_passes_a_tree_that_respects_the_layers(tmp_path):
    assert check_layers(_tree(tmp_path, _ALLOWED)) == []


@pytest.mark.parametrize("rel,text,line,imported,rule", [
    # a lower layer importing a higher one, at module level and lazily inside a method
    ("models/world_model.py", "import torch\nfrom forethought.agent.mpc import MPCAgent\n", 2,
     "forethought.agent.mpc", RULE_UP),
    ("models/world_model.py", "class W:\n    def rollout(self):\n        import forethought.speculative.rollout\n", 3,
     "forethought.speculative.rollout", RULE_UP),
    ("models/world_model.py", "def f():\n    from ..agent import mpc\n", 2, "forethought.agent", RULE_UP),
    ("models/world_model.py", "from forethought import training\n", 1, "forethought.training", RULE_UP),
    ("data/collect.py", "import importlib\nm = importlib.import_module('forethought.evaluation.tasks')\n", 2,
     "forethought.evaluation.tasks", RULE_UP),
    ("data/__init__.py", "from forethought._lazy import lazy_exports\n"
     "_EXPORTS = {\n    'train': 'forethought.training.api',\n}\n"
     "__getattr__, __all__ = lazy_exports(__name__, _EXPORTS)\n", 3, "forethought.training.api", RULE_UP),
    ("envs/__init__.py", "ENTRY = 'forethought.planning.cem:CEM'\n", 1, "forethought.planning.cem", RULE_UP),
    ("models/world_model.py",
     "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from forethought.training import Trainer\n", 3,
     "forethought.training", RULE_UP),
    ("surprise/runner.py", "from forethought.evaluation.tasks import held_out_episodes\n", 1,
     "forethought.evaluation.tasks", RULE_UP),
    ("models/config.py", "import forethought.objectives.jepa as j\n", 1, "forethought.objectives.jepa", RULE_UP),
    # peers on one level
    ("agent/mpc.py", "from forethought.speculative import speculative_rollout\n", 1, "forethought.speculative",
     RULE_PEER),
    ("planning/cem.py", "def f():\n    import forethought.policies.mlp\n", 2, "forethought.policies.mlp", RULE_PEER),
    # a subpackage with no layer
    ("agent/mpc.py", "from forethought.newthing import x\n", 1, "forethought.newthing", RULE_UNKNOWN),
])
def test_the_checker_reports_a_forbidden_import(tmp_path, rel, text, line, imported, rule):
    root = _tree(tmp_path, {**_ALLOWED, rel: text})
    violations = check_layers(root)
    assert [(v.file, v.line, v.imported, v.rule) for v in violations] == [(f"forethought/{rel}", line, imported, rule)]
    message = str(violations[0])
    assert f"forethought/{rel}:{line}:" in message and imported in message and rule in message


def test_the_checker_reports_a_module_with_no_layer(tmp_path):
    root = _tree(tmp_path, {**_ALLOWED, "_helpers.py": "import json\n"})
    assert [str(v) for v in check_layers(root)] == [
        f"forethought/_helpers.py: forethought._helpers is in no layer: {RULE_UNKNOWN}"]


def test_the_checker_reports_a_cycle_between_surprise_and_evaluation_both_ways(tmp_path):
    root = _tree(tmp_path, {**_ALLOWED,
                            "surprise/runner.py": "def f():\n    from forethought.evaluation import runner\n",
                            "evaluation/runner.py": "from forethought.surprise import ood\n"})
    s, e = LAYERS.index(("surprise",)), LAYERS.index(("evaluation",))
    assert [str(v) for v in check_layers(root)] == [  # evaluation may import surprise, not the other way
        f"forethought/surprise/runner.py:2: forethought.surprise (layer {s}) imports forethought.evaluation "
        f"(package forethought.evaluation, layer {e}): {RULE_UP}"]
    # with the two placed as peers, both directions are forbidden
    peers = [level for level in LAYERS if level not in (("surprise",), ("evaluation",))]
    peers.insert(s, ("surprise", "evaluation"))
    found = sorted((v.file, v.rule) for v in check_layers(root, peers))
    assert found == [("forethought/evaluation/runner.py", RULE_PEER), ("forethought/surprise/runner.py", RULE_PEER)]
