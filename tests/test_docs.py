"""The doc test: every ```bash block of README.md, CONTRIBUTING.md and docs/*.md is checked against the real
command line, and the blocks marked ``<!-- doc-test: run -->`` are executed on tiny models (conventions in
CONTRIBUTING.md, "The doc test"). A renamed or removed flag fails here wherever it is documented."""

from __future__ import annotations

import argparse
import json
import re
import shlex
from pathlib import Path

import pytest

from rewardlab.cli import COMMAND_BASES, COMMANDS, build_config, main, make_parser

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"(?:<!--\s*doc-test:\s*(\w+)([^>]*)-->\s*\n)?```bash\n(.*?)```", re.S)
LAUNCHERS = ("torchrun", "accelerate")


def blocks() -> list[tuple[str, int, str, str]]:
    """(page, line, marker, text) of every bash block; marker is "", "run" or "skip"."""
    out = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for m in FENCE.finditer(text):
            marker = (m.group(1) or "").lower()
            if marker == "skip" and not m.group(2).strip():
                raise AssertionError(f"{page.name}: a doc-test skip needs a reason")
            out.append((page.relative_to(ROOT).as_posix(), text[: m.start(3)].count("\n") + 1, marker, m.group(3)))
    return out


def command_lines(block: str) -> list[list[str]]:
    """The block's commands as argv lists: continuations joined, comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", block)
    out = []
    for line in joined.splitlines():
        if line.strip():
            argv = shlex.split(line, comments=True)
            if argv:
                out.append(argv)
    return out


def rewardlab_argv(argv: list[str]) -> list[str] | None:
    """The rewardlab arguments of a command line (also under torchrun / accelerate launch), or None."""
    if argv[0] == "rewardlab":
        rest = argv[1:]
    elif argv[0] in LAUNCHERS and "rewardlab.cli" in argv:
        rest = argv[argv.index("rewardlab.cli") + 1 :]
    else:
        return None
    return rest[:-1] if rest and rest[-1] == "..." else rest


def _check_parses(argv: list[str], where: str) -> None:
    parser = make_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:
        if e.code == 0:  # --help / --version
            return
        raise AssertionError(f"{where}: `rewardlab {shlex.join(argv)}` does not parse") from None
    if args.command not in COMMANDS:
        return
    config = getattr(args, "config", None)
    if config:
        if not (ROOT / config).is_file():
            return  # the user's own YAML: the flags were checked, the file cannot be
        args.config = str(ROOT / config)
    cls_path = COMMANDS[args.command][1]
    module, name = cls_path.split(":")
    cls = getattr(__import__(module, fromlist=[name]), name)
    values = argparse.Namespace(**{k: v for k, v in vars(args).items() if k not in ("verbosity", "target")})
    try:
        build_config(cls, values, COMMAND_BASES.get(args.command))
    except Exception as e:  # a value its config refuses (e.g. an unknown loss name)
        raise AssertionError(f"{where}: `rewardlab {shlex.join(argv)}`: {e}") from None


ALL = blocks()


def test_the_pages_have_bash_blocks_and_run_blocks():
    assert len(ALL) >= 15 and sum(marker == "run" for _, _, marker, _ in ALL) >= 4
    assert any(p == "README.md" for p, *_ in ALL)


@pytest.mark.parametrize("page,line,marker,block", ALL, ids=[f"{p}:{n}" for p, n, _, _ in ALL])
def test_every_command_parses(page, line, marker, block):
    if marker == "skip":
        pytest.skip("doc-test: skip")
    for argv in command_lines(block):
        where = f"{page}, block at line {line}"
        rl = rewardlab_argv(argv)
        if rl is not None:
            _check_parses(rl, where)
        elif argv[0] in ("python", "python3", "bash") and len(argv) > 1 and not argv[1].startswith("-"):
            assert (ROOT / argv[1]).is_file(), f"{where}: {argv[1]} is not a file of the repository"


def test_a_wrong_flag_is_caught():
    """The checker itself: a misspelt flag or a bad value fails, a good line passes."""
    _check_parses(["train", "--data", "x.jsonl", "--lr", "2e-5"], "here")
    with pytest.raises(AssertionError, match="does not parse"):
        _check_parses(["train", "--learnin-rate", "2e-5"], "here")  # misspelt (--learning-rate is an alias)
    with pytest.raises(AssertionError, match="loss"):
        _check_parses(["train", "--loss", "hinge"], "here")
    assert rewardlab_argv(["torchrun", "--nproc_per_node", "2", "-m", "rewardlab.cli", "train", "..."]) == ["train"]


def test_every_relative_link_resolves():
    missing = []
    for page in PAGES:
        for m in re.finditer(r"\]\(([^)\s]+)\)", page.read_text(encoding="utf-8")):
            target = m.group(1).split("#")[0]
            if (
                target
                and not target.startswith(("http://", "https://", "mailto:"))
                and not (page.parent / target).exists()
            ):
                missing.append(f"{page.relative_to(ROOT)}: {m.group(1)}")
    assert missing == []


# ---- running the run blocks on tiny models ------------------------------------------------------------------
def _substitutions(tmp: Path, tiny: str) -> dict[str, str]:
    """Placeholder file names of the docs -> small real files (a token is replaced when it equals a key)."""
    from rewardlab.data import synthetic

    recs = synthetic.generate(60, seed=1)
    prefs = tmp / "_prefs.jsonl"
    prefs.write_text(
        "".join(
            json.dumps({"prompt": c.prompt, "chosen": c.responses[c.chosen], "rejected": c.responses[1 - c.chosen]})
            + "\n"
            for c in recs
        )
    )
    samples = tmp / "_samples.jsonl"
    samples.write_text("".join(json.dumps({"prompt": c.prompt, "response": c.responses[0]}) + "\n" for c in recs[:8]))
    held = tmp / "_heldout.jsonl"
    held.write_text("".join(prefs.read_text().splitlines(keepends=True)[:6]))
    judge = f"model={tiny},device=cpu,max_question_tokens=32,max_answer_tokens=16"
    return {
        "prefs.jsonl": str(prefs),
        "samples.jsonl": str(samples),
        "heldout.jsonl": str(held),
        "reward-bench/": str(ROOT / "tests" / "fixtures" / "benchmarks" / "rewardbench-v1"),
        "mode=logprob": f"mode=logprob,{judge}",
    }


SMALL = {  # what each command gets added so it runs in seconds on a tiny model
    "train": ["--max-steps", "2", "--batch-size", "4", "--max-length", "48", "--embedded-size", "80", "-q"],
    "quickstart": ["--max-steps", "2", "--batch-size", "4", "--max-length", "48", "--embedded-size", "80", "-q"],
    "eval": ["--n-boot", "10", "-q"],
    "score": ["-q"],
    "judge": ["--device", "cpu", "--limit", "2", "--max-question-tokens", "32", "--max-answer-tokens", "16", "-q"],
}
TINY_FLAG = {"train": "--backbone", "quickstart": "--backbone", "judge": "--model"}


def _run_argv(argv: list[str], subs: dict[str, str], tiny: str) -> list[str]:
    argv = [subs.get(a, a) for a in argv]
    command = argv[0]
    if command == "eval" and "--benchmark" in argv and argv[argv.index("--benchmark") + 1] == "list":
        return argv
    return argv + ([TINY_FLAG[command], tiny] if command in TINY_FLAG else []) + SMALL.get(command, [])


RUN_BLOCKS = [b for b in ALL if b[2] == "run"]


def test_the_run_blocks_run_on_tiny_models(tmp_path, tiny_llama, monkeypatch):
    """The quick start and the tour, in order, in one directory (later blocks use what earlier ones wrote)."""
    monkeypatch.chdir(tmp_path)
    subs = _substitutions(tmp_path, tiny_llama)
    ran = []
    for page, line, _, block in RUN_BLOCKS:
        for argv in command_lines(block):
            rl = rewardlab_argv(argv)
            assert rl is not None, f"{page}:{line}: a run block may only hold rewardlab commands"
            full = _run_argv(rl, subs, tiny_llama)
            assert main(full) == 0, f"{page}:{line}: `rewardlab {shlex.join(full)}` failed"
            ran.append(rl[0])
    assert {"quickstart", "train", "eval", "score", "judge"} <= set(ran)
    assert (tmp_path / "runs" / "quickstart" / "report.html").is_file()
    assert (tmp_path / "runs" / "quickstart-eval" / "report.md").is_file()
    scores = [json.loads(x) for x in (tmp_path / "scores.jsonl").read_text().splitlines()]
    assert scores and "response" in scores[0]  # --with-text


@pytest.mark.slow
def test_readme_python_example_is_ranked_right_by_the_quickstart_model(tmp_path, monkeypatch):
    """The README's Python snippet, run against a real `rewardlab quickstart` model (MiniLM, ~4-12 min): its
    first response, the one that uses the asked-for word, must get the higher reward."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    snippet = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    assert main(["quickstart", "-q"]) == 0
    namespace: dict = {}
    exec(snippet.replace("rm.score(", "result = rm.score(", 1), namespace)  # noqa: S102 - the README's own code
    first, second = namespace["result"]
    assert first > second
