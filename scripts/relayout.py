"""Put the package's modules in folders by stage of the data flow, and rewrite every old dotted name to its new one.

    python scripts/relayout.py                # git mv every module of MOVES that is still at its old place, then
                                              # rewrite the names (as --imports-only)
    python scripts/relayout.py --imports-only # only rewrite old names (after merging a branch written against them)
    python scripts/relayout.py --check        # exit 1 when an old name is still written somewhere (nothing changed)

Both modes are idempotent: a module already moved is left alone, and a name is rewritten only where it is the old
one as a whole (``rewardlab.train`` in ``rewardlab.train:TrainConfig`` or ``import rewardlab.train``, never inside
``rewardlab.training``); no new name starts with an old one, so a second run finds nothing (checked below).

What is rewritten, in src/ tests/ docs/ perf/ experiments/ scripts/ and CONTRIBUTING.md, pyproject.toml
(``.py .md .sh .toml .yaml .yml .txt .cfg``; recorded results — ``.json`` — are left as they were made):

* dotted names: ``rewardlab.OLD`` → ``rewardlab.NEW`` (imports, ``"module:Name"`` strings, monkeypatch targets,
  Sphinx roles, prose);
* ``from rewardlab[.pkg] import a, b`` (modules by name): one ``from rewardlab.NEWPKG import a`` per new package;
* source paths: ``src/rewardlab/OLD.py`` and ``rewardlab/OLD.py`` → the new file.

Public paths users rely on keep working through thin re-export modules (:data:`SHIMS`, written by the move and
never rewritten); docs, perf, experiments and scripts keep ``from rewardlab.model import RewardModel``-style lines that
import only the public names (:data:`PUBLIC`).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "src" / "rewardlab"

# old module -> new module (an explicit mapping; the folders are the stages of tests/test_layers.py)
MOVES = {
    # core: errors, files, options, the scorer interface and the registry of kinds
    "rewardlab.errors": "rewardlab.core.errors",
    "rewardlab.atomic": "rewardlab.core.atomic",
    "rewardlab.cells": "rewardlab.core.cells",
    "rewardlab.jsonstrict": "rewardlab.core.jsonstrict",
    "rewardlab.bounds": "rewardlab.core.bounds",
    "rewardlab.finite": "rewardlab.core.finite",
    "rewardlab.progress": "rewardlab.core.progress",
    "rewardlab.provenance": "rewardlab.core.provenance",
    "rewardlab.integrity": "rewardlab.core.integrity",
    "rewardlab.binpack": "rewardlab.core.binpack",
    "rewardlab.outputs": "rewardlab.core.outputs",
    "rewardlab.settings": "rewardlab.core.settings",
    "rewardlab.contract_options": "rewardlab.core.contract_options",
    "rewardlab.trackers": "rewardlab.core.trackers",
    "rewardlab.cli_help": "rewardlab.core.cli_help",
    "rewardlab.aliases": "rewardlab.core.aliases",
    "rewardlab.preflight": "rewardlab.commands.preflight",
    "rewardlab.sharding": "rewardlab.scoring.sharding",
    "rewardlab.device": "rewardlab.core.device",
    "rewardlab.hub": "rewardlab.core.hub",
    "rewardlab.interrupt": "rewardlab.core.interrupt",
    "rewardlab.normstats": "rewardlab.core.normstats",
    "rewardlab.ownership": "rewardlab.core.ownership",
    "rewardlab.specfields": "rewardlab.core.specfields",
    "rewardlab.scoring.protocol": "rewardlab.core.scorer",
    "rewardlab.scoring.kinds": "rewardlab.core.kinds",
    # data
    "rewardlab.splits": "rewardlab.data.splits",
    "rewardlab.evalsets": "rewardlab.data.evalsets",
    # models: the reward model contract, its batch layout and fast path, and the kinds trained elsewhere
    "rewardlab.model": "rewardlab.models.reward_model",
    "rewardlab.layout": "rewardlab.models.layout",
    "rewardlab.packing": "rewardlab.models.packing",
    "rewardlab.lora": "rewardlab.models.lora",
    "rewardlab.backbones": "rewardlab.models.backbones",
    "rewardlab.tiny": "rewardlab.models.tiny",
    "rewardlab.foreign": "rewardlab.models.foreign",
    "rewardlab.implicit": "rewardlab.models.implicit",
    # training
    "rewardlab.losses": "rewardlab.training.losses",
    "rewardlab.collate": "rewardlab.training.collate",
    "rewardlab.samplers": "rewardlab.training.samplers",
    "rewardlab.optim": "rewardlab.training.optim",
    "rewardlab.fsdp": "rewardlab.training.fsdp",
    "rewardlab.recipe": "rewardlab.training.recipe",
    "rewardlab.train": "rewardlab.training.train",
    # scoring: opening any kind
    "rewardlab.loader": "rewardlab.scoring.loader",
    # evaluation: scores → numbers → reports
    "rewardlab.eval_scores": "rewardlab.evaluation.scores",
    "rewardlab.eval_run": "rewardlab.evaluation.held_out",
    "rewardlab.report": "rewardlab.evaluation.report",
    "rewardlab.report_html": "rewardlab.evaluation.report_html",
    "rewardlab.curves": "rewardlab.evaluation.curves",
    "rewardlab.truncation": "rewardlab.evaluation.truncation",
    "rewardlab.run_report": "rewardlab.evaluation.run_report",
    # commands: what only the command line (rewardlab.cli) imports
    "rewardlab.score": "rewardlab.commands.score",
    "rewardlab.evaluate": "rewardlab.commands.evaluate",
    "rewardlab.normalize": "rewardlab.commands.normalize",
    "rewardlab.export": "rewardlab.commands.export",
    "rewardlab.quickstart": "rewardlab.commands.quickstart",
    "rewardlab.compose": "rewardlab.commands.compose",
    "rewardlab.inspect_model": "rewardlab.commands.inspect",
}

# the new packages' docstrings (an __init__.py is written where none exists)
PACKAGES = {
    "rewardlab.core": "Foundations: errors, files, options and their ranges, progress, provenance, the scorer "
    "interface (:mod:`.scorer`) and the registry of model kinds (:mod:`.kinds`). Imports no other stage.",
    "rewardlab.models": "The reward model contract (:mod:`.reward_model`), its batch layout and padding-free fast "
    "path, LoRA, backbones, and the kinds trained elsewhere (foreign, DPO implicit).",
    "rewardlab.training": "The training core (:mod:`.recipe`), the losses, batches, step plans and the scalar "
    "trainer (:mod:`.train`).",
    "rewardlab.evaluation": "Scores to numbers to reports: :mod:`.scores`, the report writers, training curves.",
    "rewardlab.commands": "The commands only :mod:`rewardlab.cli` imports: score, eval, normalize, export, "
    "quickstart, compose, inspect.",
}

# public paths users rely on: a thin module re-exporting the documented names (written by the move)
PUBLIC = {"rewardlab.model": ("RewardModel", "ScoringSpec", "TextEncoder")}
SHIMS = {
    "rewardlab.model": '"""The reward model, where users import it: ``from rewardlab.model import RewardModel`` (the '
    'code lives in :mod:`rewardlab.models.reward_model`; the full contract there)."""\n\n'
    "from rewardlab.models.reward_model import RewardModel, ScoringSpec, TextEncoder\n\n"
    '__all__ = ["RewardModel", "ScoringSpec", "TextEncoder"]\n',
}

