"""``--push-to-hub REPO`` (``rewardlab export`` and ``rewardlab train``): a generated model card, then
huggingface_hub's own upload (``HfApi.create_repo`` + ``HfApi.upload_folder``).

:func:`model_card` writes the card from what the run left: the model's ``rewardlab.json`` (backbone, scoring
contract, training-data fingerprint, normalisation) and, when the model sits in a training run directory,
``train_summary.json`` (loss, steps, data read, held-out metrics) and ``metrics.jsonl`` (the last training loss).
It says how to load the model in plain transformers (with the contract's exact inputs), TRL and vLLM.

:func:`push_to_hub` is the only code here that talks to the network. It cannot run in this project's tests (no
hub): they replace ``HfApi`` (the network boundary) with a recorder and check what would be uploaded;
:func:`check_can_push` refuses before any work when no token is set or the hub is switched off
(``HF_HUB_OFFLINE``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from rewardlab.core.errors import RewardlabError

CARD_FILE = "README.md"


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _last_train_loss(run_dir: Path) -> tuple[int, float] | None:
    """``(step, loss)`` of the last training row of ``metrics.jsonl`` (rows with ``loss``), else None."""
    try:
        lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row.get("loss"), (int, float)) and "step" in row:
            return int(row["step"]), float(row["loss"])
    return None


def _fmt(x, spec: str = ".4f") -> str:
    return format(x, spec) if isinstance(x, (int, float)) else "n/a"


def model_card(model_dir: str | Path, repo_id: str, run_dir: str | Path | None = None) -> str:
    """The README.md for ``model_dir`` pushed as ``repo_id`` (front matter, training, held-out metrics, the scoring
    contract, how to load it). ``run_dir``: the training run it came from (default: ``model_dir``'s parent, as
    ``runs/rm`` for ``runs/rm/model``); a model outside a run directory gets the parts its ``rewardlab.json`` holds."""
    model_dir = Path(model_dir)
    spec = _read_json(model_dir / "rewardlab.json")
    if spec is None:
        raise RewardlabError(f"{model_dir} has no readable rewardlab.json: not a rewardlab model directory")
    run_dir = Path(run_dir) if run_dir is not None else model_dir.parent
    summary = _read_json(run_dir / "train_summary.json") or {}
    config = summary.get("config") or {}
    final = summary.get("final_eval") or {}
    data = summary.get("data") or {}
    last = _last_train_loss(run_dir)
    backbone = spec.get("backbone") or "unknown"
    base_model = f"base_model: {backbone}\n" if "/" in backbone and not Path(backbone).exists() else ""
    ci = final.get("accuracy_ci95") or [None, None]
    norm = spec.get("normalization") or {}
    lines = [
        "---",
        "library_name: transformers",
        "pipeline_tag: text-classification",
        "tags:\n- reward-model\n- rlhf\n- rewardlab",
        *([base_model.rstrip("\n")] if base_model else []),
        "---",
        "",
        f"# {repo_id}",
        "",
        f"A reward model trained with rewardlab from `{backbone}` "
        f"({spec.get('model_type', '?')}): a scalar head on the backbone, saved as a plain "
        "`AutoModelForSequenceClassification` with `num_labels=1`. Higher is better.",
        "",
        "## Training",
        "",
        f"- training data fingerprint: `{spec.get('data_fingerprint') or summary.get('data_fingerprint') or 'n/a'}`"
        " (sha256 over the training records; `rewardlab.data.fingerprint`)",
    ]
    if config:
        lines += [
            f"- data: `{config.get('data') or 'embedded synthetic'}`; {data.get('n_train', '?')} training and "
            f"{data.get('n_eval', '?')} held-out records",
            f"- loss `{config.get('loss')}`, {summary.get('steps', '?')} optimizer steps of {config.get('batch_size')} "
            f"comparisons, lr {config.get('lr')}, {config.get('epochs')} epoch(s), seed {config.get('seed')}",
        ]
    if last is not None:
        lines.append(f"- training loss at step {last[0]}: {last[1]:.4f} (mean over the last logging window)")
    lines += ["", "## Held-out metrics", ""]
    if final:
        lines += [
            "| records | pairs | pair accuracy [95% CI] | record accuracy |",
            "| --- | --- | --- | --- |",
            f"| {final.get('n_records', 'n/a')} | {final.get('n_pairs', 'n/a')} | {_fmt(final.get('accuracy'))} "
            f"[{_fmt(ci[0])}, {_fmt(ci[1])}] | {_fmt(final.get('record_accuracy'))} |",
            "",
            "Pair accuracy: the share of (chosen, rejected) pairs scored chosen > rejected, ties counting for neither; "
            "the interval is a percentile bootstrap over records. The held-out split is by prompt hash (no prompt on "
            "both sides; `split.json` in the run directory).",
        ]
    else:
        lines.append("Not recorded (the model is not in a training run directory with `train_summary.json`).")
    lines += [
        "",
        "## Scoring contract",
        "",
        "How text becomes a score (`rewardlab.json`, checked when rewardlab loads the model):",
        "",
        *(
            f"- `{k}`: `{spec.get(k)!r}`"
            for k in ("template", "pooling", "add_special_tokens", "padding_side", "max_length", "truncation")
        ),
        "- normalisation: " + (f"mean {norm.get('mean')}, std {norm.get('std')}" if norm else "none"),
        "",
        "## How to load it",
        "",
        "rewardlab (applies the contract above exactly):",
        "",
        "```python",
        "from huggingface_hub import snapshot_download",
        "from rewardlab.models.reward_model import RewardModel",
        "",
        f'rm = RewardModel.load(snapshot_download("{repo_id}"))',
        'rm.score([("What is 2 plus 3?", "It is 5."), ("What is 2 plus 3?", "It is 7.")])',
        "```",
        "",
        "Plain transformers, fed the contract's inputs (for an encoder: `input_ids` and `token_type_ids`):",
        "",
        "```python",
        "import torch",
        "from transformers import AutoModelForSequenceClassification",
        "",
        f'model = AutoModelForSequenceClassification.from_pretrained("{repo_id}")',
        'enc = rm.encoder.encode("What is 2 plus 3?", "It is 5.")',
        "reward = model(**{k: torch.tensor([v]) for k, v in enc.items()}).logits[0, 0]",
        "```",
        "",
        f'TRL: `GRPOTrainer(reward_funcs="{repo_id}", ...)` loads it with `AutoModelForSequenceClassification`; it '
        "gives this contract's reward only for a chat-template causal LM with conversational prompts within "
        "`max_length`; otherwise pass `reward_funcs=[RewardClient(url).reward_func()]` (`rewardlab serve`).",
        "",
        f'vLLM: `LLM(model="{repo_id}", runner="pooling")`, `llm.classify(TokensPrompt(prompt_token_ids=ids), '
        "pooling_params=PoolingParams(use_activation=False))` with the contract's ids (causal LMs; an encoder also "
        "needs its `token_type_ids`).",
        "",
        "Details: rewardlab's docs/model-contract.md.",
        "",
    ]
    return "\n".join(line for line in lines if line is not None).replace("\n\n\n", "\n\n")


def check_can_push(repo_id: str | None) -> None:
    """Before any work: a ``--push-to-hub`` repo id of the form ``owner/name``, a token, and a hub not switched off."""
    if not repo_id:
        return
    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise RewardlabError(f"--push-to-hub {repo_id}: expected a repo id OWNER/NAME")
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        raise RewardlabError(f"--push-to-hub {repo_id}: HF_HUB_OFFLINE is set, the hub cannot be reached")
    from huggingface_hub import get_token  # lazy: the hub client only when pushing

    if not get_token():
        raise RewardlabError(f"--push-to-hub {repo_id}: no Hugging Face token (run `hf auth login` or set HF_TOKEN)")


def push_to_hub(folder: str | Path, repo_id: str, *, run_dir: str | Path | None = None, private: bool = False) -> str:
    """Write the model card (:func:`model_card`) into ``folder`` as README.md, then create ``repo_id`` (if needed)
    and upload the folder with huggingface_hub; returns the repo's URL."""
    from huggingface_hub import HfApi  # lazy: the hub client only when pushing

    folder = Path(folder)
    (folder / CARD_FILE).write_text(model_card(folder, repo_id, run_dir), encoding="utf-8")
    api = HfApi()
    url = api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
    api.upload_folder(
        folder_path=str(folder),
        repo_id=repo_id,
        repo_type="model",
        commit_message=f"rewardlab: upload {folder.name}",
    )
    return str(url)
