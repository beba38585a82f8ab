#!/usr/bin/env python
"""Single-line mutation testing for rewardlab (kept out of CI: minutes per module).

For a named module, every mutable spot of its source becomes one mutant: a comparison swapped (``<`` ↔ ``<=``,
``>`` ↔ ``>=``, ``==`` ↔ ``!=``), an arithmetic operator swapped (``+`` ↔ ``-``, ``*`` ↔ ``/``), a number tweaked
(``0`` → ``1``, ``1`` → ``0``, ``n`` → ``n + 1``, a float doubled), a boolean flipped (``True`` ↔ ``False``,
``and`` ↔ ``or``, ``not`` dropped), a one-line statement of a function body deleted (``pass`` in its place) or
made to return early (``return None;`` before it). Each mutant is applied alone to a **copy** of ``src/`` (the
working tree is never written), the module's mapped test files run against that copy (``pytest -x -q``, the copy
first on ``PYTHONPATH``) under a per-mutant timeout, and the result is ``killed`` (a test failed), ``survived``
(all passed) or ``timeout``. The copy is deleted at the end, also on Ctrl-C, and ``git status`` of ``src/`` is
compared before and after.

    nice -n 10 .venv/bin/python scripts/mutate.py --module losses --limit 40 --seed 1
    .venv/bin/python scripts/mutate.py --module finite --list            # the mutants, no test run
    .venv/bin/python scripts/mutate.py --module serve_batcher --line 235  # only the mutants of line 235
    .venv/bin/python scripts/mutate.py --file src/rewardlab/core/finite.py --tests tests/test_faults.py \\
        --replace 39 "not all(" "not any("                             # one hand-written mutation

``--json FILE`` writes every result (for ``docs/mutation.md``).
"""

from __future__ import annotations

import argparse
import ast
import io
import json
import os
import random
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tokenize
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KILLS = "tests/test_mutation_kills.py"

# module name -> (source file under src/rewardlab, the test files that cover it)
MODULES: dict[str, tuple[str, list[str]]] = {
    "losses": ("training/losses.py", [KILLS, "tests/test_losses.py", "tests/test_kwise_losses.py"]),
    "collate": ("training/collate.py", [KILLS, "tests/test_kwise_losses.py", "tests/test_losses.py"]),
    "packing": ("models/packing.py", ["tests/test_packing.py"]),
    "recipe": ("training/recipe.py", ["tests/test_recipe.py", "tests/test_mutation_guards.py", "tests/test_scaleout.py"]),
    "metrics_ties": ("metrics/ties.py", [KILLS, "tests/test_metrics.py", "tests/test_benchmarks.py"]),
    "metrics_accuracy": ("metrics/accuracy.py", [KILLS, "tests/test_metrics.py"]),
    "metrics_pairs": ("metrics/pairs.py", [KILLS, "tests/test_metrics.py"]),
    "metrics_statistics": ("metrics/statistics.py", [KILLS, "tests/test_metrics.py"]),
    "rewardbench": ("benchmarks/rewardbench.py", ["tests/test_benchmarks.py", "tests/test_rewardbench_parity.py"]),
    "mo_gate": ("multiobjective/gate.py", [KILLS, "tests/test_multiobjective.py"]),
    "mo_debias": ("multiobjective/debias.py", [KILLS, "tests/test_multiobjective.py"]),
    "mo_ridge": ("multiobjective/ridge.py", [KILLS, "tests/test_multiobjective.py"]),
    "mo_scalarise": ("multiobjective/scalarise.py", [KILLS, "tests/test_multiobjective.py"]),
    "settings": ("core/settings.py", ["tests/test_settings.py"]),
    "bounds": ("core/bounds.py", [KILLS, "tests/test_settings.py"]),
    "integrity": (
        "core/integrity.py",
        [
            KILLS,
            "tests/test_lora_export.py",
            "tests/test_model.py",
            "tests/test_multiobjective_loading.py",
            "tests/test_faults.py",
        ],
    ),
    "finite": ("core/finite.py", [KILLS, "tests/test_faults.py"]),
    "serve_batcher": ("serve/batcher.py", [KILLS, "tests/test_serve.py"]),
    "parsers_pairwise": ("data/parsers/pairwise.py", ["tests/test_data.py", "tests/test_fuzz_readers.py"]),
    "parsers_ratings": (
        "data/parsers/ratings.py",
        [KILLS, "tests/test_data.py", "tests/test_fuzz_readers.py", "tests/test_rankings.py"],
    ),
    "parsers_native": ("data/parsers/native.py", ["tests/test_data.py", "tests/test_fuzz_readers.py"]),
    "record": ("data/record.py", [KILLS, "tests/test_data.py"]),
    # the verifiers (ORM / PRM) and best-of-N packages
    "verifier_losses": ("verifiers/losses.py", ["tests/test_verifiers_model.py"]),
    "verifier_aggregate": ("verifiers/aggregate.py", ["tests/test_verifiers_aggregate.py", "tests/test_verifiers_model.py"]),
    "best_of_n": (
        "metrics/best_of_n.py",
        ["tests/test_mutation_kills_bon.py", "tests/test_best_of_n_estimator.py", "tests/test_metrics.py"],
    ),
    "bon_ensemble": ("bon/ensemble.py", ["tests/test_mutation_kills_bon.py", "tests/test_bon_metrics.py"]),
    "bon_kl": ("bon/kl.py", ["tests/test_bon_metrics.py"]),
}

