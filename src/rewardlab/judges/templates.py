"""Judge prompt templates: what a judge is asked, as chat messages.

A :class:`JudgeTemplate` has a ``kind`` (``pairwise``, ``single``, ``verify``, ``critique``), an optional
system message, a user message and, for chain-of-thought verification, a follow-up question asked after the
judge's rationale. Placeholders are ``{question}``, ``{answer}``, ``{answer_a}``, ``{answer_b}``; they are
replaced literally (other braces in a template or in the data are left alone, so code and JSON in
conversations are safe).

Built-in templates (:data:`TEMPLATES`):

* ``mtbench-pair`` — MT-Bench's ``pair-v2`` prompt: explain, then ``[[A]]``, ``[[B]]`` or ``[[C]]`` (tie).
* ``pair-token`` — the same task answered with one letter, ``A`` or ``B``: the token-probability mode reads
  the next-token distribution right after it, and ``rewardlab train-judge`` trains that token.
* ``pair-token-compact`` — the same question in about half the tokens (for CPU-sized training runs).
* ``mtbench-single`` — MT-Bench's ``single-v1``: explain, then a 1–10 rating as ``[[rating]]``.
* ``genrm-verify`` — GenRM's direct verifier: "Is the answer correct?" answered ``Yes`` / ``No``.
* ``genrm-cot`` — GenRM-CoT: "Let's verify step by step", then the follow-up Yes/No question.
* ``critique`` — critique-out-loud: ask for a short critique of one answer.

A custom template is a YAML or JSON file with the same fields (``kind``, ``user``, optional ``system``,
``followup``, ``assistant_prefix``, ``candidates``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from rewardlab.core.errors import RewardlabError
from rewardlab.core.settings import Sourced, read_yaml, validate
from rewardlab.data.record import Prompt, prompt_as_messages

KINDS = ("pairwise", "single", "verify", "critique")
_FIELD = re.compile(r"\{(question|answer|answer_a|answer_b)\}")


@dataclass(frozen=True)
class JudgeTemplate:
    name: str
    kind: str
    user: str
    system: str | None = None
    followup: str | None = None  # asked after a generated rationale (GenRM-CoT)
    assistant_prefix: str = ""  # text the judge's reply starts with (local backends only)
    candidates: tuple[str, ...] = field(default=())  # verdict tokens read in token-probability modes

    def __post_init__(self):
        if self.kind not in KINDS:
            raise RewardlabError(f"template {self.name!r}: kind must be one of {', '.join(KINDS)}, got {self.kind!r}")

    def messages(self, **fields: str) -> list[dict]:
        out = []
        if self.system:
            out.append({"role": "system", "content": fill(self.system, fields)})
        out.append({"role": "user", "content": fill(self.user, fields)})
        return out

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "kind": self.kind,
            "system": self.system,
            "user": self.user,
            "followup": self.followup,
            "assistant_prefix": self.assistant_prefix,
            "candidates": list(self.candidates),
        }


def fill(text: str, fields: dict) -> str:
    """Replace ``{question}``, ``{answer}``, ``{answer_a}``, ``{answer_b}`` in one pass (values are not re-scanned)."""

    def sub(m: re.Match) -> str:
        key = m.group(1)
        if key not in fields:
            raise RewardlabError(f"template placeholder {{{key}}} has no value")
        return str(fields[key])

    return _FIELD.sub(sub, text)


def render_question(prompt: Prompt) -> str:
    """The conversation a judge sees: one user turn as its text, several turns as ``User:`` / ``Assistant:`` lines."""
    if isinstance(prompt, str):
        return prompt
    messages = prompt_as_messages(prompt)
    if len(messages) == 1 and messages[0]["role"] == "user":
        return messages[0]["content"]
    return "\n\n".join(f"{m['role'].capitalize()}: {m['content']}" for m in messages)


_MTBENCH_PAIR_SYSTEM = (
    "Please act as an impartial judge and evaluate the quality of the responses provided by two AI assistants to "
    "the user question displayed below. You should choose the assistant that follows the user's instructions and "
    "answers the user's question better. Your evaluation should consider factors such as the helpfulness, "
    "relevance, accuracy, depth, creativity, and level of detail of their responses. Begin your evaluation by "
    "comparing the two responses and provide a short explanation. Avoid any position biases and ensure that the "
    "order in which the responses were presented does not influence your decision. Do not allow the length of the "
    "responses to influence your evaluation. Do not favor certain names of the assistants. Be as objective as "
    "possible. After providing your explanation, output your final verdict by strictly following this format: "
    '"[[A]]" if assistant A is better, "[[B]]" if assistant B is better, and "[[C]]" for a tie.'
)
_PAIR_USER = (
    "[User Question]\n{question}\n\n[The Start of Assistant A's Answer]\n{answer_a}\n[The End of Assistant A's "
    "Answer]\n\n[The Start of Assistant B's Answer]\n{answer_b}\n[The End of Assistant B's Answer]"
)
_SINGLE_SYSTEM = (
    "Please act as an impartial judge and evaluate the quality of the response provided by an AI assistant to the "
    "user question displayed below. Your evaluation should consider factors such as the helpfulness, relevance, "
    "accuracy, depth, creativity, and level of detail of the response. Begin your evaluation by providing a short "
    "explanation. Be as objective as possible. After providing your explanation, you must rate the response on a "
    'scale of 1 to 10 by strictly following this format: "[[rating]]", for example: "Rating: [[5]]".'
)
_SINGLE_USER = "[Question]\n{question}\n\n[The Start of Assistant's Answer]\n{answer}\n[The End of Assistant's Answer]"
_YES_NO = "Is the answer correct and helpful? Answer with one word: Yes or No."

TEMPLATES: dict[str, JudgeTemplate] = {
    "mtbench-pair": JudgeTemplate("mtbench-pair", "pairwise", _PAIR_USER, system=_MTBENCH_PAIR_SYSTEM),
    "pair-token": JudgeTemplate(
        "pair-token",
        "pairwise",
        _PAIR_USER + "\n\nWhich assistant's answer is better: more helpful, honest and harmless? "
        "Answer with one letter: A or B.",
        system="You are an impartial judge of AI assistants' answers.",
        candidates=("A", "B"),
    ),
    "pair-token-compact": JudgeTemplate(
        "pair-token-compact",
        "pairwise",
        "Conversation:\n{question}\n\nAnswer A:\n{answer_a}\n\nAnswer B:\n{answer_b}\n\n"
        "Which answer is better (more helpful and harmless)? Reply A or B.",
        system="You are a judge.",
        candidates=("A", "B"),
    ),
    "mtbench-single": JudgeTemplate("mtbench-single", "single", _SINGLE_USER, system=_SINGLE_SYSTEM),
    "genrm-verify": JudgeTemplate(
        "genrm-verify",
        "verify",
        _SINGLE_USER + "\n\n" + _YES_NO,
        system="You are a careful verifier of AI assistants' answers.",
        candidates=("Yes", "No"),
    ),
    "genrm-cot": JudgeTemplate(
        "genrm-cot",
        "verify",
        _SINGLE_USER + "\n\nLet's verify step by step whether the answer is correct and helpful.",
        system="You are a careful verifier of AI assistants' answers.",
        followup=_YES_NO,
        candidates=("Yes", "No"),
    ),
    "critique": JudgeTemplate(
        "critique",
        "critique",
        _SINGLE_USER + "\n\nWrite a short critique of the answer: its strengths and its problems (helpfulness, "
        "correctness, harmlessness).",
        system="You are a careful critic of AI assistants' answers.",
    ),
}

DEFAULT_TEMPLATE = {
    "pairwise": "mtbench-pair",
    "logprob": "pair-token",
    "rating": "mtbench-single",
    "verifier": "genrm-verify",
    "verifier-cot": "genrm-cot",
    "critique": "critique",
}


def load_template(spec: "str | JudgeTemplate") -> JudgeTemplate:
    """A built-in name (:data:`TEMPLATES`) or a YAML / JSON file with the template's fields."""
    if isinstance(spec, JudgeTemplate):
        return spec
    if spec in TEMPLATES:
        return TEMPLATES[spec]
    path = Path(spec)
    if not path.exists():
        raise RewardlabError(f"unknown judge template {spec!r}: not a file and not one of {', '.join(TEMPLATES)}")
    layer = read_yaml(JudgeTemplate, path)  # YAML or JSON; unknown fields refused with a did-you-mean
    if "user" not in layer.values or "kind" not in layer.values:
        raise RewardlabError(f"{path}: a judge template needs at least 'kind' and 'user'")
    if layer.values.get("candidates") is None:
        layer = Sourced({k: v for k, v in layer.values.items() if k != "candidates"}, layer.sources)
    return validate(JudgeTemplate, Sourced({"name": path.stem}, {"name": f"the name of {path}"}), layer)