KEEP = "relayout: keep"  # a line with this comment names an old path on purpose (the public re-export)
TREES = ("src", "tests", "docs", "perf", "experiments", "scripts")
FILES = ("CONTRIBUTING.md", "pyproject.toml")
SUFFIXES = (".py", ".md", ".sh", ".toml", ".yaml", ".yml", ".txt", ".cfg")
SRC_OR_TESTS = ("src", "tests")


def module_file(name: str, package_dir: Path = PKG) -> Path:
    """``rewardlab.a.b`` → ``src/rewardlab/a/b.py`` (or ``a/b/__init__.py`` for a package)."""
    parts = name.split(".")[1:]
    path = package_dir.joinpath(*parts)
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def check_mapping() -> None:
    """No new name may be an old one or start with one (else a second rewrite would touch it again)."""
    pattern = _pattern()
    bad = [new for new in MOVES.values() if pattern.search(new)]
    if bad:
        raise SystemExit(f"relayout: new names that an old name would match again: {bad}")
    if len(set(MOVES.values())) != len(MOVES):
        raise SystemExit("relayout: two old modules map to one new module")


def _pattern() -> re.Pattern:
    olds = sorted(MOVES, key=len, reverse=True)  # the longest first: rewardlab.scoring.kinds before a shorter one
    return re.compile(r"(?<![\w.])(" + "|".join(re.escape(o) for o in olds) + r")(?!\w)")


def _path_pattern() -> re.Pattern:
    olds = sorted(MOVES, key=len, reverse=True)
    paths = [o.replace(".", "/") + ".py" for o in olds]
    return re.compile(r"(?<![\w.-])(" + "|".join(re.escape(p) for p in paths) + r")(?!\w)")


_FROM_PACKAGE = re.compile(
    r"^(?P<indent>[ \t]*)from (?P<base>rewardlab(?:\.\w+)*) import (?P<names>[\w ,]+?)(?P<comment>[ \t]*#.*)?$", re.M
)


def _rewrite_from_package(text: str) -> str:
    """``from rewardlab[.pkg] import a, b as c`` where ``rewardlab[.pkg].a`` is a moved module → one line per new
    package (``from rewardlab.core import progress``; a renamed module keeps its local name with ``as``)."""

    def repl(m: re.Match) -> str:
        base = m.group("base")
        names = [n.strip() for n in m.group("names").split(",") if n.strip()]
        groups: dict[str, list[str]] = {}
        changed = False
        for item in names:
            name, _, alias = item.partition(" as ")
            name, alias = name.strip(), alias.strip()
            new = MOVES.get(f"{base}.{name}")
            if new is None:
                groups.setdefault(base, []).append(item)
                continue
            changed = True
            parent, leaf = new.rsplit(".", 1)
            bound = alias or name
            groups.setdefault(parent, []).append(leaf if leaf == bound else f"{leaf} as {bound}")
        if not changed:
            return m.group(0)
        comment = m.group("comment") or ""
        lines = [f"{m.group('indent')}from {parent} import {', '.join(items)}" for parent, items in groups.items()]
        lines[0] += comment
        return "\n".join(lines)

    return _FROM_PACKAGE.sub(repl, text)


