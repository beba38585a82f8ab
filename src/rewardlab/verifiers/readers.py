"""Verifier data files → :class:`~rewardlab.verifiers.records.Problem` groups.

Formats (:data:`VERIFIER_FORMATS`, detected from the first row's fields unless ``format`` is given):

* ``trl`` — TRL "stepwise supervision" rows ``{"prompt": str, "completions": [step, …], "labels": [label, …]}``;
  labels are kept as they are (a 0.7 stays 0.7); the outcome is "every step correct" when every step is labelled.
* ``processbench`` — ``{"id", "problem", "steps": [str], "label": int, "final_answer_correct"?}``: steps before
  ``label`` correct (1), step ``label`` wrong (0), later steps unlabelled (None); ``label`` −1: all correct. The
  outcome is ``final_answer_correct`` when given, else ``label == -1``.
* ``gsm8k_solutions`` — the GSM8K model-solutions file: ``{"question", "ground_truth"?, <name>: {"solution":
  str, "is_correct": bool}, …}``; each solution is one step per non-empty line (the last ``A: <answer>``), the
  outcome is ``is_correct``, no step labels; the solutions of a row are one problem (ordered by name).
* ``math_shepherd`` — ``{"input": "… Step 1: … ки\\nStep 2: … ки", "label": "… Step 1: … +\\nStep 2: … -"}``: the
  tag (``ки``) ends each step; ``label`` is the same text with ``+`` / ``-`` in place of each tag. The prompt is
  the text before ``Step 1:``.

The label scheme of a file (``binary`` / ``ternary`` / ``soft``) is ``scheme`` when given, else decided from
all its labels: all in {0, 1} → binary, any negative → ternary, otherwise soft. A bad row (a label count that is
not the step count, a label outside the scheme, an empty step, a problem with no solution) raises
:class:`~rewardlab.core.errors.DataError` naming the file, line (or row) and field; with ``skip_invalid`` it is
skipped and counted in :attr:`VerifierData.skipped`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from rewardlab.core.errors import DataError
from rewardlab.data.readers import iter_rows
from rewardlab.verifiers.records import (
    SCHEMES,
    Problem,
    Solution,
    group_by_prompt,
    label_error,
    split_lines,
    step_is_correct,
)

SHEPHERD_TAG = "ки"


@dataclass
class RawSolution:
    """A parsed row before the file's label scheme is known."""

    loc: dict
    prompt: str
    steps: list[str]
    labels: list | None
    outcome: float | None
    id: str
    group: str | None = None  # rows of one gsm8k_solutions line share it
    reference: str | None = None
    labels_field: str = "labels"


@dataclass
class VerifierData:
    problems: list[Problem]
    format: str
    scheme: str
    rows: int  # rows read
    skipped: list[str] = field(default_factory=list)  # one message per skipped row (skip_invalid)

    @property
    def solutions(self) -> list[Solution]:
        return [s for p in self.problems for s in p.solutions]


def _fail(loc: dict, field_name: str, msg: str):
    raise DataError(msg, path=loc["path"], line=loc.get("line"), row=loc.get("row"), field=field_name)


def _row_id(loc: dict, row: dict) -> str:
    rid = row.get("id")
    if isinstance(rid, (str, int)) and not isinstance(rid, bool):
        return str(rid)
    return f"{loc['path'].rsplit('/', 1)[-1]}:{loc.get('line', loc.get('row'))}"


def _text(loc, row, name) -> str:
    v = row.get(name)
    if not isinstance(v, str) or not v.strip():
        _fail(loc, name, f"expected non-empty text, got {type(v).__name__ if v is not None else 'nothing'}")
    return v


def _steps(loc, row, name) -> list[str]:
    v = row.get(name)
    if not isinstance(v, list) or not v:
        _fail(loc, name, "expected a non-empty list of steps")
    for i, s in enumerate(v):
        if not isinstance(s, str) or not s.strip():
            _fail(loc, f"{name}[{i}]", "empty step (every step needs text)")
    return list(v)


def parse_trl(loc: dict, row: dict) -> list[RawSolution]:
    prompt, steps = _text(loc, row, "prompt"), _steps(loc, row, "completions")
    labels = row.get("labels")
    if not isinstance(labels, list):
        _fail(loc, "labels", "expected a list of step labels")
    if len(labels) != len(steps):
        _fail(loc, "labels", f"{len(labels)} labels for {len(steps)} steps (completions)")
    return [RawSolution(loc, prompt, steps, list(labels), None, _row_id(loc, row))]  # outcome: from the labels


