"""Every recipe in configs/recipes/ parses (its command, read from its first line, accepts every key) and runs two
steps on a tiny model: the backbone, the data (a small file in the recipe's own format), the output directory and,
for GPU recipes, the precision are overridden on the command line, as a user would."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from rewardlab.cli import main

RECIPES = sorted((Path(__file__).resolve().parents[1] / "configs" / "recipes").glob("*.yaml"))


def _command(recipe: Path) -> str:
    m = re.match(r"# rewardlab (\S+) --config (\S+)", recipe.read_text().splitlines()[0])
    assert m, f"{recipe.name}: the first line must be the command that runs it"
    assert m.group(2) == f"configs/recipes/{recipe.name}"
    return m.group(1)


def _rows(fmt: str, n: int = 24) -> list[dict]:
    rows = []
    for i in range(n):
        q, good, bad = f"What is {i} plus 1?", f"It is {i + 1}.", f"It is {i + 7}, I think."
        if fmt == "hh":
            rows.append(
                {"chosen": f"\n\nHuman: {q}\n\nAssistant: {good}", "rejected": f"\n\nHuman: {q}\n\nAssistant: {bad}"}
            )
        elif fmt == "helpsteer2":  # rated responses, for the multi-objective recipe
            for k, text in enumerate((good, bad)):
                rows.append(
                    {
                        "prompt": q,
                        "response": text,
                        **{
                            a: (4 - 3 * k + i) % 5
                            for a in ("helpfulness", "correctness", "coherence", "complexity", "verbosity")
                        },
                    }
                )
        elif fmt == "ranked":
            rows.append({"prompt": q, "responses": [bad, good, f"Maybe {i}."], "ranking": [1, 0, 2]})
        else:
            rows.append({"prompt": q, "chosen": good, "rejected": bad})
    return rows


def test_there_are_recipes_for_the_common_jobs():
    names = {r.stem for r in RECIPES}
    assert {"hh-minilm-cpu", "full-finetune-1.5b-gpu", "lora-8b", "kwise-ranked", "judge-genrm"} <= names


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.stem)
def test_recipe_parses_and_runs_two_steps_on_a_tiny_model(recipe, tiny_llama, tmp_path):
    command = _command(recipe)
    values = yaml.safe_load(recipe.read_text())
    data = tmp_path / "data.jsonl"
    fmt = "helpsteer2" if values.get("objective") == "regression" else values.get("format", "auto")
    data.write_text("".join(json.dumps(r) + "\n" for r in _rows(fmt)))
    out = tmp_path / "out"
    args = [command, "--config", str(recipe), "--data", str(data), "--output-dir", str(out)]
    if command == "train":
        args += [
            "--backbone",
            tiny_llama,
            "--max-steps",
            "2",
            "--batch-size",
            "4",
            "--max-length",
            "48",
            "--eval-fraction",
            "0.25",
            "--precision",
            "fp32",
            "--eval-every",
            "0",
            "--save-every",
            "0",
        ]
        if values.get("micro_batch_size"):
            args += ["--micro-batch-size", "2"]
        assert main(args) == 0
        summary = json.loads((out / "train_summary.json").read_text())
        assert (out / "model" / "rewardlab.json").exists()
        if values.get("objective") != "regression":  # a ridge stage 1 is solved in closed form: no steps
            assert summary["steps"] == 2
        for key, value in values.items():  # every recipe value reached the run, except what was overridden
            if key not in {
                "data",
                "output_dir",
                "backbone",
                "max_length",
                "batch_size",
                "micro_batch_size",
                "precision",
                "eval_every",
                "save_every",
                "eval_fraction",
            }:
                assert summary["config"][key] == value, key
    else:
        assert command == "train-judge"
        args += [
            "--backbone",
            tiny_llama,
            "--max-train",
            "4",
            "--max-eval",
            "2",
            "--batch-size",
            "2",
            "--device",
            "cpu",
            "--max-question-tokens",
            "32",
            "--max-answer-tokens",
            "16",
            "--eval-fraction",
            "0.25",
        ]
        assert main(args) == 0
        report = json.loads((out / "report.json").read_text())
        assert report["trained_eval"]["n_records"] == 2
