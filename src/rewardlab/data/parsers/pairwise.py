"""Two-response preference formats: TRL, Anthropic HH-RLHF, ``pairwise`` (label 1/2), HelpSteer2-Preference."""

from __future__ import annotations

from typing import Any, Callable

from rewardlab.data.fields import (
    ReadOptions,
    build_comparison,
    data_error,
    distinct,
    int_in,
    required,
    text_field,
    text_pair,
    type_name,
)
from rewardlab.data.messages import (
    checked_messages,
    hh_difference,
    hh_split,
    prompt_field,
    shared_prefix_length,
    single_assistant,
    starts_with_human,
)
from rewardlab.data.record import Comparison


def _trl_text_explicit(row: dict, location: dict) -> tuple[Any, tuple[str, str]]:
    prompt = text_field(row, location, "prompt")
    return prompt, (text_field(row, location, "chosen"), text_field(row, location, "rejected"))


def _trl_text_implicit(row: dict, location: dict) -> tuple[Any, tuple[str, str]]:
    """Implicit-prompt text: the prompt is the texts' shared beginning. HH transcripts (``Human:`` /
    ``Assistant:`` turns) split at their turns, exactly as the conversational variant splits its messages; plain
    text that shares a whole word has no boundary between prompt and answer and is refused (scoring the whole
    texts as responses would cut their differing ends off first); texts sharing no word have no prompt (``""``)."""
    chosen, rejected = text_field(row, location, "chosen"), text_field(row, location, "rejected")
    if starts_with_human(chosen) or starts_with_human(rejected):
        return _split_hh_pair(chosen, rejected, location)
    shared = shared_text_prefix(chosen, rejected)
    if shared.strip() and any(c.isspace() for c in shared.lstrip()):
        raise data_error(
            location,
            "rejected",
            f"implicit prompt: chosen and rejected share their first {len(shared)} characters "
            f"({shared[:40]!r}{'…' if len(shared) > 40 else ''}) but plain text has no boundary between prompt and "
            "answer; give the prompt in a 'prompt' column, or write the texts as '\\n\\nHuman: …\\n\\nAssistant: …' "
            "transcripts or message lists",
        )
    return "", (chosen, rejected)


def shared_text_prefix(a: str, b: str) -> str:
    """The longest common beginning of two texts (character by character)."""
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[:n]


def _split_hh_pair(chosen: Any, rejected: Any, location: dict) -> tuple[Any, tuple[str, str]]:
    """(shared prompt turns, (chosen's final answer, rejected's final answer)) of two HH transcripts; the turns
    before the final Assistant turn must be the same in both."""
    prompt, chosen_answer = hh_split(chosen, location, "chosen")
    rejected_prompt, rejected_answer = hh_split(rejected, location, "rejected")
    if rejected_prompt != prompt:
        raise data_error(
            location,
            "rejected",
            "the conversation before the final Assistant turn differs "
            f"from chosen's ({hh_difference(prompt, rejected_prompt)})",
        )
    return prompt, (chosen_answer, rejected_answer)


def _trl_conversation_explicit(row: dict, location: dict) -> tuple[Any, tuple[str, str]]:
    prompt = checked_messages(required(row, location, "prompt"), location, "prompt")
    responses = tuple(
        single_assistant(checked_messages(required(row, location, field), location, field), location, field)
        for field in ("chosen", "rejected")
    )
    return prompt, responses


def _trl_conversation_implicit(row: dict, location: dict) -> tuple[Any, tuple[str, str]]:
    chosen = checked_messages(required(row, location, "chosen"), location, "chosen")
    rejected = checked_messages(required(row, location, "rejected"), location, "rejected")
    distinct(chosen, rejected, location, "rejected")
    n = shared_prefix_length(chosen, rejected)
    if n == 0:
        raise data_error(location, "rejected", "shares no prompt messages with chosen")
    responses = (single_assistant(chosen[n:], location, "chosen"), single_assistant(rejected[n:], location, "rejected"))
    return chosen[:n], responses


_TRL_VARIANTS: dict[tuple[bool, bool], Callable[[dict, dict], tuple[Any, tuple[str, str]]]] = {
    # (conversational, explicit prompt) -> parser
    (False, True): _trl_text_explicit,
    (False, False): _trl_text_implicit,
    (True, True): _trl_conversation_explicit,
    (True, False): _trl_conversation_implicit,
}


def parse_trl(row: dict, location: dict, options: ReadOptions | None = None) -> Comparison:
    chosen = required(row, location, "chosen")
    if not isinstance(chosen, (str, list)):
        raise data_error(location, "chosen", f"expected text or a list of messages, got {type_name(chosen)}")
    variant = _TRL_VARIANTS[(isinstance(chosen, list), row.get("prompt") is not None)]
    prompt, responses = variant(row, location)
    distinct(responses[0], responses[1], location, "rejected")
    return build_comparison(row, location, prompt, responses)


def parse_hh(row: dict, location: dict, options: ReadOptions | None = None) -> Comparison:
    prompt, (chosen, rejected) = _split_hh_pair(
        required(row, location, "chosen"), required(row, location, "rejected"), location
    )
    distinct(chosen, rejected, location, "rejected")
    return build_comparison(row, location, prompt, (chosen, rejected))


_PAIRWISE_LABELS = {1: 0, 2: 1}  # label -> chosen index


def parse_pairwise(row: dict, location: dict, options: ReadOptions | None = None) -> Comparison:
    prompt = text_field(row, location, "input")
    responses = text_pair(row, location, "output_1", "output_2")
    label = int_in(row, location, "label", _PAIRWISE_LABELS, "the integer 1 or 2")
    return build_comparison(row, location, prompt, responses, _PAIRWISE_LABELS[label])


_STRENGTHS = range(-3, 4)


def parse_helpsteer2_pref(row: dict, location: dict, options: ReadOptions | None = None) -> Comparison:
    prompt = prompt_field(row, location, "prompt")
    responses = text_pair(row, location, "response_1", "response_2")
    strength = int_in(row, location, "preference_strength", _STRENGTHS, "an integer from -3 to 3")
    return build_comparison(
        row,
        location,
        prompt,
        responses,
        0 if strength <= 0 else 1,
        margin=float(abs(strength)),
        tiers=((0, 1),) if strength == 0 else None,
    )