def parse_processbench(loc: dict, row: dict) -> list[RawSolution]:
    prompt, steps = _text(loc, row, "problem"), _steps(loc, row, "steps")
    label = row.get("label")
    if isinstance(label, bool) or not isinstance(label, int) or not -1 <= label < len(steps):
        _fail(loc, "label", f"expected -1 or a step index 0..{len(steps) - 1}, got {label!r}")
    labels = [1] * len(steps) if label == -1 else [1] * label + [0] + [None] * (len(steps) - label - 1)
    final = row.get("final_answer_correct")
    if final is not None and not isinstance(final, bool):
        _fail(loc, "final_answer_correct", f"expected true or false, got {final!r}")
    outcome = float(final) if final is not None else float(label == -1)
    return [RawSolution(loc, prompt, steps, labels, outcome, _row_id(loc, row), labels_field="label")]


def parse_gsm8k_solutions(loc: dict, row: dict) -> list[RawSolution]:
    prompt = _text(loc, row, "question")
    truth = row.get("ground_truth")
    reference = split_lines(truth)[-1] if isinstance(truth, str) and truth.strip() else None
    out = []
    for name in sorted(k for k, v in row.items() if isinstance(v, dict)):
        sol = row[name]
        text = sol.get("solution")
        if not isinstance(text, str) or not split_lines(text):
            _fail(loc, f"{name}.solution", "expected non-empty solution text")
        if not isinstance(sol.get("is_correct"), bool):
            _fail(loc, f"{name}.is_correct", f"expected true or false, got {sol.get('is_correct')!r}")
        rid = f"{_row_id(loc, row)}/{name}"
        out.append(
            RawSolution(
                loc, prompt, split_lines(text), None, float(sol["is_correct"]), rid, _row_id(loc, row), reference
            )
        )
    if not out:
        _fail(loc, "solutions", "a problem with no solution (no field holds {solution, is_correct})")
    return out


def parse_math_shepherd(loc: dict, row: dict) -> list[RawSolution]:
    text, label_text = _text(loc, row, "input"), _text(loc, row, "label")
    parts = text.split(SHEPHERD_TAG)
    if len(parts) < 2:
        _fail(loc, "input", f"no step tag {SHEPHERD_TAG!r} in the text")
    if parts[-1].strip():
        _fail(loc, "input", f"text after the last step tag {SHEPHERD_TAG!r} (every step must end with it)")
    pos, signs = 0, []
    for i, part in enumerate(parts[:-1]):
        if label_text[pos : pos + len(part)] != part:
            _fail(loc, "label", f"does not repeat the input's text before tag {i + 1}")
        sign = label_text[pos + len(part) : pos + len(part) + 1]
        if sign not in ("+", "-"):
            _fail(loc, "label", f"expected '+' or '-' in place of tag {i + 1}, got {sign!r}")
        signs.append(1 if sign == "+" else 0)
        pos += len(part) + 1
    head = parts[0]
    cut = head.find("Step 1:")
    if cut <= 0 or not head[:cut].strip():
        _fail(loc, "input", "no problem text before 'Step 1:'")
    prompt, first = head[:cut].strip(), head[cut:]
    steps = [s.strip() for s in [first, *parts[1:-1]]]
    for i, s in enumerate(steps):
        if not s:
            _fail(loc, "input", f"empty step {i + 1}")
    outcome = float(all(signs))
    return [RawSolution(loc, prompt, steps, signs, outcome, _row_id(loc, row), labels_field="label")]


@dataclass(frozen=True)
class VerifierFormat:
    parse: Callable[[dict, dict], list[RawSolution]]
    detect: Callable[[dict], bool]
    columns: str


