"""Each registry describes itself: the losses, data formats, judge modes, judge backends and benchmarks are each one
table in code, and the command line's --help and the docs (README.md and docs/*.md) are checked against it (a name
added to one place but not the others fails here)."""

import argparse
import dataclasses
import json
import re
from pathlib import Path

import pytest

from rewardlab.benchmarks import REGISTRY
from rewardlab.cli import add_config_args
from rewardlab.commands.evaluate import EvalConfig, _load_records
from rewardlab.commands.score import ScoreConfig
from rewardlab.core.cli_help import source_registry
from rewardlab.core.errors import DataError, RewardlabError
from rewardlab.data.formats import FORMAT_SPECS, FORMATS, GROUPED, SPECS, detect_format
from rewardlab.judges.factory import BACKENDS, make_backend
from rewardlab.judges.run import JUDGE_MODES, MODES, JudgeConfig, build_judge
from rewardlab.training.losses import LOSSES, LossOptions, LossType
from rewardlab.training.train import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
README = "\n\n".join(p.read_text() for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))])


def _help(cls) -> str:
    parser = argparse.ArgumentParser(prog="x")
    add_config_args(parser, cls)
    return " ".join(parser.format_help().split())  # argparse wraps lines: compare with whitespace collapsed


def _table_names(header: str) -> list[str]:
    """The first-column names of the README table whose header row starts with ``header``."""
    lines = README.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    names = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        names.append(re.match(r"\| `([^`]+)`", line).group(1))
    return names


def test_losses_registry_help_and_readme_agree():
    assert list(LossType) == list(LOSSES) and all(str(t) == t.value for t in LossType)
    fields = {f.name for f in dataclasses.fields(LossOptions)}
    for name, spec in LOSSES.items():
        assert (spec.pair is None) != (spec.batch is None) and set(spec.options) <= fields
        assert spec.label_smoothing == ("label_smoothing" in spec.options)
    # --help names every loss, read from the registry's source (importing it would load torch for `train --help`);
    # the docs' table has one row per loss with its help line
    assert source_registry("rewardlab.training.losses", "LOSSES") == list(LOSSES)
    text = _help(TrainConfig)
    assert "one of: " + " | ".join(LOSSES) in text
    assert _table_names("| `--loss` |") == list(LOSSES)
    with pytest.raises(RewardlabError, match="loss must be one of bt, margin"):
        TrainConfig(loss="nope")


def test_a_loss_spec_has_one_way_to_compute():
    from rewardlab.training.losses import LossSpec

    with pytest.raises(TypeError, match="exactly one"):
        LossSpec("h", "u")
    with pytest.raises(TypeError, match="exactly one"):
        LossSpec("h", "u", pair=lambda *a: None, batch=lambda *a: None)


def test_formats_registry_detection_error_help_and_readme_agree():
    comparison = [f.name for f in FORMAT_SPECS if f.parse is not None]
    assert list(FORMATS) == comparison and set(GROUPED) == {"helpsteer2"} and SPECS["single"].parse is None
    with pytest.raises(DataError) as e:
        detect_format({"question": "q", "answer": "a"})
    for spec in FORMAT_SPECS:
        in_error = f"{spec.name} ({spec.columns})" in str(e.value)
        assert in_error == (spec.parse is not None), spec.name  # `single` is not a comparison format
    train_help, score_help = _help(TrainConfig), _help(ScoreConfig)
    for spec in FORMAT_SPECS:
        listed = f"{spec.name} ({' '.join(spec.columns.split())})"
        assert (listed in train_help) == (spec.parse is not None), spec.name
        assert listed in score_help, spec.name  # rewardlab score also reads single prompt/response rows
    documented = set(_table_names("| `--format` |") if "| `--format` |" in README else []) | {
        m for m in re.findall(r"^\| `([a-z0-9_]+)` \|", README, flags=re.M)
    }
    assert set(FORMATS) <= documented


