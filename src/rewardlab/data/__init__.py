"""Preference data: one record type (:class:`Comparison`), readers for common formats, splits."""

from rewardlab.data.fields import ReadOptions, parse_score_weights
from rewardlab.data.formats import FORMATS
from rewardlab.data.loading import LoadResult, fingerprint, load_comparisons, split_by_prompt, write_jsonl
from rewardlab.data.record import Comparison, prompt_as_messages

__all__ = [
    "Comparison",
    "prompt_as_messages",
    "FORMATS",
    "ReadOptions",
    "parse_score_weights",
    "LoadResult",
    "fingerprint",
    "load_comparisons",
    "split_by_prompt",
    "write_jsonl",
]
