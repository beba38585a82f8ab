"""The package's import graph has no circle: module-level and function-level imports alike (a function-local
import that only hides a circle still counts)."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "rewardlab"


def import_graph(root: Path) -> dict[str, set[str]]:
    """``module -> modules of the package it imports`` (anywhere in its code). A package's ``__init__`` is a
    re-export point: imports into it are not edges (importing ``rewardlab.data`` does not run a given
    submodule's code first), imports from it are."""
    mods = {
        ".".join((root.name, *f.relative_to(root).with_suffix("").parts)).removesuffix(".__init__"): f
        for f in root.rglob("*.py")
    }
    edges: dict[str, set[str]] = {m: set() for m in mods}
    for m, f in mods.items():
        is_init = f.name == "__init__.py"
        for node in ast.walk(ast.parse(f.read_text(), str(f))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = m.split(".") if is_init else m.split(".")[:-1]
                    parts = parts[: len(parts) - node.level + 1]
                    base = ".".join(parts + ([base] if base else []))
                targets = [base] + [f"{base}.{a.name}" for a in node.names]
            else:
                continue
            for t in targets:
                while t and t not in mods:
                    t = t.rpartition(".")[0]
                if t and t != m and mods[t].name != "__init__.py":
                    edges[m].add(t)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (iterative Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    for start in edges:
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            v, children = work[-1]
            w = next(children, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(edges[w]))))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def test_cycle_finder_finds_a_circle_through_a_function_local_import(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("from pkg.a import f\n")
    (pkg / "a.py").write_text("from pkg import b\n\ndef f():\n    return b\n")
    (pkg / "b.py").write_text("def g():\n    from .c import h\n    return h\n")
    (pkg / "c.py").write_text("def h():\n    from pkg.a import f\n    return f\n")
    (pkg / "d.py").write_text("import pkg.a\n")
    graph = import_graph(pkg)
    assert graph["pkg.b"] == {"pkg.c"} and graph["pkg.d"] == {"pkg.a"} and graph["pkg"] == {"pkg.a"}
    assert cycles(graph) == [["pkg.a", "pkg.b", "pkg.c"]]
    (pkg / "c.py").write_text("def h():\n    return 1\n")
    assert cycles(import_graph(pkg)) == []


def test_package_has_no_import_cycle():
    graph = import_graph(PACKAGE)
    assert "rewardlab.models.packing" in graph and "rewardlab.models.layout" in graph["rewardlab.training.collate"]
    assert cycles(graph) == []


# packages rewardlab works without (extras or optional at run time): importing them inside the function that needs
# them is the point
OPTIONAL = {
    "peft",
    "matplotlib",
    "llama_cpp",
    "mlflow",
    "wandb",
    "tensorboard",
    "torch.utils.tensorboard",
    "trackio",
    "deepspeed",
    "gguf",
    "datasets",
    "pyarrow",
    "pandas",
    "openai",
    "fastapi",
    "uvicorn",
    "trl",
    "tensorboardX",
    "PIL",
    "prometheus_client",
    "httpx",
    "fastapi_offline",
}


def function_local_imports(root: Path) -> list[tuple[str, int, str, str]]:
    """``(file, line, imported module, source line)`` of every import inside a function body."""
    out = []
    for f in sorted(root.rglob("*.py")):
        text = f.read_text()
        lines = text.splitlines()
        for fn in ast.walk(ast.parse(text, str(f))):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(fn):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and not node.level:
                    names = [node.module or ""]
                else:
                    continue
                source = "\n".join(lines[node.lineno - 1 : node.end_lineno])  # the whole statement, wrapped or not
                out += [(str(f.relative_to(root)), node.lineno, n, source) for n in names]
    return out


def test_function_local_imports_are_optional_packages_or_say_why():
    """An import inside a function hides the import graph; it is allowed for an optional package, or with a
    ``# lazy: <why>`` comment (the light ``--help`` start-up path, a heavy import only one command needs)."""
    found = function_local_imports(PACKAGE)
    unexplained = [
        f"{f}:{line}: {src.strip()}"
        for f, line, name, src in set(found)
        if name.split(".")[0] not in OPTIONAL and name not in OPTIONAL and "# lazy:" not in src
    ]
    assert not unexplained, "function-local imports without a reason:\n" + "\n".join(sorted(unexplained))


def test_the_local_import_rule_sees_an_unmarked_import(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "a.py").write_text("def f():\n    import json\n    import peft\n    import os  # lazy: reason\n")
    found = [(name, "# lazy:" in src) for _, _, name, src in function_local_imports(pkg)]
    assert found == [("json", False), ("peft", False), ("os", True)]
