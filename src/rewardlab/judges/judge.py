"""Judges: a backend + a template + a parser (+ a position rule) that score comparisons.

Every judge is a *scorer*: ``score_comparisons(records, batch_size)`` returns one reward per response, so
``rewardlab eval`` benchmarks a judge exactly as it benchmarks a reward model. The details of the last call
(raw outputs, per-order verdicts, parse failures) are in ``judge.last_rows`` and its counts in
``judge.last_summary``; :meth:`Judge.judge_records` returns the rows directly.

* :class:`PairwiseJudge` — ``mode="generate"``: MT-Bench-style verdicts ``[[A]]``/``[[B]]``/``[[C]]`` parsed
  from generated text; ``mode="logprob"``: P(A) = softmax over the A and B verdict tokens' logits. Position
  handling: :mod:`rewardlab.judges.position`. Reward of a response = its mean P(win) against the others (for
  K = 2: P(win), with the other response getting 1 − P(win)).
* :class:`RatingJudge` — single-answer rating 1–10 (MT-Bench ``[[rating]]``), averaged over ``samples``.
* :class:`VerifierJudge` — GenRM: reward = p(Yes) / (p(Yes) + p(No)) for "Is the answer correct?";
  ``cot=True`` first samples K rationales and averages p(Yes) read after each (GenRM-CoT's majority vote).
* :class:`~rewardlab.judges.cloud.CritiqueJudge` — critique-out-loud (in :mod:`rewardlab.judges.cloud`).
"""

from __future__ import annotations

import copy
import time
from typing import Sequence

from rewardlab.core.cells import fmt, model_label
from rewardlab.core.errors import RewardlabError
from rewardlab.core.scorer import Capabilities, EvalContext, EvalSection, Scorer
from rewardlab.data.record import Comparison
from rewardlab.judges.backends import Backend, Sampling, two_way
from rewardlab.judges.parsers import Parsed, get_pairwise_parser, make_rating_parser
from rewardlab.judges.position import (
    OrderResult,
    PairVerdict,
    check_mode,
    combine,
    orders_for,
    position_summary,
    rewards_from_pairs,
    verdict_from_p,
    verdict_p_a,
)
from rewardlab.judges.templates import DEFAULT_TEMPLATE, JudgeTemplate, load_template, render_question


def _reasons(errors: Sequence[str | None]) -> dict:
    out: dict[str, int] = {}
    for e in errors:
        if e:
            out[e] = out.get(e, 0) + 1
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def _agreement_from_rewards(records: Sequence[Comparison], rewards: Sequence[Sequence[float]]) -> dict:
    """Agreement with the human judgement over each record's strict pairs (:meth:`Comparison.strict_pairs`: chosen
    against every other response for plain data; judge-tied responses form no pair): win, reward-tie and loss
    counts; ``accuracy`` is pair accuracy (a reward tie is no win), ``accuracy_ties_half`` credits it ½."""
    win = tie = loss = 0
    for rec, r in zip(records, rewards):
        for a, b in rec.strict_pairs():
            if r[a] > r[b]:
                win += 1
            elif r[a] == r[b]:
                tie += 1
            else:
                loss += 1
    n = win + tie + loss
    return {
        "n_pairs": n,
        "agree": win,
        "ties": tie,
        "disagree": loss,
        "accuracy": win / n if n else None,
        "accuracy_ties_half": (win + 0.5 * tie) / n if n else None,
    }


def eval_note(name: str, summary: dict) -> str:
    """One line for ``rewardlab eval``'s report notes: a judge's parse failures and position consistency."""
    text = (
        f"judge {name}: {summary.get('n_unparseable_outputs')} unparseable of {summary.get('n_outputs')} outputs "
        f"(scored as ties)"
    )
    if summary.get("position_consistency") is not None:
        text += (
            f"; position consistency {fmt(summary['position_consistency'])} over "
            f"{summary.get('n_pairs_both_parsed')} pairs; position A picked at rate "
            f"{fmt(summary.get('first_position_rate'))}"
        )
    return text


