"""scripts/mutate.py's own logic (the mutation run itself is not in CI): which mutants it finds, that applying
one changes exactly one spot of one line, and that every mapped module and test file exists."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("mutate", ROOT / "scripts" / "mutate.py")
mutate = importlib.util.module_from_spec(spec)
sys.modules["mutate"] = mutate  # dataclasses look their module up there
spec.loader.exec_module(mutate)

SOURCE = '''"""Doc: 1 < 2 is not mutated."""
import math

LIMIT = 3


def f(x, *args, **kw):
    """x < 1 here is a docstring."""
    y = -x + 2 * x
    if x <= LIMIT and not kw:
        return y / 2
    return None
'''


def test_finds_each_kind_of_mutant_and_skips_docstrings_imports_and_signs():
    found = {(m.line, m.kind, m.old.strip(), m.new.strip()) for m in mutate.find_mutants(SOURCE)}
    assert found == {
        (4, "constant", "3", "4"),
        (9, "delete", "y = -x + 2 * x", "pass"),
        (9, "early-return", "y = -x + 2 * x", "return None; y = -x + 2 * x"),
        (9, "arithmetic", "+", "-"),
        (9, "arithmetic", "*", "/"),
        (9, "constant", "2", "3"),
        (10, "compare", "<=", "<"),
        (10, "boolean", "and", "or"),
        (10, "boolean", "not", ""),
        (11, "delete", "return y / 2", "pass"),
        (11, "arithmetic", "/", "*"),
        (11, "constant", "2", "3"),
    }  # no unary minus, no *args/**kw, nothing in docstrings or imports, no deleting `return None`


def test_apply_changes_one_spot_and_every_mutant_compiles():
    lines = SOURCE.splitlines()
    for m in mutate.find_mutants(SOURCE):
        out = mutate.apply(SOURCE, m).splitlines()
        changed = [i for i, (a, b) in enumerate(zip(lines, out)) if a != b]
        assert changed == [m.line - 1] and len(out) == len(lines)


@pytest.mark.parametrize("name", sorted(mutate.MODULES))
def test_every_mapped_module_and_test_file_exists_and_has_mutants(name):
    rel, tests = mutate.MODULES[name]
    source = ROOT / "src" / "rewardlab" / rel
    assert source.is_file() and all((ROOT / t).is_file() for t in tests)
    assert mutate.find_mutants(source.read_text())
