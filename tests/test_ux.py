"""What a user sees: --help by section with every option described and each default once and right, fast --help and
--version (no torch import), the end-of-training summary and run report, split.json and ``eval --run``, the
trained-on warning, progress verbosity, world-readable model files."""

from __future__ import annotations

import dataclasses
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from rewardlab.cli import COMMANDS, main, make_parser
from rewardlab.core.cli_help import field_comments, field_sections, light_config_class

SRC = str(Path(__file__).resolve().parents[1] / "src")


def _help(parser, command: str) -> str:
    sub = parser._subparsers._group_actions[0].choices[command]
    return sub.format_help()


@pytest.mark.parametrize("command", list(COMMANDS))
def test_light_help_is_the_real_help(command):
    """The help read from source without importing the module is exactly the help of the real config class (same
    fields, types, defaults, docs, sections): if the stand-in drifted, this fails."""
    light = _help(make_parser(only=command, light=True), command)
    real = _help(make_parser(only=command, light=False), command)
    assert light == real
    module, name = COMMANDS[command][1].split(":")
    assert light_config_class(module, name) is not None  # the fast path really exists for every command


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_option_is_described(command):
    module, name = COMMANDS[command][1].split(":")
    cls = light_config_class(module, name)
    docs = field_comments(cls)
    assert [f.name for f in dataclasses.fields(cls) if not docs.get(f.name)] == []


def test_train_help_groups_options_by_section_and_shows_defaults_once():
    text = _help(make_parser(only="train", light=True), "train")
    order = [
        text.index(f"\n{s} options:")
        for s in ("data", "model", "loss", "optimisation", "output", "evaluation", "checkpoints")
    ]
    assert order == sorted(order)
    assert text.index("\n  --lr LR") > text.index("optimisation options:") > text.index("\n  --loss LOSS")
    flat = " ".join(text.split())
    assert "Rao-Kupper θ (default 2) --top-k" in flat  # the text explains the None default: not shown again
    assert "(default: None)" not in text and "default: none)" not in flat.split("--tie-param")[1].split("--top-k")[0]
    assert "(r_w + r_l)²" in flat and "mean(r²)" not in flat
    assert "first k tiers" in flat


def test_quickstart_help_shows_the_defaults_it_runs_with():
    flat = " ".join(_help(make_parser(only="quickstart", light=True), "quickstart").split())
    assert "(default: 0.0001)" in flat and "(default: runs/quickstart)" in flat
    assert "5e-05" not in flat and "(default: runs/rm)" not in flat


def test_section_headers_are_not_documentation():
    @dataclasses.dataclass
    class Demo:
        # data
        a: int = 1  # the first one
        # output
        # explained over
        # two lines here
        b: str = "x"

    assert field_comments(Demo) == {"a": "the first one", "b": "explained over two lines here"}
    assert field_sections(Demo) == {"a": "data", "b": "output"}


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["--version"],
        ["train", "--help"],
        ["eval", "--help"],
        ["judge", "--help"],
        ["serve", "--help"],
        ["trian", "--data", "x"],
        [],
    ],
)
def test_help_and_version_do_not_import_torch(argv):
    """torch + transformers were what made `rewardlab --help` take ~3 s; the help must not import them."""
    code = (
        "import sys\nfrom rewardlab.cli import main\ntry:\n    main(%r)\nexcept SystemExit:\n    pass\n"
        "print('HEAVY', sorted(m for m in ('torch', 'transformers', 'numpy') if m in sys.modules))" % argv
    )
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, "PYTHONPATH": SRC}
    )
    assert r.returncode == 0, r.stderr
    assert "HEAVY []" in r.stdout
    if argv == ["--version"]:
        assert r.stdout.startswith("rewardlab 0.")


def _train(tmp_path, tiny_llama, name="run", extra=()):
    out = tmp_path / name
    rc = main(
        [
            "train",
            "--backbone",
            tiny_llama,
            "--embedded-size",
            "120",
            "--max-steps",
            "3",
            "--batch-size",
            "8",
            "--max-length",
            "48",
            "--log-every",
            "1",
            "--eval-fraction",
            "0.2",
            "--output-dir",
            str(out),
            *extra,
        ]
    )
    assert rc == 0
    return out