class Judge(Scorer):
    """Base class: subclasses implement :meth:`judge_records` and :meth:`summarize`. Scorer kind ``judge``: it
    sees a record's responses together (not pointwise) and reads text, so the reward server cannot batch it."""

    mode = "judge"
    kind = "judge"
    capabilities = Capabilities(output="scalar", pointwise=False, batched_forward=False)

    def __init__(
        self,
        backend: Backend,
        template: JudgeTemplate,
        *,
        sampling: Sampling | None = None,
        max_question_tokens: int | None = None,
        max_answer_tokens: int | None = None,
        name: str | None = None,
    ):
        self.backend, self.template = backend, template
        self.sampling = sampling or Sampling()
        self.max_question_tokens, self.max_answer_tokens = max_question_tokens, max_answer_tokens
        self.name = name or f"judge-{self.mode}-{_short(backend.model_id)}"
        self.last_rows: list[dict] = []
        self.last_summary: dict = {}

    # ---- text preparation ----------------------------------------------------------------------
    def question(self, prompt) -> str:
        return self.backend.truncate(render_question(prompt), self.max_question_tokens, side="left")

    def answer(self, text: str) -> str:
        return self.backend.truncate(text, self.max_answer_tokens, side="right")

    # ---- the scorer interface -------------------------------------------------------------------
    def judge_records(self, records: Sequence[Comparison]) -> list[dict]:
        raise NotImplementedError

    def summarize(self, records: Sequence[Comparison], rows: Sequence[dict]) -> dict:
        raise NotImplementedError

    def with_batch_size(self, batch_size: int | None) -> "Judge":
        """This judge with its backend running ``batch_size`` prompts per forward (:meth:`Backend.with_batch_size`):
        a shallow copy, so the judge itself is never changed; itself when nothing changes."""
        backend = self.backend.with_batch_size(batch_size)
        if backend is self.backend:
            return self
        other = copy.copy(self)
        other.backend = backend
        return other

    def score_comparisons(self, records: Sequence[Comparison], batch_size: int | None = None) -> list[list[float]]:
        """One reward per response of every record; ``batch_size``: prompts per forward for this call (the
        backend's own when None)."""
        start = time.perf_counter()
        rows = self.with_batch_size(batch_size).judge_records(records)
        self.last_rows = rows
        self.last_summary = self.summarize(records, rows)
        self.last_summary["seconds"] = time.perf_counter() - start
        return [row["rewards"] for row in rows]

    def unreadable_verdicts(self, records: Sequence[Comparison]) -> list[bool] | None:
        """Per record of the last :meth:`score_comparisons`: no readable verdict (:func:`row_unreadable`); None
        when its rows do not line up with ``records``."""
        rows = self.last_rows
        if not rows or len(rows) != len(records):
            return None
        return [row_unreadable(row) for row in rows]

    def eval_sections(self, records: Sequence[Comparison], context: EvalContext) -> list[EvalSection]:
        """Parse failures and position consistency of the last :meth:`score_comparisons`."""
        if not self.last_summary:
            return []
        return [EvalSection("judge", self.last_summary, eval_note(context.name, self.last_summary))]

    def describe(self) -> dict:
        return {
            "name": self.name,
            "mode": self.mode,
            "template": self.template.name,
            "sampling": self.sampling.to_json(),
            "max_question_tokens": self.max_question_tokens,
            "max_answer_tokens": self.max_answer_tokens,
            **self.backend.describe(),
        }

    @staticmethod
    def _row(index: int, rec: Comparison, rewards: list[float], **extra) -> dict:
        return {"index": index, "id": rec.id, "source": rec.source, "chosen": rec.chosen, "rewards": rewards, **extra}

    # ---- single-answer judges (one prompt per response) -----------------------------------------
    def _single_prompts(self, records: Sequence[Comparison]) -> tuple[list[list[dict]], list[tuple[int, int]]]:
        """One judge prompt per response and its ``(record, response)``."""
        prompts, index = [], []
        for r, rec in enumerate(records):
            q = self.question(rec.prompt)
            for k, resp in enumerate(rec.responses):
                prompts.append(self.template.messages(question=q, answer=self.answer(resp)))
                index.append((r, k))
        return prompts, index

    def _response_rows(
        self, records: Sequence[Comparison], per: dict[tuple[int, int], dict], reward: str
    ) -> list[dict]:
        """One row per record from the per-response results ``per[(record, response)]``; ``reward`` names the key."""
        rows = []
        for r, rec in enumerate(records):
            resp = [per[(r, k)] for k in range(rec.k)]
            rows.append(self._row(r, rec, [x[reward] for x in resp], responses=resp))
        return rows

    def _samples_summary(self, rows: Sequence[dict], value: str) -> dict:
        """The head of a single-answer summary: output counts, a sample whose ``value`` is None being unparseable."""
        samples = [s for row in rows for resp in row["responses"] for s in resp["samples"]]
        failed = [s for s in samples if s[value] is None]
        return {
            "judge": self.describe(),
            "n_records": len(rows),
            "n_outputs": len(samples),
            "n_unparseable_outputs": len(failed),
            "unparseable_rate": len(failed) / len(samples) if samples else None,
            "unparseable_reasons": _reasons([s.get("error") for s in failed]),
        }

    def _agreement_summary(self, records: Sequence[Comparison], rows: Sequence[dict]) -> dict:
        """The tail of every summary: agreement with the human choice, and the backend's counters if it keeps any."""
        stats = self.backend.stats()
        return {
            "agreement_with_chosen": _agreement_from_rewards(records, [r["rewards"] for r in rows]),
            **({"backend_stats": stats} if stats else {}),
        }


