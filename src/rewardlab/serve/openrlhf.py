"""Turning OpenRLHF's remote-reward queries back into (conversation, response) pairs.

OpenRLHF's PPO/GRPO workers POST ``{"query": [...], "prompts": [...], "labels": [...]}`` to ``--remote_rm_url``
and read ``"rewards"`` (newer versions read ``"scores"`` first, for dynamic filtering) from the answer. Each
query is the *full decoded rollout*: the prompt as the policy saw it (already rendered with the **policy's**
chat template) followed by the generated response, decoded with ``skip_special_tokens=False`` (so it usually
ends with the policy's end-of-turn token, e.g. ``<|im_end|>``). ``prompts`` (sent by recent versions) holds
the same prompt string, so it is a prefix of the query. Older clients send ``query`` only.

A rewardlab model scores (prompt, response) under *its own* contract (its template, its BOS/EOS, its
truncation), so the server splits each query and re-renders it:

1. **Prompt and response.** When ``prompts[i]`` is given and the query starts with it, the response is the
   rest of the query. Otherwise the query is cut after the *last* assistant-turn opener of a known format:
   ChatML ``<|im_start|>assistant\\n``, Llama 3 ``<|start_header_id|>assistant<|end_header_id|>\\n\\n``,
   Gemma ``<start_of_turn>model\\n``, Mistral/Llama 2 ``[/INST]``, Anthropic HH ``\\n\\nAssistant:``. A query
   in none of these forms cannot be split and is answered 422 (send ``prompts``, or use ``/v1/score``).
2. **Prompt to messages.** A prompt in ChatML, Llama 3, Gemma or HH form is parsed back into its turns
   (system / user / assistant messages; the trailing generation prompt is dropped). Anything else becomes
   one user message holding the prompt text (leading BOS-like tokens removed).
3. **Response clean-up.** Trailing end-of-turn / end-of-text / padding tokens (``<|im_end|>``, ``<|eot_id|>``,
   ``<|endoftext|>``, ``</s>``, ``<end_of_turn>``, ``<|end_of_text|>`` and the model's own EOS and pad
   tokens) and the white space *after* each of them are removed; the reward model's template adds its own.
   Nothing else is: white space the policy wrote at the response's start or end (``" Paris."``,
   ``"Paris.\n"``) stays, so the response is the same text ``/v1/score`` would be sent. The formats whose
   opener is followed by one separating space (``[/INST] ``, ``\n\nAssistant: ``) count that one space as part
   of the opener.

The (messages, response) pair is then scored exactly like ``/v1/score``, ``RewardClient.score`` and offline
``RewardModel.score`` score that response text (``tests/test_serve.py`` sends the same texts to all of them).
"""

from __future__ import annotations

import re

END_TOKENS = (
    "<|im_end|>",
    "<|eot_id|>",
    "<|endoftext|>",
    "</s>",
    "<end_of_turn>",
    "<|end_of_text|>",
    "<eos>",
    "<|end|>",
    "<pad>",
    "[PAD]",
)
BOS_TOKENS = ("<|begin_of_text|>", "<s>", "<bos>", "<|startoftext|>")

# Where the last assistant turn starts, per format: (pattern, format name).
_OPENERS = [
    (re.compile(r"<\|im_start\|>assistant\n"), "chatml"),
    (re.compile(r"<\|start_header_id\|>assistant<\|end_header_id\|>\n\n"), "llama3"),
    (re.compile(r"<start_of_turn>model\n"), "gemma"),
    (re.compile(r"\[/INST\] ?"), "inst"),
    (re.compile(r"\n\nAssistant: ?"), "hh"),
]
_CHATML_TURN = re.compile(r"<\|im_start\|>(\w+)\n(.*?)<\|im_end\|>", re.S)
_LLAMA3_TURN = re.compile(r"<\|start_header_id\|>(\w+)<\|end_header_id\|>\n\n(.*?)<\|eot_id\|>", re.S)
_GEMMA_TURN = re.compile(r"<start_of_turn>(\w+)\n(.*?)<end_of_turn>", re.S)
_HH_TURN = re.compile(r"(?:^|\n\n)(Human|Assistant):")