def test_train_ends_with_a_summary_a_report_with_curves_and_a_split(tmp_path, tiny_llama, capsys):
    out = _train(tmp_path, tiny_llama)
    captured = capsys.readouterr()
    printed = captured.out
    assert "rewardlab: reading embedded" in captured.err  # a status line before each slow step
    summary = json.loads((out / "train_summary.json").read_text())
    n_train, n_eval = summary["data"]["n_train"], summary["data"]["n_eval"]
    assert n_train + n_eval == 120 and n_eval > 0
    assert "read 120 records" in printed and "skipped 0" in printed
    assert f"split: {n_train} training, {n_eval} held-out records" in printed
    assert "trained 3 steps in" in printed and f"report: {out / 'report.md'}" in printed
    acc = summary["final_eval"]["accuracy"]
    assert f"{acc:.4f}" in printed  # the held-out metric the table shows is the run's
    md = (out / "report.md").read_text()
    assert "## Training curves: trained" in md
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert f"| 3 | {rows[2]['loss']:.4f} |" in md  # step 3's logged loss, from metrics.jsonl
    html = (out / "report.html").read_text()
    assert 'data-plot="curves"' in html
    assert json.loads((out / "report.json").read_text())["curves"]["trained"][0]["step"] == 1
    split = json.loads((out / "split.json").read_text())
    assert split["rule"] == {**split["rule"], "kind": "prompt_hash", "eval_fraction": 0.2, "split_seed": 0}
    assert len(split["held_out_ids"]) == n_eval and split["n_train"] == n_train
    assert len(split["train_prompt_hashes"]) > 0
    # saved files are readable by others (safetensors wrote model.safetensors 0600)
    umask = os.umask(0)
    os.umask(umask)
    mode = stat.S_IMODE((out / "model" / "model.safetensors").stat().st_mode)
    assert mode == 0o666 & ~umask


def test_checkpoints_are_readable_like_the_rest(tmp_path, tiny_llama):
    out = _train(tmp_path, tiny_llama, "ck", ["--save-every", "1", "--eval-fraction", "0"])
    umask = os.umask(0)
    os.umask(umask)
    files = sorted((out / "checkpoints").glob("step-*/model.safetensors"))
    assert files and all(stat.S_IMODE(f.stat().st_mode) == 0o666 & ~umask for f in files)


def test_eval_run_evaluates_exactly_the_held_out_records_and_eval_warns_on_training_records(
    tmp_path, tiny_llama, capsys
):
    from rewardlab.data import synthetic, write_jsonl

    data = tmp_path / "all.jsonl"
    write_jsonl(synthetic.generate(120, seed=0), str(data))
    out = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--backbone",
                tiny_llama,
                "--data",
                str(data),
                "--max-steps",
                "2",
                "--batch-size",
                "8",
                "--max-length",
                "48",
                "--eval-fraction",
                "0.2",
                "--output-dir",
                str(out),
            ]
        )
        == 0
    )
    split = json.loads((out / "split.json").read_text())
    capsys.readouterr()

    assert main(["eval", "--run", str(out), "--output-dir", str(tmp_path / "ev"), "--n-boot", "10"]) == 0
    res = capsys.readouterr()
    ids = [json.loads(x)["id"] for x in (tmp_path / "ev" / "examples-run.jsonl").read_text().splitlines()]
    assert ids == split["held_out_ids"]
    # held-out records: none was trained on (other warnings, e.g. texts cut to --max-length 48, may appear)
    assert "trained on" not in res.err and "cut" in res.err
    assert "report:" in res.out and "## Summary" not in res.out  # a short table, not the whole report

    # the whole file: every training record's prompt is flagged
    assert (
        main(
            [
                "eval",
                "--model",
                str(out / "model"),
                "--data",
                str(data),
                "--output-dir",
                str(tmp_path / "ev2"),
                "--n-boot",
                "10",
            ]
        )
        == 0
    )
    err = capsys.readouterr().err
    n_train = 120 - len(ids)
    assert f"warning: {n_train} of 120 records have a prompt that run was trained on" in err
    assert "warning" in "".join(json.loads((tmp_path / "ev2" / "report.json").read_text())["notes"])

    # the data changed under the run: refused, not silently a different split
    rows = [json.loads(x) for x in data.read_text().splitlines()]
    held = next(r for r in rows if r["id"] == split["held_out_ids"][0])
    held["responses"][0] += " (edited)"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["eval", "--run", str(out), "--output-dir", str(tmp_path / "ev3")]) == 2
    assert "no longer gives the held-out records" in capsys.readouterr().err
    assert main(["eval", "--run", str(out), "--data", str(data)]) == 2
    assert "not both" in capsys.readouterr().err


def test_quiet_silences_status_lines(tmp_path, tiny_llama, capsys):
    """(The normal run's status lines are checked in the summary test.)"""
    _train(tmp_path, tiny_llama, "quiet", ["--quiet"])
    res = capsys.readouterr()
    assert "rewardlab:" not in res.err and "train:" not in res.err and "trained 3 steps" in res.out
    assert "REWARDLAB_VERBOSITY" not in os.environ  # --quiet was that call's only
    args = make_parser(only="train", light=True).parse_args(["train", "-v"])
    assert args.verbosity == "verbose"