def row_unreadable(row: dict) -> bool:
    """Whether a judge's row (``judge.last_rows``) lacks a readable verdict: a pair whose verdict could not be
    parsed (``pairs[*].verdict`` None), or a response no sample of which was parsed (``responses[*].rated`` /
    ``scored`` False). Its reward is then a stand-in (½, the scale's middle), not a verdict."""
    if any(p.get("verdict") is None for p in row.get("pairs") or ()):
        return True
    return any(not r.get("rated", r.get("scored", True)) for r in row.get("responses") or ())


_short = model_label


class PairwiseJudge(Judge):
    """Pairwise judge; ``mode`` is ``"generate"`` (verdict text) or ``"logprob"`` (verdict-token probabilities)."""

    def __init__(
        self,
        backend: Backend,
        *,
        mode: str = "generate",
        template: str | JudgeTemplate | None = None,
        parser: str | None = None,
        position: str | None = None,
        sampling: Sampling | None = None,
        seed: int = 0,
        candidates: Sequence[str] | None = None,
        max_question_tokens: int | None = None,
        max_answer_tokens: int | None = None,
        name: str | None = None,
    ):
        if mode not in ("generate", "logprob"):
            raise RewardlabError(f"pairwise judge mode must be generate or logprob, got {mode!r}")
        self.mode = "pairwise" if mode == "generate" else "logprob"
        self.generate_mode = mode == "generate"
        tpl = load_template(template or DEFAULT_TEMPLATE[self.mode])
        if tpl.kind != "pairwise":
            raise RewardlabError(
                f"template {tpl.name!r} is a {tpl.kind} template; the pairwise judge needs a pairwise one"
            )
        super().__init__(
            backend,
            tpl,
            sampling=sampling,
            max_question_tokens=max_question_tokens,
            max_answer_tokens=max_answer_tokens,
            name=name,
        )
        self.parser_name = parser or ("letter" if tpl.candidates and self.generate_mode else "strict")
        self.parse = get_pairwise_parser(self.parser_name)
        self.position = check_mode(position or ("both" if self.generate_mode else "average"))
        self.seed = seed
        self.candidates = tuple(candidates or tpl.candidates or ("A", "B"))
        if len(self.candidates) != 2:
            raise RewardlabError(f"token-probability mode needs two verdict candidates, got {self.candidates}")

    def describe(self) -> dict:
        d = super().describe()
        d.update(
            position=self.position,
            seed=self.seed,
            **({"parser": self.parser_name} if self.generate_mode else {"candidates": list(self.candidates)}),
        )
        return d

    def prompts_for(self, records: Sequence[Comparison]) -> tuple[list[list[dict]], list[tuple[int, int, int, bool]]]:
        """Every judge prompt of a run and its ``(record, i, j, swapped)``."""
        prompts, jobs = [], []
        for r, rec in enumerate(records):
            q = self.question(rec.prompt)
            answers = [self.answer(x) for x in rec.responses]
            for i in range(rec.k):
                for j in range(i + 1, rec.k):
                    for swapped in orders_for(self.position, self.seed, f"{rec.id or r}:{i}:{j}"):
                        a, b = (answers[j], answers[i]) if swapped else (answers[i], answers[j])
                        prompts.append(self.template.messages(question=q, answer_a=a, answer_b=b))
                        jobs.append((r, i, j, swapped))
        return prompts, jobs

    def _order_results(self, prompts, jobs) -> list[OrderResult]:
        out = []
        if self.generate_mode:
            texts = self.backend.generate(prompts, self.sampling, n=1)
            for (r, i, j, swapped), samples in zip(jobs, texts):
                parsed: Parsed = self.parse(samples[0])
                out.append(OrderResult(swapped, samples[0], parsed.value, verdict_p_a(parsed.value), parsed.error))
            return out
        lps = self.backend.next_token_logprobs(prompts, self.candidates, self.template.assistant_prefix)
        a, b = self.candidates
        for (r, i, j, swapped), lp in zip(jobs, lps):
            p = two_way(lp, a, b)
            if lp is None:
                out.append(OrderResult(swapped, None, None, None, "no output (backend error)"))
            elif p is None:
                out.append(
                    OrderResult(
                        swapped, None, None, None, f"neither {a!r} nor {b!r} among the returned tokens", logprobs=lp
                    )
                )
            else:
                out.append(OrderResult(swapped, None, verdict_from_p(p), p, None, logprobs=lp))
        return out

    def judge_records(self, records: Sequence[Comparison]) -> list[dict]:
        prompts, jobs = self.prompts_for(records)
        results = self._order_results(prompts, jobs)
        grouped: dict[tuple[int, int, int], list[OrderResult]] = {}
        for (r, i, j, _), res in zip(jobs, results):
            grouped.setdefault((r, i, j), []).append(res)
        per_record: list[list[PairVerdict]] = [[] for _ in records]
        for (r, i, j), orders in grouped.items():
            per_record[r].append(combine(self.position, i, j, orders))
        rows = []
        for r, (rec, pvs) in enumerate(zip(records, per_record)):
            rows.append(self._row(r, rec, rewards_from_pairs(rec.k, pvs), pairs=[pv.to_json() for pv in pvs]))
        return rows

    def summarize(self, records: Sequence[Comparison], rows: Sequence[dict]) -> dict:
        pvs = []
        for row in rows:
            for p in row["pairs"]:
                orders = [
                    OrderResult(o["order"] == "BA", o["raw"], o["verdict"], o["p_a"], o["error"]) for o in p["orders"]
                ]
                pvs.append(PairVerdict(p["i"], p["j"], orders, p["verdict"], p["p_first"], p["consistent"], p["error"]))
        return {
            "judge": self.describe(),
            "n_records": len(rows),
            **position_summary(pvs),
            **self._agreement_summary(records, rows),
        }