COMPARE = {"<": "<=", "<=": "<", ">": ">=", ">=": ">", "==": "!=", "!=": "=="}
ARITH = {"+": "-", "-": "+", "*": "/", "/": "*"}
NAMES = {
    "True": "False",
    "False": "True",
    "and": "or",
    "or": "and",
    "all": "any",
    "any": "all",
    "min": "max",
    "max": "min",
}


@dataclass
class Mutant:
    id: int
    line: int  # 1-based
    col: int
    old: str  # the text replaced at (line, col)
    new: str
    kind: str
    result: str = ""  # killed | survived | timeout | error
    seconds: float = 0.0
    detail: str = ""  # the first failing test, for a killed mutant

    def describe(self, path: str) -> str:
        return f"{path}:{self.line} {self.kind}: {self.old.strip()!r} -> {self.new.strip()!r}"


# --- finding mutants ------------------------------------------------------------------------------------------
def _skipped_lines(tree: ast.AST) -> set[int]:
    """Lines not worth mutating: imports, docstrings, ``__all__``, type-only annotations of fields."""
    out: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            out.update(range(node.lineno, node.end_lineno + 1))
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            value = body[0].value
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                out.update(range(body[0].lineno, body[0].end_lineno + 1))
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            out.update(range(node.lineno, node.end_lineno + 1))
    return out


SIMPLE = (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Expr, ast.Raise, ast.Return, ast.Assert)


def _is_docstring(node: ast.stmt) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)


def _function_statements(tree: ast.AST) -> tuple[list[ast.stmt], list[ast.stmt]]:
    """``(deletable, first)``: the one-line simple statements inside function bodies (a bare ``return`` /
    ``return None`` left out: deleting it changes nothing), and the first statement of each function body
    (where an early return goes)."""
    deletable, first = [], []
    for fn in ast.walk(tree):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        body = [n for n in fn.body if not _is_docstring(n)]
        if body and isinstance(body[0], SIMPLE) and body[0].lineno == body[0].end_lineno:
            if not isinstance(body[0], ast.Return):
                first.append(body[0])
        for node in ast.walk(fn):
            if not isinstance(node, SIMPLE) or node.lineno != node.end_lineno or _is_docstring(node):
                continue
            if isinstance(node, ast.Return) and (
                node.value is None or isinstance(node.value, ast.Constant) and node.value.value is None
            ):
                continue
            deletable.append(node)
    return deletable, first


def _number(text: str) -> str | None:
    try:
        value = ast.literal_eval(text.replace("_", ""))
    except (ValueError, SyntaxError):
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, int):
        return "1" if value == 0 else "0" if value == 1 else str(value + 1)
    return "1.0" if value == 0 else repr(value * 2)