def test_every_detect_rule_picks_its_own_format():
    rows = {
        "rewardlab": {"prompt": "p", "responses": ["a", "b"], "chosen": 0},
        "trl": {"chosen": "a", "rejected": "b"},
        "hh": {"chosen": "\n\nHuman: hi\n\nAssistant: a", "rejected": "\n\nHuman: hi\n\nAssistant: b"},
        "pairwise": {"input": "p", "output_1": "a", "output_2": "b", "label": 1},
        "ratings": {"prompt": "p", "completions": [{"response": "a", "score": 1}]},
        "helpsteer2": {"prompt": "p", "response": "a", "helpfulness": 3},
        "helpsteer2_pref": {"prompt": "p", "response_1": "a", "response_2": "b", "preference_strength": 1},
        "ranked": {"prompt": "p", "responses": ["a", "b"], "ranking": [1, 0]},
        "nemo_regression": {"text": "<extra_id_1>User\nq\n<extra_id_1>Assistant\na\n", "label": [1] * 9},
    }
    assert set(rows) == set(FORMATS)
    assert {name: detect_format(row) for name, row in rows.items()} == {name: name for name in rows}


def test_judge_modes_registry_help_and_readme_agree(tmp_path):
    assert MODES == tuple(JUDGE_MODES)
    assert "one of: " + ", ".join(JUDGE_MODES) in _help(JudgeConfig)
    modes_section = README.split("**Modes** (`--mode`)")[1].split("**Position bias**")[0]
    assert all(f"`{m}`" in modes_section for m in JUDGE_MODES)
    with pytest.raises(RewardlabError, match="unknown judge mode 'nope'"):
        JudgeConfig(mode="nope")
    # a judge directory whose judge.json names a mode this version lacks: an error, not silently a verifier
    (tmp_path / "judge.json").write_text(json.dumps({"mode": "future-mode"}))
    with pytest.raises(RewardlabError, match="unknown judge mode 'future-mode'; choose one of pairwise"):
        build_judge(JudgeConfig(model=str(tmp_path)))


def test_judge_backends_registry():
    assert list(BACKENDS) == ["hf", "openai", "llamacpp"]
    assert all(f"| `{b}`" in README for b in BACKENDS)
    with pytest.raises(RewardlabError, match="unknown judge backend 'nope'; choose hf, openai, llamacpp"):
        make_backend("nope")
    with pytest.raises(RewardlabError, match="needs --base-url"):
        make_backend("openai", "m")


def test_benchmarks_registry_flags_what_reads_plain_comparisons(tmp_path):
    assert {name for name, b in REGISTRY.items() if b.reads_comparisons} == {"generic", "best-of-n"}
    assert _table_names("| `--benchmark` |") == list(REGISTRY)
    data = tmp_path / "pairs.jsonl"
    data.write_text(json.dumps({"prompt": "p", "chosen": "a", "rejected": "b"}) + "\n")
    cfg = EvalConfig(data=str(data), format="trl")
    records, _, _ = _load_records(cfg, REGISTRY["generic"])
    assert [c.responses for c in records] == [("a", "b")]
    # the flag, not the name, decides: a benchmark flagged so reads plain comparisons with --format
    flagged = dataclasses.replace(REGISTRY["rewardbench"], reads_comparisons=True)
    assert [c.responses for c in _load_records(cfg, flagged)[0]] == [("a", "b")]
    with pytest.raises(RewardlabError, match="score-weights does not apply to the rewardbench"):
        _load_records(dataclasses.replace(cfg, score_weights="helpfulness=1"), REGISTRY["rewardbench"])


def test_architecture_doc_names_each_registry():
    """docs/architecture.md says where a new loss, format, benchmark, judge mode and backend go: by the names the
    code uses, so a renamed registry shows up here."""
    doc = (Path(__file__).resolve().parents[1] / "docs" / "architecture.md").read_text()
    import rewardlab.benchmarks
    import rewardlab.data.formats
    import rewardlab.judges.factory
    import rewardlab.judges.run
    import rewardlab.training.losses

    for module, name in (
        (rewardlab.training.losses, "LOSSES"),
        (rewardlab.training.losses, "LossSpec"),
        (rewardlab.data.formats, "FORMAT_SPECS"),
        (rewardlab.data.formats, "FormatSpec"),
        (rewardlab.benchmarks, "REGISTRY"),
        (rewardlab.judges.run, "JUDGE_MODES"),
        (rewardlab.judges.factory, "BACKENDS"),
    ):
        assert hasattr(module, name), name
        assert re.search(rf"\b{name}\b", doc), name