class RatingJudge(Judge):
    """Single-answer grading: each response rated 1–10 on its own (no position bias); ``samples`` ratings averaged.

    A response none of whose outputs parsed gets the scale's midpoint (5.5) and is counted as unrated."""

    mode = "rating"

    def __init__(
        self,
        backend: Backend,
        *,
        template: str | JudgeTemplate | None = None,
        parser: str | None = None,
        sampling: Sampling | None = None,
        samples: int = 1,
        low: float = 1.0,
        high: float = 10.0,
        max_question_tokens: int | None = None,
        max_answer_tokens: int | None = None,
        name: str | None = None,
    ):
        tpl = load_template(template or DEFAULT_TEMPLATE["rating"])
        if tpl.kind != "single":
            raise RewardlabError(f"template {tpl.name!r} is a {tpl.kind} template; the rating judge needs a single one")
        super().__init__(
            backend,
            tpl,
            sampling=sampling,
            max_question_tokens=max_question_tokens,
            max_answer_tokens=max_answer_tokens,
            name=name,
        )
        self.parser_name = parser or "mtbench"
        self.parse = make_rating_parser(self.parser_name, low, high)
        self.samples, self.low, self.high = max(1, int(samples)), low, high

    def describe(self) -> dict:
        return {
            **super().describe(),
            "parser": self.parser_name,
            "samples": self.samples,
            "scale": [self.low, self.high],
        }

    def judge_records(self, records: Sequence[Comparison]) -> list[dict]:
        prompts, index = self._single_prompts(records)
        outs = self.backend.generate(prompts, self.sampling, n=self.samples)
        per: dict[tuple[int, int], dict] = {}
        for key, texts in zip(index, outs):
            parsed = [self.parse(t) for t in texts]
            values = [p.value for p in parsed if p.ok]
            per[key] = {
                "rating": sum(values) / len(values) if values else (self.low + self.high) / 2,
                "rated": bool(values),
                "samples": [{"raw": t, "rating": p.value, "error": p.error} for t, p in zip(texts, parsed)],
            }
        return self._response_rows(records, per, "rating")

    def summarize(self, records, rows) -> dict:
        rated = [resp["rating"] for row in rows for resp in row["responses"] if resp["rated"]]
        return {
            **self._samples_summary(rows, "rating"),
            "n_unrated_responses": sum(1 for row in rows for resp in row["responses"] if not resp["rated"]),
            "mean_rating": sum(rated) / len(rated) if rated else None,
            **self._agreement_summary(records, rows),
        }


