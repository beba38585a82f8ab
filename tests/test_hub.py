"""--push-to-hub (rewardlab.core.hub): the model card generated from a real run, and the upload through huggingface_hub
with only its network client (HfApi) replaced by a recorder. The real upload cannot run here (no hub)."""

import json

import huggingface_hub
import pytest

from rewardlab.cli import main
from rewardlab.core.hub import model_card
from rewardlab.data import Comparison, write_jsonl


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, tiny_llama):
    tmp = tmp_path_factory.mktemp("hub")
    records = [
        Comparison(prompt=f"Say something about item {i}", responses=(f"Item {i} is fine.", "No."), chosen=0, id=str(i))
        for i in range(30)
    ]
    write_jsonl(records, str(tmp / "prefs.jsonl"))
    args = ["train", "--backbone", tiny_llama, "--data", str(tmp / "prefs.jsonl"), "--output-dir", str(tmp / "run")]
    args += ["--max-steps", "3", "--batch-size", "4", "--max-length", "32", "--log-every", "1", "--report-to", "none"]
    assert main([*args, "-q"]) == 0
    return tmp / "run"


class RecordingHfApi:
    """huggingface_hub.HfApi at the network boundary: records the calls, uploads nothing."""

    calls: list = []

    def __init__(self, *args, **kwargs):
        pass

    def create_repo(self, repo_id, **kwargs):
        RecordingHfApi.calls.append(("create_repo", repo_id, kwargs))
        return f"https://huggingface.co/{repo_id}"

    def upload_folder(self, **kwargs):
        from pathlib import Path

        files = sorted(p.name for p in Path(kwargs["folder_path"]).iterdir())
        RecordingHfApi.calls.append(("upload_folder", kwargs, files))


def test_the_card_says_what_the_run_did(trained_run):
    spec = json.loads((trained_run / "model" / "rewardlab.json").read_text())
    summary = json.loads((trained_run / "train_summary.json").read_text())
    rows = [json.loads(line) for line in (trained_run / "metrics.jsonl").read_text().splitlines()]
    last = [r for r in rows if "loss" in r and "step" in r][-1]
    card = model_card(trained_run / "model", "me/rm")
    assert card.startswith("---\nlibrary_name: transformers\npipeline_tag: text-classification\n")
    assert "# me/rm" in card
    assert f"training data fingerprint: `{spec['data_fingerprint']}`" in card
    assert f"training loss at step {last['step']}: {last['loss']:.4f}" in card
    final = summary["final_eval"]
    assert f"| {final['n_records']} | {final['n_pairs']} | {final['accuracy']:.4f} " in card
    assert f"loss `bt`, 3 optimizer steps of 4 comparisons, lr {summary['config']['lr']}" in card
    for key in ("template", "pooling", "max_length", "truncation"):
        assert f"- `{key}`: `{spec[key]!r}`" in card
    for where in ('RewardModel.load(snapshot_download("me/rm"))', "AutoModelForSequenceClassification", "GRPOTrainer"):
        assert where in card
    assert "PoolingParams(use_activation=False)" in card  # vLLM: the raw reward


def test_export_push_to_hub_uploads_the_export_with_its_card(trained_run, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(huggingface_hub, "HfApi", RecordingHfApi)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_TOKEN", "hf_test_not_a_real_token")
    RecordingHfApi.calls = []
    out = tmp_path / "export"
    args = ["export", "--model", str(trained_run / "model"), "--output", str(out), "--push-to-hub", "me/rm"]
    assert main([*args, "--private"]) == 0
    assert "uploaded with its model card (README.md): https://huggingface.co/me/rm" in capsys.readouterr().out
    (kind, repo, kw), (kind2, upload, files) = RecordingHfApi.calls
    assert kind == "create_repo" and repo == "me/rm" and kw["private"] is True and kw["repo_type"] == "model"
    assert kind2 == "upload_folder" and upload["folder_path"] == str(out) and upload["repo_id"] == "me/rm"
    assert "README.md" in files and "rewardlab.json" in files and "model.safetensors" in files
    card = (out / "README.md").read_text()
    assert card == model_card(out, "me/rm", trained_run)  # the training run's numbers, read from the source's run
    assert "Held-out metrics" in card and "Not recorded" not in card


@pytest.mark.parametrize(
    "env, repo, words",
    [
        ({"HF_TOKEN": "x"}, "no-slash", "expected a repo id OWNER/NAME"),
        ({"HF_TOKEN": "x", "HF_HUB_OFFLINE": "1"}, "me/rm", "HF_HUB_OFFLINE is set"),
        ({}, "me/rm", "no Hugging Face token"),
    ],
)
def test_push_is_refused_before_any_work(trained_run, tmp_path, monkeypatch, capsys, env, repo, words):
    monkeypatch.setattr(huggingface_hub, "HfApi", RecordingHfApi)
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))  # no stored token
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: env.get("HF_TOKEN"))
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    RecordingHfApi.calls = []
    out = tmp_path / "export"
    assert main(["export", "--model", str(trained_run / "model"), "--output", str(out), "--push-to-hub", repo]) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err
    assert not out.exists() and RecordingHfApi.calls == []
