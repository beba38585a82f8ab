"""Docs that stay true across pages (issue 28, Found 7 and 8): one quickstart time for a quiet machine on every page
that gives one; no page's judge training writes into the directory another page's `judge` writes its judgments
to; the docs' commands use the current option names (the deprecated ones work, with a note, but are not taught)."""

import re
from pathlib import Path

from rewardlab.core.aliases import RENAMED
from test_docs import ALL, PAGES, command_lines, rewardlab_argv

ROOT = Path(__file__).resolve().parents[1]


def _commands():
    for page, line, _, block in ALL:
        for argv in command_lines(block):
            rl = rewardlab_argv(argv)
            if rl:
                yield f"{page}:{line}", rl


def _value(argv: list[str], flag: str, default: str | None = None) -> str | None:
    return argv[argv.index(flag) + 1] if flag in argv else default


def test_every_page_gives_the_same_quickstart_time_on_a_quiet_machine():
    """Before: 296 s, 667 s and 706 s on different pages for the same thing."""
    found = {
        page.relative_to(ROOT).as_posix(): set(re.findall(r"(\d+-\d+ s) on a quiet", page.read_text()))
        for page in PAGES
    }
    quoted = {p: t for p, t in found.items() if t}
    assert len(quoted) >= 2 and len(set.union(*quoted.values())) == 1, quoted


def test_no_judge_training_example_writes_where_a_judge_example_writes():
    """`train-judge` refuses a non-empty output directory: an example whose --output-dir is where another example's
    `judge --output` goes would fail when run in order (before: README's runs/judge, docs/judges.md's judgments;
    and train-judge's default output directory was runs/judge, where judge's default output goes)."""
    judged = {
        str(Path(_value(a, "--output", "runs/judge/judgments.jsonl")).parent): w
        for w, a in _commands()
        if a[0] == "judge"
    }
    trained = {_value(a, "--output-dir", "runs/train-judge"): w for w, a in _commands() if a[0] == "train-judge"}
    assert judged and trained
    assert not set(judged) & set(trained), {d: (judged[d], trained[d]) for d in set(judged) & set(trained)}


def test_the_docs_teach_the_current_option_names():
    old = {"--" + name.replace("_", "-") for name in RENAMED} | {"--no-" + n.replace("_", "-") for n in RENAMED}
    used = [(where, flag) for where, argv in _commands() for flag in argv if flag.split("=")[0] in old]
    assert used == []