def _public_line(line: str) -> bool:
    """``from rewardlab.model import RewardModel`` importing only documented public names: left as users write it."""
    if KEEP in line:
        return True
    for module, names in PUBLIC.items():
        m = re.search(rf"from {re.escape(module)} import ([\w ,]+)", line)
        if m and {n.strip() for n in m.group(1).split(",") if n.strip()} <= set(names):
            return True
    return False


def rewrite_text(text: str, keep_public: bool) -> str:
    pattern, path_pattern = _pattern(), _path_pattern()
    text = _rewrite_from_package(text)
    out = []
    for line in text.splitlines(keepends=True):
        if (keep_public and _public_line(line)) or KEEP in line:
            out.append(line)
            continue
        line = pattern.sub(lambda m: MOVES[m.group(1)], line)
        line = path_pattern.sub(
            lambda m: MOVES[m.group(1).removesuffix(".py").replace("/", ".")].replace(".", "/") + ".py", line
        )
        out.append(line)
    return "".join(out)


def candidate_files() -> list[Path]:
    shims = {module_file(name) for name in SHIMS}
    files = [ROOT / f for f in FILES if (ROOT / f).is_file()]
    for tree in TREES:
        base = ROOT / tree
        if base.is_dir():
            files += [p for p in base.rglob("*") if p.is_file() and p.suffix in SUFFIXES]
    skip = ("/.venv/", "/__pycache__/", ".egg-info/", "/node_modules/")
    return sorted(p for p in set(files) if p not in shims and not any(s in str(p) for s in skip))


def rewrite_all(check_only: bool = False) -> list[Path]:
    changed = []
    me = Path(__file__).resolve()
    for path in candidate_files():
        if path.resolve() == me:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        rel = path.relative_to(ROOT).parts[0]
        new = rewrite_text(text, keep_public=rel not in SRC_OR_TESTS)
        if new != text:
            changed.append(path)
            if not check_only:
                path.write_text(new, encoding="utf-8")
    return changed


def git(*args: str) -> None:
    subprocess.run(["git", *args], cwd=ROOT, check=True)


def move_modules() -> list[str]:
    """git mv every module still at its old place (and not yet at its new one); write package inits and shims."""
    moved = []
    for package, doc in PACKAGES.items():
        init = PKG.joinpath(*package.split(".")[1:], "__init__.py")
        if not init.exists():
            init.parent.mkdir(parents=True, exist_ok=True)
            init.write_text(f'"""{doc}"""\n', encoding="utf-8")
            git("add", str(init))
    for old, new in MOVES.items():
        src, dst = module_file(old), PKG.joinpath(*new.split(".")[1:]).with_suffix(".py")
        if dst.exists() or not src.exists():
            continue
        if old in SHIMS and src.read_text(encoding="utf-8") == SHIMS[old]:
            continue  # the shim stands at the old place already
        dst.parent.mkdir(parents=True, exist_ok=True)
        git("mv", str(src), str(dst))
        moved.append(f"{old} -> {new}")
    for name, text in SHIMS.items():
        path = module_file(name)
        if not path.exists():
            path.write_text(text, encoding="utf-8")
            git("add", str(path))
    return moved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--imports-only", action="store_true", help="only rewrite old names to new ones")
    mode.add_argument("--check", action="store_true", help="exit 1 when an old name is still written somewhere")
    args = parser.parse_args(argv)
    check_mapping()
    if args.check:
        left = rewrite_all(check_only=True)
        for p in left:
            print(f"old names in {p.relative_to(ROOT)}")
        return 1 if left else 0
    if not args.imports_only:
        for line in move_modules():
            print(f"moved {line}")
    changed = rewrite_all()
    for p in changed:
        print(f"rewrote {p.relative_to(ROOT)}")
    tidy([p for p in changed if p.suffix == ".py"])
    return 0


def tidy(paths: list[Path]) -> None:
    """Re-sort the rewritten imports and re-format those files (ruff, as CONTRIBUTING.md asks), when ruff is there."""
    if not paths:
        return
    ruff = [sys.executable, "-m", "ruff"]
    if subprocess.run([*ruff, "--version"], capture_output=True).returncode != 0:
        print("relayout: ruff is not installed; run `ruff check --fix --select I` and `ruff format` on the files above")
        return
    files = [str(p) for p in paths]
    subprocess.run([*ruff, "check", "--quiet", "--fix", "--select", "I001", *files], cwd=ROOT)
    subprocess.run([*ruff, "format", "--quiet", *files], cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main())
