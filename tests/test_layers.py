"""The package is layered by stage of the data flow, and the layering cannot erode: every module has a stage, and no
module imports one of a later stage (function-level imports count, as in tests/test_imports.py). Named rules the
issue asked for: training never imports evaluation, the model never imports scoring, and nothing imports a command
(only the command line, ``rewardlab.cli``, dispatches to them).

Stages, earliest first, each a folder of the package: ``core/`` (errors, files, options, the scorer interface and
the registry of kinds) → ``data/`` → ``metrics/`` (pure numbers) → ``models/`` → ``training/`` → ``scoring/``
(loading any kind) → ``evaluation/`` (and ``benchmarks/``: scores, reports) → ``serve/`` → ``features`` (a feature
package's modules not placed at a stage) → ``commands/`` (and ``cli.py``, the dispatcher). A feature package (``multiobjective``, ``judges``, ``probes``) is a vertical slice: its modules are
placed at the stage of what they do (the multi-objective model at ``model``, its trainer at ``training``, ...).
"""

from __future__ import annotations

from test_imports import PACKAGE, import_graph

STAGES = ("core", "data", "metrics", "model", "training", "scoring", "evaluation", "serve", "features", "commands")

# module or folder (all of it) -> stage; the longest matching name decides. The stage folders are the stages; a
# feature package's modules are placed one by one.
STAGE_OF = {
    "rewardlab": "core",  # the package's __init__ only
    "rewardlab.core": "core",
    "rewardlab.data": "data",
    "rewardlab.probes.augment": "data",
    "rewardlab.probes.pairs": "data",
    "rewardlab.probes.templates": "data",
    "rewardlab.probes.similarity": "data",
    "rewardlab.verifiers.records": "data",  # step-labelled solutions and their readers (ProcessBench's loader)
    "rewardlab.verifiers.readers": "data",
    "rewardlab.metrics": "metrics",
    "rewardlab.multiobjective.metrics": "metrics",
    "rewardlab.multiobjective.debias": "metrics",
    "rewardlab.models": "model",
    "rewardlab.model": "model",  # the public re-export of models.reward_model (relayout: keep)
    "rewardlab.multiobjective.model": "model",
    "rewardlab.multiobjective.gate": "model",
    "rewardlab.multiobjective.scalarise": "model",
    "rewardlab.training": "training",
    "rewardlab.multiobjective.options": "training",
    "rewardlab.multiobjective.train": "training",
    "rewardlab.multiobjective.losses": "training",
    "rewardlab.multiobjective.ridge": "training",
    "rewardlab.multiobjective.features": "training",
    "rewardlab.scoring": "scoring",
    "rewardlab.multiobjective.serving": "scoring",
    "rewardlab.multiobjective.composed": "scoring",
    "rewardlab.evaluation": "evaluation",
    "rewardlab.benchmarks": "evaluation",
    "rewardlab.probes": "evaluation",
    "rewardlab.multiobjective.report": "evaluation",
    "rewardlab.serve": "serve",
    "rewardlab.judges": "features",
    "rewardlab.verifiers": "features",  # ORM / PRM: records, model, trainer, evaluation (a vertical slice)
    "rewardlab.bon": "features",  # sampling, best-of-n analysis, rejection sampling (a vertical slice)
    "rewardlab.multiobjective": "features",
    "rewardlab.commands": "commands",
    "rewardlab.cli": "commands",
    "rewardlab.probes.run": "commands",
    "rewardlab.judges.train": "commands",
}
DISPATCHER = "rewardlab.cli"  # the one module that imports the commands


def stage_of(module: str) -> str | None:
    if module == "rewardlab":
        return STAGE_OF[module]  # the package's __init__ only (not a default for the modules in it)
    best = max(
        (k for k in STAGE_OF if k != "rewardlab" and (module == k or module.startswith(k + "."))), key=len, default=None
    )
    return STAGE_OF[best] if best is not None else None


def rank(module: str) -> int:
    return STAGES.index(stage_of(module))


def edges() -> list[tuple[str, str]]:
    return [(m, t) for m, targets in sorted(import_graph(PACKAGE).items()) for t in sorted(targets)]


def test_every_module_has_a_stage():
    """A new module is placed on purpose (a line in STAGE_OF, or a folder that has one)."""
    assert [m for m in import_graph(PACKAGE) if stage_of(m) is None] == []


def test_no_module_imports_a_later_stage():
    assert [f"{m} ({stage_of(m)}) -> {t} ({stage_of(t)})" for m, t in edges() if rank(t) > rank(m)] == []


def test_training_never_imports_evaluation():
    assert [(m, t) for m, t in edges() if stage_of(m) == "training" and stage_of(t) == "evaluation"] == []


def test_the_model_never_imports_scoring():
    assert [(m, t) for m, t in edges() if stage_of(m) == "model" and stage_of(t) == "scoring"] == []


def test_nothing_imports_a_command():
    assert [(m, t) for m, t in edges() if stage_of(t) == "commands" and m != DISPATCHER] == []


def test_the_checks_see_a_violation():
    """The rules are not vacuous: the graph has edges into every stage, and a made-up upward edge is caught."""
    seen = {stage_of(t) for _, t in edges()}
    assert set(STAGES) - {"commands"} <= seen
    assert (
        rank("rewardlab.commands.evaluate")
        > rank("rewardlab.training.train")
        > rank("rewardlab.models.reward_model")
        > rank("rewardlab.core.errors")
    )
