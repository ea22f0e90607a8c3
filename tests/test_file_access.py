"""Every file the package reads goes through the shared checks: a test over the source tree.

`forethought/_files.py` is the one place that parses JSON files and safetensors files (issue 18:
a damaged file must be named and explained, never a raw traceback or a silent misread). This
test walks the AST of every module and fails on

* `json.load(...)` anywhere but `_files.py`, and `json.loads(...)` outside the allowed places
  below (each parses a string that is not a file's contents);
* any import of a safetensors *reading* function (`load_file`, `load`, `load_model`, `safe_open`)
  or of `safetensors` itself outside `_files.py` (the writers `save_file`, `save_model`, `save`
  are fine);
* `zarr.open*` outside the dataset store, which does the dataset checks itself;
* `torch.load`, `pickle.load(s)`, `np.load(..., allow_pickle=True)` anywhere: files never run code.

`check_file_access(root)` is the checker; it also runs on small fake trees to show it fails.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "forethought"

READER = "_files.py"
# json.loads of strings that are not file contents: "module path:function" -> why it is fine.
JSON_LOADS_ALLOWED = {
    "_config_cli.py:_parse_json": "JSON given on the command line (--env-kwargs, --policy-kwargs, --state-weights)",
    "data/commit.py:read_entries": "lines of the checksum log, read once and checked against its recorded crc32 first",
    "data/collect.py:_jsonable": "a round trip through json.dumps to make a value JSON-safe",
    "training/logging.py:_truncate_after": "keeps the raw lines of metrics.jsonl, dropping a line cut by a kill",
}
# Modules that open zarr arrays: the episode store, which checks a dataset's commit record and
# chunks itself (data/store.py; issue 18's dataset checks live there).
ZARR_ALLOWED = {"data/store.py"}
SAFETENSORS_WRITERS = {"save_file", "save_model", "save"}


def _qualname(stack: list[ast.AST]) -> str:
    return ".".join(n.name for n in stack if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)))


def check_file_access(root: Path) -> list[str]:
    """Violations under package folder `root`, as `path:line: what` strings."""
    problems: list[str] = []
    for file in sorted(root.rglob("*.py")):
        rel = file.relative_to(root).as_posix()
        if rel == READER:
            continue
        tree = ast.parse(file.read_text(), filename=str(file))

        def visit(node: ast.AST, stack: list[ast.AST], rel: str = rel) -> None:
            where = f"{rel}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and isinstance(node.func.value,
                                                                                                ast.Name):
                mod, fn = node.func.value.id, node.func.attr
                if mod == "json" and fn == "load":
                    problems.append(f"{where}: json.load reads a file unchecked; use forethought._files.read_json")
                if mod == "json" and fn == "loads" and f"{rel}:{_qualname(stack)}" not in JSON_LOADS_ALLOWED:
                    problems.append(f"{where}: json.loads in {_qualname(stack) or 'module'}; read files with "
                                    "forethought._files.read_json (or add a string parse to JSON_LOADS_ALLOWED)")
                if mod == "zarr" and fn.startswith("open") and rel not in ZARR_ALLOWED:
                    problems.append(f"{where}: zarr.{fn} outside the dataset store ({sorted(ZARR_ALLOWED)})")
                if (mod, fn) in {("torch", "load"), ("pickle", "load"), ("pickle", "loads")}:
                    problems.append(f"{where}: {mod}.{fn} unpickles; Forethought never executes code from files")
                if mod in ("np", "numpy") and fn == "load" and any(
                        k.arg == "allow_pickle" and not (isinstance(k.value, ast.Constant) and k.value.value is False)
                        for k in node.keywords):
                    problems.append(f"{where}: np.load with allow_pickle unpickles")
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "safetensors":
                readers = [a.name for a in node.names if a.name not in SAFETENSORS_WRITERS]
                if readers:
                    problems.append(f"{where}: imports {readers} from {node.module}; read safetensors files with "
                                    "forethought._files (read_safetensors, load_safetensors_into)")
            if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "safetensors" for a in node.names):
                problems.append(f"{where}: imports safetensors; read safetensors files with forethought._files")
            if isinstance(node, ast.ImportFrom) and node.module == "zarr" and rel not in ZARR_ALLOWED and any(
                    a.name.startswith("open") for a in node.names):
                problems.append(f"{where}: imports zarr.open* outside the dataset store")
            inner = stack + [node] if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) else stack
            for child in ast.iter_child_nodes(node):
                visit(child, inner)

        visit(tree, [])
    return problems


def test_the_package_reads_files_only_through_the_shared_checks() -> None:
    problems = check_file_access(SRC)
    assert not problems, "\n".join(problems)


def test_every_allowed_json_loads_still_exists() -> None:
    """An allow-list entry whose function is gone would silently allow a new one of the same name."""
    found = set()
    for file in SRC.rglob("*.py"):
        rel = file.relative_to(SRC).as_posix()

        def visit(node: ast.AST, stack: list[ast.AST], rel: str = rel) -> None:
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "loads"
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "json"):
                found.add(f"{rel}:{_qualname(stack)}")
            inner = stack + [node] if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) else stack
            for child in ast.iter_child_nodes(node):
                visit(child, inner)

        visit(ast.parse(file.read_text()), [])
    assert set(JSON_LOADS_ALLOWED) <= found, sorted(set(JSON_LOADS_ALLOWED) - found)


def test_the_checker_finds_each_kind_of_unchecked_read(tmp_path: Path) -> None:
    pkg = tmp_path / "forethought"
    (pkg / "models").mkdir(parents=True)
    (pkg / "data").mkdir()
    (pkg / "models" / "bad.py").write_text(
        "import json\nimport torch\nimport numpy as np\n"
        "from safetensors.torch import load_file, save_file\n"
        "from safetensors import safe_open\n"
        "def f(p):\n"
        "    a = json.load(open(p))\n"
        "    b = json.loads(p.read_text())\n"
        "    c = torch.load(p)\n"
        "    d = np.load(p, allow_pickle=True)\n"
        "    return a, b, c, d\n"
    )
    (pkg / "data" / "reader.py").write_text("import zarr\ng = zarr.open_group('x', mode='r')\n")
    (pkg / "data" / "store.py").write_text("import zarr\ng = zarr.open_group('x', mode='r')\n")  # allowed
    (pkg / "_files.py").write_text("import json\nx = json.load(open('f'))\n")  # the reader itself
    problems = check_file_access(pkg)
    expected = ["data/reader.py:2: zarr.open_group", "models/bad.py:4: imports ['load_file']",
                "models/bad.py:5: imports ['safe_open']", "models/bad.py:7: json.load ", "models/bad.py:8: json.loads",
                "models/bad.py:9: torch.load", "models/bad.py:10: np.load"]
    assert len(problems) == len(expected), problems
    for problem, start in zip(problems, expected):
        assert problem.startswith(start), (problem, start)