VERIFIER_FORMATS: dict[str, VerifierFormat] = {
    "trl": VerifierFormat(
        parse_trl, lambda r: "completions" in r and "labels" in r, "prompt, completions: [steps], labels: [...]"
    ),
    "processbench": VerifierFormat(
        parse_processbench, lambda r: "problem" in r and "steps" in r and "label" in r, "problem, steps, label"
    ),
    "gsm8k_solutions": VerifierFormat(
        parse_gsm8k_solutions,
        lambda r: "question" in r and any(isinstance(v, dict) and "is_correct" in v for v in r.values()),
        "question, ground_truth, <name>: {solution, is_correct}",
    ),
    "math_shepherd": VerifierFormat(
        parse_math_shepherd,
        lambda r: "input" in r and isinstance(r.get("label"), str) and SHEPHERD_TAG in str(r.get("input")),
        f"input (steps ending in {SHEPHERD_TAG}), label (+/- in place of each tag)",
    ),
}


def detect_format(loc: dict, row: dict) -> str:
    for name, spec in VERIFIER_FORMATS.items():
        if spec.detect(row):
            return name
    known = "; ".join(f"{n} ({s.columns})" for n, s in VERIFIER_FORMATS.items())
    _fail(loc, None, f"not a verifier format (fields: {', '.join(sorted(row)) or 'none'}); expected one of: {known}")


def decide_scheme(raws: list[RawSolution]) -> str:
    """binary when every label is 0/1 (or a bool), ternary when any is negative, soft otherwise.

    >>> r = lambda labels: RawSolution({}, "p", ["s"] * len(labels), labels, None, "x")
    >>> decide_scheme([r([True, False])]), decide_scheme([r([1, -1])]), decide_scheme([r([0.7, 1])])
    ('binary', 'ternary', 'soft')
    """
    values = [v for r in raws for v in (r.labels or []) if isinstance(v, (int, float)) and v is not None]
    if all(v in (0, 1) for v in values):
        return "binary"
    if any(v < 0 for v in values):
        return "ternary"
    return "soft"


def read_verifier_data(
    path: str,
    format: str = "auto",
    scheme: str | None = None,
    skip_invalid: bool = False,
    limit: int | None = None,
) -> VerifierData:
    """Read ``path`` (any file :func:`rewardlab.data.readers.iter_rows` reads) as verifier solutions grouped by
    problem. ``limit``: rows read."""
    if format != "auto" and format not in VERIFIER_FORMATS:
        raise DataError(f"unknown verifier format {format!r} (one of auto, {', '.join(VERIFIER_FORMATS)})", path=path)
    if scheme is not None and scheme not in SCHEMES:
        raise DataError(f"unknown label scheme {scheme!r} (one of {', '.join(SCHEMES)})", path=path)
    skipped: list[str] = []
    raws: list[RawSolution] = []
    fmt = None if format == "auto" else format
    n = 0
    for loc, row in iter_rows(path, on_error=(lambda e: skipped.append(str(e))) if skip_invalid else None):
        if limit is not None and n >= limit:
            break
        n += 1
        try:
            if fmt is None:
                fmt = detect_format(loc, row)
            raws += VERIFIER_FORMATS[fmt].parse(loc, row)
        except DataError as e:
            if not skip_invalid:
                raise
            skipped.append(str(e))
    chosen = scheme or decide_scheme(raws)
    solutions, kept_groups = [], {}
    for r in raws:
        if r.labels is not None:
            bad = next(((i, p) for i, v in enumerate(r.labels) if (p := label_error(v, chosen))), None)
            if bad is not None:
                try:
                    _fail(r.loc, f"{r.labels_field}[{bad[0]}]", bad[1])
                except DataError as e:
                    if not skip_invalid:
                        raise
                    skipped.append(str(e))
                    continue
        labels = None if r.labels is None else tuple(None if v is None else float(v) for v in r.labels)
        outcome = r.outcome
        if outcome is None and labels and all(v is not None for v in labels):  # trl: every step correct
            outcome = float(all(step_is_correct(v, chosen) for v in labels))
        sol = Solution(r.prompt, tuple(r.steps), outcome, labels, chosen, r.id, {"reference": r.reference})
        solutions.append(sol)
        if r.group is not None:
            kept_groups.setdefault(r.group, []).append(sol)
    if not solutions:
        raise DataError(f"no valid solutions ({len(skipped)} rows skipped)", path=path)
    if kept_groups:  # gsm8k_solutions: one problem per row, even when two rows repeat a question
        problems = [Problem(g, sols[0].prompt, sols, sols[0].meta.get("reference")) for g, sols in kept_groups.items()]
    else:
        problems = group_by_prompt(solutions)
    return VerifierData(problems, fmt, chosen, n, skipped)
