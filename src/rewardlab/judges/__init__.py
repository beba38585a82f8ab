"""Generative reward models: LLM-as-a-judge, GenRM verifiers, critique-out-loud, and training a judge.

Backends (:mod:`rewardlab.judges.backends`): local transformers (:class:`HFBackend`, the embedded SmolLM2-135M-
Instruct by default), any OpenAI-compatible endpoint (:class:`OpenAIBackend`), llama.cpp (optional extra).
Judges (:mod:`rewardlab.judges.judge`) are scorers — ``score_comparisons(records, batch_size)`` — so
``rewardlab eval --judge`` benchmarks them like reward models.
"""

from rewardlab.judges.backends import Backend, BackendError, Sampling
from rewardlab.judges.factory import make_backend
from rewardlab.judges.judge import Judge, PairwiseJudge, RatingJudge, VerifierJudge
from rewardlab.judges.parsers import Parsed, get_pairwise_parser, make_rating_parser, parse_yes_no
from rewardlab.judges.position import POSITION_MODES, combine, position_summary
from rewardlab.judges.run import JudgeConfig, build_judge, judge_from_spec, parse_judge_spec, run_judge
from rewardlab.judges.templates import TEMPLATES, JudgeTemplate, load_template

__all__ = [
    "Backend",
    "BackendError",
    "Sampling",
    "make_backend",
    "Judge",
    "PairwiseJudge",
    "RatingJudge",
    "VerifierJudge",
    "Parsed",
    "get_pairwise_parser",
    "make_rating_parser",
    "parse_yes_no",
    "POSITION_MODES",
    "combine",
    "position_summary",
    "JudgeConfig",
    "build_judge",
    "judge_from_spec",
    "parse_judge_spec",
    "run_judge",
    "TEMPLATES",
    "JudgeTemplate",
    "load_template",
]


def __getattr__(name):
    if name == "HFBackend":
        from rewardlab.judges.hf import HFBackend  # lazy: import rewardlab.judges stays light

        return HFBackend
    if name == "OpenAIBackend":
        from rewardlab.judges.openai_compat import OpenAIBackend  # lazy: import rewardlab.judges stays light

        return OpenAIBackend
    if name in ("CloudRewardModel", "CritiqueJudge"):
        from rewardlab.judges import cloud  # lazy: import rewardlab.judges stays light

        return getattr(cloud, name)
    raise AttributeError(name)
