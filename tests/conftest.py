import os

import pytest

import rewardlab  # noqa: F401  (sets OMP_WAIT_POLICY before torch loads)

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never touch a hub

from transformers.utils import logging as hf_logging  # noqa: E402

hf_logging.set_verbosity_error()
hf_logging.disable_progress_bar()


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory):
    from rewardlab.models.tiny import make_tiny_causal_lm

    return str(make_tiny_causal_lm(tmp_path_factory.mktemp("tiny-llama")))


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory):
    from rewardlab.models.tiny import make_tiny_encoder

    return str(make_tiny_encoder(tmp_path_factory.mktemp("tiny-bert")))


@pytest.fixture(scope="session")
def tiny_qwen2(tmp_path_factory):
    from rewardlab.models.tiny import make_tiny_decoder

    return str(make_tiny_decoder(tmp_path_factory.mktemp("tiny-qwen2"), "qwen2"))


@pytest.fixture
def fresh_accelerate_state():
    """Accelerate keeps one process-wide ``AcceleratorState``: a TRL trainer built after another test set it with a
    different mixed precision (TRL's configs default to bf16) raises "AcceleratorState has already been initialized".
    Tests that build a TRL trainer start and end with a fresh one."""
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)
    yield
    AcceleratorState._reset_state(reset_partial_state=True)


@pytest.fixture(params=["llama", "bert"])
def tiny_backbone(request, tiny_llama, tiny_bert):
    return {"llama": tiny_llama, "bert": tiny_bert}[request.param]


def pytest_configure(config):
    import torch

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
