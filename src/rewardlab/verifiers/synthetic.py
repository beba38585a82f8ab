"""The embedded multi-step task: arithmetic chains whose step correctness a program decides.

A problem: "Start with 7. Add 5, then multiply by 3, then subtract 4. What is the result?" A solution is one
step per line, ``7 + 5 = 12`` / ``12 * 3 = 36`` / ``36 - 4 = 32``, and the answer line ``A: 32``. A wrong
solution has an error injected at a known step — an arithmetic slip (its result off by 1 to 3) or a copy slip (it
starts from the previous result off by 1 to 3); the later steps compute correctly from the wrong value, so the
answer is wrong too. A step is labelled correct (1) when its result is the true running
value (Math-Shepherd's sense: the right answer is still reachable), so every step from the first error on is 0.

:func:`step_labels` and :func:`check` are the programs that decide: ``check(prompt, response)`` → 1.0 when the
response's ``A:`` line is the true result, 0.0 when it is another number, None when it cannot be decided (the
prompt is not one of these problems, or the response has no ``A: <integer>`` line) — never scored 0.
"""

from __future__ import annotations

import random
import re

from rewardlab.verifiers.records import Problem, Solution, split_lines

OPS = {
    "add": ("+", lambda a, b: a + b),
    "subtract": ("-", lambda a, b: a - b),
    "multiply by": ("*", lambda a, b: a * b),
}
_PROMPT = re.compile(r"^Start with (-?\d+)\. (.+)\. What is the result\?$")
_OP = re.compile(r"^(add|subtract|multiply by) (\d+)$")
_STEP = re.compile(r"^(-?\d+) ([-+*]) (\d+) = (-?\d+)$")
ANSWER = re.compile(r"^A: (-?\d+)$")


def make_prompt(start: int, ops: list[tuple[str, int]]) -> str:
    """The problem text.

    >>> make_prompt(7, [("add", 5), ("multiply by", 3)])
    'Start with 7. Add 5, then multiply by 3. What is the result?'
    """
    text = ", then ".join(f"{name} {v}" for name, v in ops)
    return f"Start with {start}. {text[0].upper()}{text[1:]}. What is the result?"


def parse_prompt(prompt: str) -> tuple[int, list[tuple[str, int]]] | None:
    m = _PROMPT.match(prompt.strip())
    if not m:
        return None
    ops = []
    for part in m.group(2).split(", then "):
        o = _OP.match(part.strip().lower())
        if not o:
            return None
        ops.append((o.group(1), int(o.group(2))))
    return int(m.group(1)), ops


def running_values(start: int, ops) -> list[int]:
    """The true value after each operation.

    >>> running_values(7, [("add", 5), ("multiply by", 3)])
    [12, 36]
    """
    out, v = [], start
    for name, x in ops:
        v = OPS[name][1](v, x)
        out.append(v)
    return out


def solution_steps(
    start: int, ops, error_at: int | None = None, offset: int = 1, kind: str = "arithmetic"
) -> list[str]:
    """The steps, with an error at step ``error_at`` (0-based): ``arithmetic`` — its result off by ``offset``;
    ``copy`` — it starts from the previous result off by ``offset`` (a value copied wrongly) and computes
    correctly from there. Either way the later steps compute correctly from the wrong value.

    >>> solution_steps(7, [("add", 5), ("multiply by", 3)], error_at=0, offset=2)
    ['7 + 5 = 14', '14 * 3 = 42', 'A: 42']
    >>> solution_steps(7, [("add", 5), ("multiply by", 3)], error_at=1, offset=-1, kind="copy")
    ['7 + 5 = 12', '11 * 3 = 33', 'A: 33']
    """
    steps, v = [], start
    for k, (name, x) in enumerate(ops):
        sym, f = OPS[name]
        if k == error_at and kind == "copy":
            v += offset
        r = f(v, x) + (offset if k == error_at and kind == "arithmetic" else 0)
        steps.append(f"{v} {sym} {x} = {r}")
        v = r
    return steps + [f"A: {v}"]


def step_labels(prompt: str, steps) -> list[int | None]:
    """1 when a step's result is the true running value (the answer line: the true result), else 0; None for a
    step the program cannot read.

    >>> p = make_prompt(7, [("add", 5), ("multiply by", 3)])
    >>> step_labels(p, ['7 + 5 = 12', '12 * 3 = 37', 'A: 37']), step_labels(p, ['7 + 5 = 12', 'hm', 'A: 36'])
    ([1, 0, 0], [1, None, 1])
    """
    parsed = parse_prompt(prompt)
    if parsed is None:
        return [None] * len(steps)
    truth = running_values(*parsed)
    out: list[int | None] = []
    for k, s in enumerate(steps):
        m, a = _STEP.match(s.strip()), ANSWER.match(s.strip())
        if m and k < len(truth):
            out.append(int(int(m.group(4)) == truth[k]))
        elif a:
            out.append(int(int(a.group(1)) == truth[-1]))
        else:
            out.append(None)
    return out


def check(prompt: str, response: str) -> float | None:
    """Gold for best-of-N: 1.0 / 0.0 by the ``A:`` line against the true result; None when undecidable.

    >>> p = make_prompt(2, [("add", 3)])
    >>> check(p, "2 + 3 = 5\\nA: 5"), check(p, "2 + 3 = 6\\nA: 6"), check(p, "five"), check("Hi?", "A: 5")
    (1.0, 0.0, None, None)
    """
    parsed = parse_prompt(prompt)
    if parsed is None:
        return None
    answers = [m.group(1) for line in split_lines(response) if (m := ANSWER.match(line))]
    if not answers:
        return None
    return float(int(answers[-1]) == running_values(*parsed)[-1])


def make_problems(
    n: int,
    seed: int = 0,
    per_problem: int = 4,
    p_correct: float = 0.4,
    operations=("add", "subtract"),
    error_kinds=("arithmetic", "copy"),
) -> list[Problem]:
    """``n`` problems of 2–4 ``operations`` (default add and subtract: a small model can learn the facts; add
    ``"multiply by"`` for a harder task), each with ``per_problem`` solutions: correct with probability
    ``p_correct``, else an error of one of ``error_kinds`` (:func:`solution_steps`; a copy error can be found by
    comparing a step's first number with the previous result, an arithmetic slip only by doing the sum) at a
    uniformly chosen operation step (offset ±1..3). Labels by :func:`step_labels`
    (so the generator cannot disagree with the checker); outcome by :func:`check`."""
    rng = random.Random(seed)
    problems = []
    for i in range(n):
        start = rng.randint(1, 9)
        ops = [
            (name, rng.randint(1, 9 if name != "multiply by" else 4))
            for name in rng.choices(list(OPS), k=rng.randint(2, 4))
        ]
        prompt = make_prompt(start, ops)
        sols = []
        for j in range(per_problem):
            err = None if rng.random() < p_correct else rng.randrange(len(ops))
            offset = rng.choice([-3, -2, -1, 1, 2, 3])
            steps = solution_steps(start, ops, err, offset, rng.choice(error_kinds))
            labels = tuple(float(v) for v in step_labels(prompt, steps))
            sols.append(
                Solution(prompt, tuple(steps), check(prompt, "\n".join(steps)), labels, "binary", f"arith-{i}/{j}")
            )
        problems.append(Problem(f"arith-{i}", prompt, sols, str(running_values(start, ops)[-1])))
    return problems