def find_mutants(source: str) -> list[Mutant]:
    tree = ast.parse(source)
    skip = _skipped_lines(tree)
    lines = source.splitlines(keepends=True)
    found: list[tuple[int, int, str, str, str]] = []
    fstring = 0
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        (row, col), (erow, _) = tok.start, tok.end
        if tok.type == getattr(tokenize, "FSTRING_START", -1):
            fstring += 1
        elif tok.type == getattr(tokenize, "FSTRING_END", -1):
            fstring -= 1
        if fstring or row in skip or row != erow:
            continue
        if tok.type == tokenize.OP and tok.string in COMPARE:
            found.append((row, col, tok.string, COMPARE[tok.string], "compare"))
        elif tok.type == tokenize.OP and tok.string in ARITH:
            prev = lines[row - 1][:col].rstrip()
            unary = not prev or prev[-1] in "([{,=:" or prev.endswith(("return", "lambda", "**"))
            if tok.string == "*" and (unary or lines[row - 1][col + 1 : col + 2] == "*"):
                continue  # *args / **
            if tok.string in "+-" and unary:
                continue  # a sign, not an operator
            found.append((row, col, tok.string, ARITH[tok.string], "arithmetic"))
        elif tok.type == tokenize.NUMBER:
            new = _number(tok.string)
            if new is not None:
                found.append((row, col, tok.string, new, "constant"))
        elif tok.type == tokenize.NAME and tok.string in NAMES:
            found.append((row, col, tok.string, NAMES[tok.string], "boolean"))
        elif tok.type == tokenize.NAME and tok.string == "not":
            found.append((row, col, "not ", "", "boolean"))
    deletable, first = _function_statements(tree)
    for kind, nodes in (("delete", deletable), ("early-return", first)):
        for node in nodes:
            if node.lineno in skip:
                continue
            text = lines[node.lineno - 1]
            indent = len(text) - len(text.lstrip())
            body = text[indent:].rstrip("\n")
            found.append((node.lineno, indent, body, "pass" if kind == "delete" else "return None; " + body, kind))
    found.sort(key=lambda m: (m[0], m[1], m[4]))
    return [Mutant(i, *m) for i, m in enumerate(found)]


def apply(source: str, m: Mutant) -> str:
    lines = source.splitlines(keepends=True)
    text = lines[m.line - 1]
    assert text[m.col : m.col + len(m.old)] == m.old, (m, text)
    lines[m.line - 1] = text[: m.col] + m.new + text[m.col + len(m.old) :]
    out = "".join(lines)
    ast.parse(out)  # a mutant that does not compile is no test of the tests
    return out


