"""Judge–human agreement on MT-Bench human judgments (Zheng et al., 2023), with a reward model as the judge.

Schema (``lmsys/mt_bench_human_judgments``, split ``human``; one row per vote): ``question_id``,
``model_a``, ``model_b``, ``winner`` (``model_a``, ``model_b``, ``tie`` or ``tie (bothbad)``), ``judge``,
``turn`` (1 or 2), ``conversation_a`` and ``conversation_b`` (message lists; the judged answer is the
``turn``-th assistant message, and what precedes it is its prompt). As in FastChat's
``fastchat/llm_judge/compute_agreement.py`` (``get_judge_name``), the human judges are the ``expert_*``
ones; ``author_*`` and GPT-4 rows are left out (counted in ``info["excluded"]``).

The reward model votes for the answer with the higher reward (:func:`vote_from_rewards`;
equal rewards are a ``tie`` vote under the ``published`` = ``strict`` policy, half a vote each way under
``half``/``fractional``, a seeded coin under ``random``). Then, as in FastChat:

* **agreement with ties** (``compute_agreement.py``, ``ban=[]``): over every human vote, the judge agrees
  when it votes the same way; any two tie votes agree (``equalvote``);
* **agreement without ties** (``ban=["tie"]``): votes where the human or the judge says tie are dropped;
* **win / loss / tie** per model and the **adjusted win rate** ``(W + 0.5·T) / (W + L + T)``
  (``fastchat/llm_judge/show_result.py`` ``display_result_pairwise``: ``win_rate_adjusted``), from the
  judge's votes and from the humans' votes, side by side;
* the **human–human** agreement on the same items (every pair of expert votes on one question, model
  pair and turn), the ceiling the judge is compared with.

Agreement is reported overall and per turn (FastChat reports it per turn).
"""

from __future__ import annotations

from collections import defaultdict
from itertools import combinations
from typing import Any, Sequence

import numpy as np

from rewardlab.benchmarks.base import Benchmark, BenchmarkData, load_rows, subset_table
from rewardlab.core.atomic import json_safe
from rewardlab.data.fields import data_error, int_field, text_field
from rewardlab.data.messages import message_list
from rewardlab.data.record import Comparison
from rewardlab.metrics.statistics import sampling_units
from rewardlab.metrics.ties import TiePolicy, tie_credit

HUMAN_JUDGE_PREFIXES = ("expert",)


# judge votes: win / loss / tie and agreement, as in FastChat


def _as_vote(vote: Any) -> tuple[float, float, float]:
    """``"model_a"`` → (1, 0, 0), ``"model_b"`` → (0, 1, 0), anything containing ``"tie"`` (e.g.
    MT-Bench's ``"tie (bothbad)"``) → (0, 0, 1); a 3-tuple is taken as it is."""
    if isinstance(vote, str):
        if "tie" in vote:
            return (0.0, 0.0, 1.0)
        if vote == "model_a":
            return (1.0, 0.0, 0.0)
        if vote == "model_b":
            return (0.0, 1.0, 0.0)
        raise ValueError(f"unknown vote {vote!r}: expected model_a, model_b or tie")
    a, b, t = (float(v) for v in vote)
    if min(a, b, t) < 0 or abs(a + b + t - 1.0) > 1e-9:
        raise ValueError(f"a vote (p_a, p_b, p_tie) must be probabilities summing to 1, got {vote!r}")
    return (a, b, t)


def vote_from_rewards(
    r_a: float, r_b: float, policy: TiePolicy | str = "strict", rng: np.random.Generator | None = None
) -> tuple[float, float, float]:
    """A reward model's vote on (a, b) as ``(p_a, p_b, p_tie)``: the higher reward wins.

    Equal rewards: ``strict`` → a tie vote (0, 0, 1), as a judge saying "tie"; ``half`` and
    ``fractional`` → half a vote each way (½, ½, 0); ``random`` → a seeded coin picks a or b.
    """
    policy = TiePolicy.parse(policy).resolve("strict")
    if r_a > r_b:
        return (1.0, 0.0, 0.0)
    if r_a < r_b:
        return (0.0, 1.0, 0.0)
    if policy.name == "strict":
        return (0.0, 0.0, 1.0)
    if policy.name in ("half", "fractional"):
        return (0.5, 0.5, 0.0)
    a_wins = tie_credit(policy, 0.5, rng)
    return (a_wins, 1.0 - a_wins, 0.0)


def adjusted_win_rate(win: float, loss: float, tie: float) -> float | None:
    """``(W + 0.5·T) / (W + L + T)``: each tie counts as half a win (MT-Bench's ``win_rate_adjusted``)."""
    total = win + loss + tie
    return (win + 0.5 * tie) / total if total > 0 else None