def test_progress_shows_on_rank_0_only_and_follows_the_verbosity(monkeypatch):
    from rewardlab.core import progress

    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.setenv(progress.ENV, "normal")
    assert progress.enabled() and not progress.enabled(2)
    monkeypatch.setenv("RANK", "1")
    assert not progress.enabled()
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv(progress.ENV, "quiet")
    assert not progress.enabled() and progress.bar(3, "x").disable
    monkeypatch.setenv(progress.ENV, "verbose")
    assert progress.enabled(2) and list(progress.track([1, 2, 3], "x")) == [1, 2, 3]
    with pytest.raises(ValueError, match="verbosity"):
        progress.set_verbosity("loud")


def test_summary_table_worked_example():
    from rewardlab.evaluation.run_report import summary_table

    text = summary_table(
        {
            "a": {"n_records": 10, "n_pairs": 12, "accuracy": 0.75, "accuracy_ci95": [0.5, 0.9]},
            "b": {"n_records": 10, "n_pairs": 12, "accuracy": 0.5, "benchmark": {"headline": {"overall": 0.625}}},
        }
    )
    lines = text.splitlines()
    assert lines[0].split() == ["records", "pairs", "accuracy", "[95%", "CI]", "overall"]  # the headline's name
    assert lines[1].split() == ["a", "10", "12", "0.7500", "[0.5000,", "0.9000]", "—"]
    assert lines[2].split() == ["b", "10", "12", "0.5000", "0.6250"]


def test_skip_reasons_group_messages_without_their_line():
    from rewardlab.evaluation.run_report import skip_reasons

    msgs = [
        "bad.jsonl, line 6, field 'rejected': chosen and rejected are identical",
        "bad.jsonl, line 9, field 'rejected': chosen and rejected are identical",
        "bad.jsonl, line 2, field 'chosen': empty",
    ]
    assert skip_reasons(msgs) == [
        "2 × field 'rejected': chosen and rejected are identical",
        "1 × field 'chosen': empty",
    ]


def test_score_with_text_writes_the_texts_next_to_the_scores(tmp_path, tiny_llama):
    from rewardlab.models.reward_model import RewardModel

    model = tmp_path / "m"
    RewardModel.from_backbone(tiny_llama, max_length=32).save(model)
    singles = tmp_path / "s.jsonl"
    singles.write_text(
        json.dumps({"prompt": "hi", "response": "hello"})
        + "\n"
        + json.dumps({"prompt": [{"role": "user", "content": "yo"}], "response": "hey"})
        + "\n"
    )
    pairs = tmp_path / "p.jsonl"
    pairs.write_text(json.dumps({"prompt": "q", "chosen": "good", "rejected": "bad"}) + "\n")
    for data, name in ((singles, "a"), (pairs, "b")):
        plain, text = tmp_path / f"{name}.jsonl", tmp_path / f"{name}-text.jsonl"
        assert main(["score", "--model", str(model), "--data", str(data), "--output", str(plain), "-q"]) == 0
        assert (
            main(["score", "--model", str(model), "--data", str(data), "--output", str(text), "--with-text", "-q"]) == 0
        )
        rows = [json.loads(x) for x in plain.read_text().splitlines()]
        rows_t = [json.loads(x) for x in text.read_text().splitlines()]
        assert [{k: r[k] for k in r} for r in rows] == [{k: r[k] for k in r if k in rows[0]} for r in rows_t]
        if name == "a":
            assert [(r["prompt"], r["response"]) for r in rows_t] == [
                ("hi", "hello"),
                ([{"role": "user", "content": "yo"}], "hey"),
            ]
            assert "prompt" not in rows[0]
        else:
            assert rows_t[0]["prompt"] == "q" and rows_t[0]["responses"] == ["good", "bad"]


def test_an_eval_on_other_data_labels_the_models_training_curves(tmp_path, tiny_llama):
    """The model's run has metrics.jsonl, so an eval report shows its training curves; on another data set they
    must say they are the model's own training run (its held-out split), not results on the data evaluated."""
    out = _train(tmp_path, tiny_llama)
    data = tmp_path / "other.jsonl"
    data.write_text(json.dumps({"prompt": "Name a fruit.", "chosen": "Apple.", "rejected": "A chair."}) + "\n")
    ev = tmp_path / "ev"
    assert (
        main(["eval", "--model", str(out / "model"), "--data", str(data), "--output-dir", str(ev), "--n-boot", "5"])
        == 0
    )
    report = json.loads((ev / "report.json").read_text())
    assert report["curves"] and f"not results on {data}" in report["curves_note"]
    md = (ev / "report.md").read_text()
    assert "(its own training run)" in md and "own held-out split, not results on" in md
    html = (ev / "report.html").read_text()
    assert "the model&#x27;s own training run" in html or "the model's own training run" in html