class SplitError(ValueError):
    """A query that cannot be split into prompt and response."""


def _strip_tokens(text: str, tokens: tuple[str, ...], at_end: bool) -> str:
    """``text`` without the (non-empty) ``tokens`` at its start, or at its end when ``at_end``, repeated while one
    is there; the white space between each removed token and the text's edge goes with it (after a token at
    the end, before one at the start); white space on the text's side of the token stays."""
    changed = True
    while changed:
        changed = False
        stripped = text.rstrip() if at_end else text.lstrip()
        for t in tokens:
            if stripped.endswith(t) if at_end else stripped.startswith(t):
                text, changed = (stripped[: -len(t)] if at_end else stripped[len(t) :]), True
    return text


def _strip_bos(text: str) -> str:
    return _strip_tokens(text, BOS_TOKENS, at_end=False)


def clean_response(text: str, extra_end_tokens: tuple[str, ...] = ()) -> str:
    ends = tuple(t for t in (*END_TOKENS, *extra_end_tokens) if t)
    return _strip_tokens(text, ends, at_end=True)


def _turns(regex, text: str, roles: dict | None = None, trim: bool = True) -> list[dict] | None:
    """The turns of a rendered prompt; ``trim``: the format's template trims each message (Llama 3, Gemma), so
    its white space cannot be recovered; ChatML writes a message as it is, so it is read back as it is."""
    found = regex.findall(text)
    if not found:
        return None
    return [{"role": (roles or {}).get(r, r), "content": c.strip() if trim else c} for r, c in found]


def _hh_messages(text: str) -> list[dict] | None:
    marks = list(_HH_TURN.finditer(text))
    if not marks or marks[0].start() > 0 and text[: marks[0].start()].strip():
        return None
    out = []
    for m, nxt in zip(marks, marks[1:] + [None]):
        content = text[m.end() : nxt.start() if nxt else len(text)].strip()
        role = "user" if m.group(1) == "Human" else "assistant"
        out.append({"role": role, "content": content})
    if out and out[-1]["role"] == "assistant" and not out[-1]["content"]:
        out.pop()  # the generation prompt "\n\nAssistant:"
    return out or None


def prompt_to_messages(prompt: str) -> tuple[dict, ...]:
    """A rendered prompt string back into chat messages (see the module docstring, step 2)."""
    text = _strip_bos(prompt)
    for regex, roles, trim in (
        (_CHATML_TURN, None, False),
        (_LLAMA3_TURN, None, True),
        (_GEMMA_TURN, {"model": "assistant"}, True),
    ):
        msgs = _turns(regex, text, roles, trim)
        if msgs:
            return tuple(msgs)
    msgs = _hh_messages(text)
    if msgs:
        return tuple(msgs)
    inst = re.fullmatch(r"\s*\[INST\](.*)\[/INST\]\s*", text, re.S)
    if inst:
        return ({"role": "user", "content": inst.group(1).strip()},)
    return ({"role": "user", "content": text.strip()},)


def split_query(query: str, prompt: str | None = None, extra_end_tokens: tuple[str, ...] = ()) -> tuple[tuple, str]:
    """One OpenRLHF query (and optionally its prompt) -> (messages, response)."""
    if prompt:
        if query.startswith(prompt):
            head, tail = prompt, query[len(prompt) :]
        elif _strip_bos(query).startswith(_strip_bos(prompt)):
            q = _strip_bos(query)
            head, tail = _strip_bos(prompt), q[len(_strip_bos(prompt)) :]
        else:
            raise SplitError("the query does not start with its prompt")
    else:
        best = None
        for regex, _name in _OPENERS:
            for m in regex.finditer(query):
                if best is None or m.end() > best.end():
                    best = m
        if best is None:
            raise SplitError(
                "cannot find where the response starts (no ChatML, Llama 3, Gemma, [/INST] or "
                "'\\n\\nAssistant:' turn marker); send 'prompts' alongside 'query', or use /v1/score"
            )
        head, tail = query[: best.end()], query[best.end() :]
    response = clean_response(tail, extra_end_tokens)
    return prompt_to_messages(head), response