def win_loss_tie(rows: Sequence[tuple[str, str, Any]]) -> dict:
    """Per model, wins / losses / ties over ``(model_a, model_b, vote)`` rows, MT-Bench style.

    A vote for a gives a a win and b a loss; a tie gives both a tie; a fractional vote
    ``(p_a, p_b, p_tie)`` adds those fractions. Returns ``{model: {win, loss, tie, n, win_rate,
    loss_rate, adjusted_win_rate}}`` with ``win_rate = W / (W+L+T)`` and the adjusted rate
    ``(W + 0.5·T) / (W+L+T)`` (:func:`adjusted_win_rate`). Models in order of first appearance.
    """
    table: dict[str, list[float]] = {}
    for model_a, model_b, vote in rows:
        p_a, p_b, p_t = _as_vote(vote)
        for model, w, l in ((model_a, p_a, p_b), (model_b, p_b, p_a)):
            cell = table.setdefault(str(model), [0.0, 0.0, 0.0])
            cell[0] += w
            cell[1] += l
            cell[2] += p_t
    out = {}
    for model, (w, l, t) in table.items():
        n = w + l + t
        out[model] = {
            "win": w,
            "loss": l,
            "tie": t,
            "n": n,
            "win_rate": w / n if n else None,
            "loss_rate": l / n if n else None,
            "adjusted_win_rate": adjusted_win_rate(w, l, t),
        }
    return json_safe(out)


def agreement(judge_votes: Sequence[Any], human_votes: Sequence[Any], include_ties: bool = True) -> dict:
    """Agreement between a judge's and humans' votes on the same items, as in MT-Bench.

    Votes are ``"model_a"``, ``"model_b"``, ``"tie"`` (any text containing "tie") or ``(p_a, p_b, p_tie)``.
    ``include_ties=True`` ("with ties"): every item counts and two tie votes agree; the credit of an item
    is the judge's probability on the human's choice. ``include_ties=False`` ("without ties"): items
    where the human or the judge voted tie (``p_tie > 0``) are left out. Returns ``{agree, total, rate}``.
    """
    if len(judge_votes) != len(human_votes):
        raise ValueError(f"{len(judge_votes)} judge votes but {len(human_votes)} human votes")
    agree, total = 0.0, 0
    for j, h in zip(judge_votes, human_votes):
        jv, hv = _as_vote(j), _as_vote(h)
        if not include_ties and (hv[2] > 0 or jv[2] > 0):
            continue
        total += 1
        agree += sum(x * y for x, y in zip(jv, hv))
    return json_safe({"agree": agree, "total": total, "rate": agree / total if total else None})


def judge_kind(judge) -> str:
    """FastChat's ``get_judge_name``: ``["gpt-4", "pair…"]`` → gpt4-pair, ``expert…`` → human,
    ``author…`` → author, else the text itself."""
    if isinstance(judge, (list, tuple)):
        return (
            "gpt4-pair" if len(judge) > 1 and judge[0] == "gpt-4" and str(judge[1]).startswith("pair") else str(judge)
        )
    judge = str(judge)
    if judge.startswith(HUMAN_JUDGE_PREFIXES):
        return "human"
    if judge.startswith("author"):
        return "author"
    return judge


def _split_turn(conv: tuple[dict, ...], turn: int, location: dict, name: str) -> tuple[tuple[dict, ...], str]:
    seen = 0
    for i, m in enumerate(conv):
        if m["role"] == "assistant":
            seen += 1
            if seen == turn:
                return conv[:i], m["content"]
    raise data_error(location, name, f"has no assistant message for turn {turn}")


def parse_row(row: dict, location: dict, name: str) -> Comparison:
    turn = int_field(row, location, "turn", default=1)
    if turn < 1:
        raise data_error(location, "turn", f"expected 1 or more, got {turn}")
    model_a, model_b = text_field(row, location, "model_a"), text_field(row, location, "model_b")
    winner = text_field(row, location, "winner")
    if winner not in ("model_a", "model_b") and "tie" not in winner:
        raise data_error(location, "winner", f"expected model_a, model_b or tie, got {winner!r}")
    prompt_a, answer_a = _split_turn(
        message_list(row.get("conversation_a"), location, "conversation_a"), turn, location, "conversation_a"
    )
    prompt_b, answer_b = _split_turn(
        message_list(row.get("conversation_b"), location, "conversation_b"), turn, location, "conversation_b"
    )
    judge = row.get("judge", "")
    qid = row.get("question_id", "")
    meta = {
        "question_id": str(qid),
        "model_a": model_a,
        "model_b": model_b,
        "winner": winner,
        "judge": judge if isinstance(judge, str) else list(judge),
        "judge_kind": judge_kind(judge),
        "turn": turn,
        "human_tie": "tie" in winner,
    }
    if prompt_a != prompt_b:
        meta["prompts"] = (prompt_a, prompt_b)
    where = location.get("line", location.get("row"))
    rid = f"q{qid}-t{turn}-{model_a}-vs-{model_b}-{judge if isinstance(judge, str) else 'judge'}-{name}:{where}"
    return Comparison(
        prompt_a, (answer_a, answer_b), chosen=1 if winner == "model_b" else 0, source=f"turn {turn}", id=rid, meta=meta
    )


