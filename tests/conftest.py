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


@pytest.fixture(params=["llama", "bert"])
def tiny_backbone(request, tiny_llama, tiny_bert):
    return {"llama": tiny_llama, "bert": tiny_bert}[request.param]


def pytest_configure(config):
    import torch

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