# --- running -------------------------------------------------------------------------------------------------
def run_tests(copy_src: Path, tests: list[str], timeout: float, extra: list[str]) -> tuple[str, float, str]:
    env = {**os.environ, "PYTHONPATH": f"{copy_src}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # a same-size mutant in the same second must not reuse a stale .pyc
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *extra, *tests]
    t0 = time.monotonic()
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the pytest we started and its children
        proc.communicate()
        return "timeout", time.monotonic() - t0, ""
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    seconds = time.monotonic() - t0
    if proc.returncode == 0:
        return "survived", seconds, ""
    if proc.returncode == 5:
        return "error", seconds, "no tests collected"
    failed = re.findall(r"^(?:FAILED|ERROR) (\S+)", out, re.M)
    return "killed", seconds, failed[0] if failed else out.strip().splitlines()[-1][:160] if out.strip() else ""


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def git_status(paths: list[str]) -> str:
    return subprocess.run(
        ["git", "status", "--porcelain", "--", *paths], cwd=ROOT, capture_output=True, text=True
    ).stdout


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--module", action="append", default=[], help=f"one of: {', '.join(MODULES)} (repeatable)")
    p.add_argument("--file", help="a source file instead of --module (give --tests too)")
    p.add_argument("--tests", nargs="+", help="test files to run instead of the module's mapped ones")
    p.add_argument("--limit", type=int, help="sample at most this many mutants per module (seeded)")
    p.add_argument("--seed", type=int, default=0, help="the sampling seed")
    p.add_argument(
        "--kinds", nargs="+", help="only these kinds: compare arithmetic constant boolean delete early-return"
    )
    p.add_argument("--line", type=int, action="append", help="only mutants on this line (repeatable)")
    p.add_argument("--replace", nargs=3, metavar=("LINE", "OLD", "NEW"), help="one hand-written mutation instead")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds per mutant (default 300)")
    p.add_argument("--pytest-args", default="", help="extra pytest arguments, e.g. \"-k 'not http'\"")
    p.add_argument("--list", action="store_true", help="list the mutants, run nothing")
    p.add_argument("--no-baseline", action="store_true", help="skip the unmutated run (it must pass)")
    p.add_argument("--json", help="write the results to this file")
    args = p.parse_args(argv)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started in the background
    signal.signal(signal.SIGTERM, _interrupt)  # `kill PID` cleans up like Ctrl-C

    targets: list[tuple[str, str, list[str]]] = []
    if args.file:
        if not args.tests:
            p.error("--file needs --tests")
        rel = str(Path(args.file).resolve().relative_to(ROOT / "src" / "rewardlab"))
        targets.append((rel, rel, args.tests))
    for name in args.module:
        if name not in MODULES:
            p.error(f"unknown module {name!r}; choose from {', '.join(MODULES)}")
        rel, tests = MODULES[name]
        targets.append((name, rel, args.tests or tests))
    if not targets:
        p.error("name a --module or a --file")

    before = git_status(["src"])
    extra = shlex.split(args.pytest_args) if args.pytest_args else []
    results: dict[str, list[dict]] = {}
    tmp = Path(tempfile.mkdtemp(prefix="rewardlab-mutate-"))
    copy_src = tmp / "src"
    interrupted = False
    try:
        shutil.copytree(ROOT / "src", copy_src, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        for name, rel, tests in targets:
            path = copy_src / "rewardlab" / rel
            original = path.read_text()
            if args.replace:
                line, old, new = int(args.replace[0]), args.replace[1], args.replace[2]
                col = original.splitlines()[line - 1].find(old)
                if col < 0:
                    p.error(f"line {line} of {rel} has no {old!r}")
                mutants = [Mutant(0, line, col, old, new, "hand")]
            else:
                mutants = find_mutants(original)
                if args.kinds:
                    mutants = [m for m in mutants if m.kind in args.kinds]
                if args.line:
                    mutants = [m for m in mutants if m.line in args.line]
                if args.limit and len(mutants) > args.limit:
                    mutants = sorted(random.Random(args.seed).sample(mutants, args.limit), key=lambda m: m.id)
            shown = f"src/rewardlab/{rel}"
            if args.list:
                for m in mutants:
                    print(f"#{m.id:<4} {m.describe(shown)}")
                continue
            print(f"== {name}: {len(mutants)} mutants of {shown}; tests: {' '.join(tests)}", flush=True)
            if not args.no_baseline:
                status, seconds, detail = run_tests(copy_src, tests, args.timeout * 3, extra)
                if status != "survived":
                    print(f"   the unmutated tests do not pass ({status}: {detail}); skipping {name}", flush=True)
                    continue
                print(f"   baseline passes in {seconds:.0f} s", flush=True)
            for m in mutants:
                try:
                    path.write_text(apply(original, m))
                    m.result, m.seconds, m.detail = run_tests(copy_src, tests, args.timeout, extra)
                except SyntaxError:
                    m.result = "error"
                    m.detail = "does not compile"
                finally:
                    path.write_text(original)  # always back, before anything else happens
                print(
                    f"   {m.result.upper():8} {m.seconds:5.0f} s  #{m.id} {m.describe(shown)}  {m.detail}", flush=True
                )
            results[name] = [{**asdict(m), "file": shown} for m in mutants]
    except KeyboardInterrupt:
        interrupted = True
        print("\ninterrupted: the copy is removed, the working tree was never written", file=sys.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if args.json and results:
            Path(args.json).write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n")

    if not args.list:
        print("\nsummary")
        for name, rows in results.items():
            counts = {k: sum(r["result"] == k for r in rows) for k in ("killed", "survived", "timeout", "error")}
            scored = counts["killed"] + counts["survived"] + counts["timeout"]
            score = f"{100 * (counts['killed'] + counts['timeout']) / scored:.0f}%" if scored else "-"
            print(f"  {name:20} " + "  ".join(f"{k} {v}" for k, v in counts.items()) + f"  score {score}")
            for r in rows:
                if r["result"] == "survived":
                    print(
                        f"    survived: {r['file']}:{r['line']} {r['kind']}: {r['old'].strip()!r} -> {r['new'].strip()!r}"
                    )
    after = git_status(["src"])
    if after != before:
        print(f"ERROR: git status of src/ changed during the run:\n{after}", file=sys.stderr)
        return 3
    print("git status of src/: unchanged")
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