def load(path: str, limit: int | None = None, skip_invalid: bool = False) -> BenchmarkData:
    return load_rows(
        path, parse_row, limit=limit, skip_invalid=skip_invalid, keep=lambda r: r.meta["judge_kind"] == "human"
    )


def human_human_agreement(records: Sequence[Comparison], include_ties: bool = True) -> dict:
    """Agreement between pairs of human votes on the same (question, model pair, turn), as FastChat's
    ``human human`` setting (each vote re-oriented to the alphabetically first model as ``model_a``)."""
    flip = {"model_a": "model_b", "model_b": "model_a"}
    groups: dict[tuple, list[str]] = defaultdict(list)
    for r in records:
        m = r.meta
        a, b, vote = m["model_a"], m["model_b"], m["winner"]
        if a > b:
            a, b, vote = b, a, flip.get(vote, vote)
        groups[(m["question_id"], a, b, m["turn"])].append(vote)
    agree, total = 0.0, 0
    for votes in groups.values():
        for x, y in combinations(votes, 2):
            vx, vy = _as_vote(x), _as_vote(y)
            if not include_ties and (vx[2] or vy[2]):
                continue
            total += 1
            agree += float(vx == vy)
    return {"agree": agree, "total": total, "rate": agree / total if total else None}


def score(
    records: Sequence[Comparison],
    scores: Sequence[Sequence[float]],
    policy: TiePolicy,
    seed: int = 0,
    n_boot: int = 1000,
) -> dict:
    pol = policy.resolve("strict")
    rng = pol.rng()
    votes = [vote_from_rewards(row[0], row[1], pol, rng) for row in scores]
    humans = [r.meta["winner"] for r in records]
    credits = [sum(x * y for x, y in zip(v, _as_vote(h))) for v, h in zip(votes, humans)]
    turns = sorted({r.meta["turn"] for r in records})
    by_turn = {}
    for t in turns:
        idx = [i for i, r in enumerate(records) if r.meta["turn"] == t]
        by_turn[f"turn {t}"] = {
            "with_ties": agreement([votes[i] for i in idx], [humans[i] for i in idx], include_ties=True),
            "without_ties": agreement([votes[i] for i in idx], [humans[i] for i in idx], include_ties=False),
        }
    with_ties = agreement(votes, humans, include_ties=True)
    without_ties = agreement(votes, humans, include_ties=False)
    hh_with, hh_without = human_human_agreement(records, True), human_human_agreement(records, False)
    rows = [(r.meta["model_a"], r.meta["model_b"]) for r in records]
    judge_wlt = win_loss_tie([(a, b, v) for (a, b), v in zip(rows, votes)])
    human_wlt = win_loss_tie([(a, b, h) for (a, b), h in zip(rows, humans)])
    return {
        "headline": {
            "agreement with ties": with_ties["rate"],
            "agreement without ties": without_ties["rate"],
            "human–human with ties": hh_with["rate"],
            "human–human without ties": hh_without["rate"],
        },
        "agreement": {"with_ties": with_ties, "without_ties": without_ties, "by_turn": by_turn},
        "human_human": {"with_ties": hh_with, "without_ties": hh_without},
        "votes": {
            "judge": {
                "model_a": sum(v[0] for v in votes),
                "model_b": sum(v[1] for v in votes),
                "tie": sum(v[2] for v in votes),
            },
            "human": {
                "model_a": humans.count("model_a"),
                "model_b": humans.count("model_b"),
                "tie": sum("tie" in h for h in humans),
            },
        },
        "win_rates": {"judge": judge_wlt, "human": human_wlt},
        "subsets": subset_table(
            [r.source for r in records], credits, seed=seed, n_boot=n_boot, groups=sampling_units(records)
        ),
        "notes": ["subset scores are agreement with ties; the judge is the reward model"],
        "per_example": credits,
    }


BENCHMARK = Benchmark(
    name="mt-bench-human",
    version="lmsys/mt_bench_human_judgments (human split, expert votes)",
    title="MT-Bench judge–human agreement",
    loader=load,
    rule=score,
    schema="question_id, model_a, model_b, winner, judge, turn, conversation_a, conversation_b",
    published_ties={"judge_vote": "strict"},
    reference=(
        "lm-sys/FastChat fastchat/llm_judge/compute_agreement.py (with/without ties, expert judges), "
        "fastchat/llm_judge/show_result.py display_result_pairwise (W/L/T, win_rate_adjusted)"
    ),
    pairwise=lambda record: not record.meta.get("human_tie", False),
)