class VerifierJudge(Judge):
    """GenRM verifier: reward = p(Yes) / (p(Yes) + p(No)) as the first token of the reply.

    ``cot=True`` (GenRM-CoT): sample ``samples`` rationales (``sampling``; use a temperature > 0), then ask the
    template's follow-up question after each and average p(Yes) over them — GenRM's majority vote. ``votes_yes``
    counts the rationales with p(Yes) > ½. A response with no usable probability gets ½ and is counted."""

    def __init__(
        self,
        backend: Backend,
        *,
        cot: bool = False,
        template: str | JudgeTemplate | None = None,
        sampling: Sampling | None = None,
        samples: int = 1,
        max_question_tokens: int | None = None,
        max_answer_tokens: int | None = None,
        name: str | None = None,
    ):
        self.cot = cot
        self.mode = "verifier-cot" if cot else "verifier"
        tpl = load_template(template or DEFAULT_TEMPLATE[self.mode])
        if tpl.kind != "verify":
            raise RewardlabError(f"template {tpl.name!r} is a {tpl.kind} template; the verifier needs a verify one")
        if cot and not tpl.followup:
            raise RewardlabError(f"template {tpl.name!r} has no followup question for chain-of-thought verification")
        super().__init__(
            backend,
            tpl,
            sampling=sampling,
            max_question_tokens=max_question_tokens,
            max_answer_tokens=max_answer_tokens,
            name=name,
        )
        self.samples = max(1, int(samples)) if cot else 1
        self.candidates = tuple(tpl.candidates or ("Yes", "No"))

    def describe(self) -> dict:
        return {**super().describe(), "samples": self.samples, "candidates": list(self.candidates)}

    def judge_records(self, records: Sequence[Comparison]) -> list[dict]:
        prompts, index = self._single_prompts(records)
        yes, no = self.candidates
        if not self.cot:
            lps = self.backend.next_token_logprobs(prompts, self.candidates, self.template.assistant_prefix)
            samples = [[{"rationale": None, "p_yes": two_way(lp, yes, no), "logprobs": _finite(lp)}] for lp in lps]
        else:
            rationales = self.backend.generate(prompts, self.sampling, n=self.samples)
            follow, where = [], []
            for p, texts in enumerate(rationales):
                for s, text in enumerate(texts):
                    if text is not None:
                        follow.append(
                            prompts[p]
                            + [
                                {"role": "assistant", "content": text},
                                {"role": "user", "content": self.template.followup},
                            ]
                        )
                        where.append((p, s))
            lps = self.backend.next_token_logprobs(follow, self.candidates) if follow else []
            samples = [[{"rationale": t, "p_yes": None, "logprobs": None} for t in texts] for texts in rationales]
            for (p, s), lp in zip(where, lps):
                samples[p][s].update(p_yes=two_way(lp, yes, no), logprobs=_finite(lp))
        per = {}
        for key, ss in zip(index, samples):
            ps = [s["p_yes"] for s in ss if s["p_yes"] is not None]
            for s in ss:
                if s["p_yes"] is None:
                    s["error"] = (
                        "no rationale (backend error)"
                        if self.cot and s["rationale"] is None
                        else f"no probability for {yes!r} or {no!r}"
                    )
            per[key] = {
                "p_yes": sum(ps) / len(ps) if ps else 0.5,
                "scored": bool(ps),
                "votes_yes": sum(1 for p in ps if p > 0.5),
                "n_samples": len(ss),
                "samples": ss,
            }
        return self._response_rows(records, per, "p_yes")

    def summarize(self, records, rows) -> dict:
        return {
            **self._samples_summary(rows, "p_yes"),
            "n_unscored_responses": sum(1 for row in rows for resp in row["responses"] if not resp["scored"]),
            **self._agreement_summary(records, rows),
        }


def _finite(lp: dict | None) -> dict | None:
    if lp is None:
        return None
    return {k: (v if v != float("-inf") else None) for k, v in lp.items()}
