"""EvalBiasBench (Park et al., 2024, OffsetBias, arXiv 2407.06551): six biases, both orders, three accuracies.

Schema, as published in ncsoft/offsetbias @0bd16e4 ``data/evalbiasbench/biasbench.json``: one JSON object
keyed by bias name (``length bias``, ``concreteness``, ``empty reference``, ``content_continuation``,
``nested_instruction``, ``familiar knowledge preference bias``), each a list of items
``{bias, instruction, response1, response2, label}`` where ``label`` is 1 (``response1`` is better) or 2.
In the published file every label is 1, which is why its authors show every item in both orders. A JSONL
(or JSON list) of such items, grouped by their ``bias`` field, is read too, and so is a data folder: the files
in it that hold the published object (whatever their name, e.g. ``EvalBiasBench.json``), else its item files.

Each item becomes two records, the original order (``response1``, ``response2``) and the swapped one, with
``meta = {"item", "order": "orig" | "swap", "bias"}`` and ``source`` = the bias. Scoring, as
``run_bench.py`` ``get_model_statistics`` and ``module.py`` ``is_correct`` compute it:

* a record's *prediction* is 1 (the first response shown wins), 2 (the second) or 3 (a tie); it is
  *correct* when it names the better response (a tie never is);
* **single accuracy** = correct orders / (2 × items); **pair accuracy** = items correct in both orders /
  items; **pair agreement** = items whose two predictions pick the same response, or are both ties / items.

All three per bias, and pooled over every item (the headline). A pointwise reward model gives the same
rewards in both orders, so its single and pair accuracies are equal and its agreement is 1 (short of exact
ties). A judge sees each record as given: to score it as the authors do (one verdict per order), give it
``position=single``; with ``both``/``average`` each record is already judged in both orders. An order whose
judge output could not be read is the authors' prediction 4 (``module.py`` ``get_prediction``): never correct,
and it agrees with nothing (``get_model_statistics`` counts agreement only for ``{1, 2}`` or ``{3}``), whatever
the tie policy; ``n_unreadable`` counts such orders overall and per bias. Tie policies other than ``strict``
credit a tied order as they say (pair credit = product of the two).

Texts are read as the file has them: ``run_bench.py`` ``get_benchmark_data`` loads ``biasbench.json`` with
``json.load`` and no strip (its ``make_data_row``, which strips, is used for the other benchmarks only).

Intervals: the unit that was sampled is the *item* (its two orders are not independent draws), so the per-bias
``ci95`` resamples items, each with both of its orders (:func:`~rewardlab.metrics.statistics.bootstrap_ci`
``groups``).
"""

from __future__ import annotations

import gzip
import json
from collections import defaultdict
from pathlib import Path
from typing import Sequence

import numpy as np

from rewardlab.benchmarks.base import Benchmark, BenchmarkData
from rewardlab.core.errors import DataError
from rewardlab.data.local import iter_local_rows
from rewardlab.data.record import Comparison
from rewardlab.metrics.statistics import bootstrap_ci
from rewardlab.metrics.ties import TiePolicy, compare_credit

FIELDS = ("instruction", "response1", "response2", "label")


def _open_text(path: Path):
    return (
        gzip.open(path, "rt", encoding="utf-8") if path.name.lower().endswith(".gz") else open(path, encoding="utf-8")
    )


def detect(path: str) -> bool:
    """True for a ``.json``/``.json.gz`` file whose start looks like EvalBiasBench's published object."""
    p = Path(str(path))
    if not p.is_file() or not p.name.lower().endswith((".json", ".json.gz")):
        return False
    try:
        with _open_text(p) as f:
            head = f.read(8192)
    except (OSError, UnicodeDecodeError, EOFError):
        return False
    return head.lstrip().startswith("{") and all(f'"{k}"' in head for k in ("bias", "instruction", "response1"))


def _item_records(item: dict, bias: str, index: int, where: dict) -> list[Comparison]:
    def err(field: str, message: str) -> DataError:
        return DataError(message, path=where["path"], row=where.get("row"), line=where.get("line"), field=field)

    if not isinstance(item, dict):
        raise err(
            None, f"expected an object {{bias, instruction, response1, response2, label}}, got {type(item).__name__}"
        )
    for name in FIELDS:
        if item.get(name) is None:
            raise err(name, "missing")
    for name in FIELDS[:3]:
        if not isinstance(item[name], str):
            raise err(name, f"expected text, got {type(item[name]).__name__}")
    label = item["label"]
    if isinstance(label, str) and label.strip() in ("1", "2"):
        label = int(label)
    if isinstance(label, bool) or label not in (1, 2):
        raise err("label", f"expected 1 (response1 is better) or 2 (response2), got {label!r}")
    # as the file has them: run_bench.py reads biasbench.json with json.load and strips nothing
    prompt, r1, r2 = item["instruction"], item["response1"], item["response2"]
    meta = {"item": f"{bias}:{index}", "bias": bias}
    return [
        Comparison(
            prompt, (r1, r2), chosen=label - 1, source=bias, id=f"{bias}:{index}:orig", meta={**meta, "order": "orig"}
        ),
        Comparison(
            prompt, (r2, r1), chosen=2 - label, source=bias, id=f"{bias}:{index}:swap", meta={**meta, "order": "swap"}
        ),
    ]


def load(path: str, limit: int | None = None, skip_invalid: bool = False) -> BenchmarkData:
    """Both orders of every item; ``limit`` counts items (each gives two records)."""
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    data = BenchmarkData(records=[], source=str(path), info={"n_items": 0})
    items: list[tuple[dict, str, int, dict]] = []
    p = Path(str(path))
    published = [p] if p.is_file() and detect(str(p)) else []
    if p.is_dir():  # a data folder: its files in the published layout (e.g. EvalBiasBench.json), if it has any
        published = sorted(f for f in p.rglob("*") if detect(str(f)))
    if published:
        for doc_path in published:
            try:
                with _open_text(doc_path) as f:
                    document = json.load(f)
            except ValueError as e:
                raise DataError(f"invalid JSON: {e}", path=str(doc_path)) from None
            if not isinstance(document, dict) or not all(isinstance(v, list) for v in document.values()):
                raise DataError("expected EvalBiasBench's object {bias name: [items]}", path=str(doc_path))
            for bias, rows in document.items():
                for i, item in enumerate(rows):
                    items.append((item, str(bias), i, {"path": f"{doc_path} (bias {bias!r})", "row": i}))
    else:
        counters: dict[str, int] = defaultdict(int)
        for location, row, _name in iter_local_rows(str(path), on_error=data.skipped.append if skip_invalid else None):
            bias = row.get("bias")
            if not isinstance(bias, str) or not bias.strip():
                error = DataError(
                    "missing (each item names its bias)",
                    path=location.get("path", "?"),
                    line=location.get("line"),
                    row=location.get("row"),
                    field="bias",
                )
                if not skip_invalid:
                    raise error
                data.skipped.append(error)
                continue
            items.append((row, bias, counters[bias], location))
            counters[bias] += 1
    for item, bias, i, where in items:
        if limit is not None and data.info["n_items"] >= limit:
            break
        try:
            data.records += _item_records(item, bias, i, where)
        except DataError as error:
            if not skip_invalid:
                raise
            data.skipped.append(error)
            continue
        data.info["n_items"] += 1
    if not data.records and limit != 0:
        raise DataError("no usable EvalBiasBench items", path=str(path))
    return data


UNREADABLE = 4  # module.py get_prediction: "4(N/A)", no verdict pattern found in the judge's output


def prediction(scores: Sequence[float], unreadable: bool = False) -> int:
    """1: the first response shown has the higher reward; 2: the second; 3: a tie; 4: no readable verdict."""
    if unreadable:
        return UNREADABLE
    return 1 if scores[0] > scores[1] else 2 if scores[1] > scores[0] else 3


def agrees(pred_orig: int, pred_swap: int) -> bool:
    """run_bench.py get_model_statistics: ``set([pred_orig, pred_swap]) in [set([1, 2]), set([3])]``: the same
    response picked in both orders, or a tie in both. An unreadable order (4) agrees with nothing."""
    return {pred_orig, pred_swap} in ({1, 2}, {3})


def _stats(items: list[tuple[float, float, bool, int]]) -> dict:
    single = [c for a, b, _, _ in items for c in (a, b)]
    pair = [a * b for a, b, _, _ in items]
    agree = [float(g) for _, _, g, _ in items]
    return {
        "n_items": len(items),
        "single_accuracy": float(np.mean(single)),
        "pair_accuracy": float(np.mean(pair)),
        "pair_agreement": float(np.mean(agree)),
        "n_unreadable": int(sum(u for *_, u in items)),
    }


def score(
    records: Sequence[Comparison],
    scores: Sequence[Sequence[float]],
    policy: TiePolicy,
    seed: int = 0,
    n_boot: int = 1000,
    unreadable: Sequence[bool] | None = None,
) -> dict:
    pol = policy.resolve("strict")
    rng = pol.rng()
    credits, by_item = [], {}
    flags = list(unreadable) if unreadable is not None else [False] * len(records)
    for record, s, bad in zip(records, scores, flags):
        other = 1 - record.chosen
        # an unreadable verdict is never correct (module.py is_correct of prediction 4), whatever the tie policy
        credit = 0.0 if bad else compare_credit(s[record.chosen], s[other], pol, rng)
        credits.append(credit)
        by_item.setdefault(record.meta.get("item", record.id), {})[record.meta.get("order", "orig")] = (
            credit,
            prediction(s, bool(bad)),
            record.source,
        )
    incomplete = [k for k, v in by_item.items() if set(v) != {"orig", "swap"}]
    if incomplete:
        raise ValueError(
            f"EvalBiasBench items without both orders: {incomplete[:3]} (load with the evalbiasbench loader)"
        )
    per_bias: dict[str, list] = defaultdict(list)
    for item in by_item.values():
        (c1, p1, bias), (c2, p2, _) = item["orig"], item["swap"]
        per_bias[bias].append((c1, c2, agrees(p1, p2), (p1 == UNREADABLE) + (p2 == UNREADABLE)))
    everything = [x for v in per_bias.values() for x in v]
    overall = _stats(everything)
    subsets = {}
    for bias, items in per_bias.items():
        st = _stats(items)
        single = np.array([c for a, b, *_ in items for c in (a, b)])
        item_of = np.repeat(np.arange(len(items)), 2)  # both orders of an item are one unit
        subsets[bias] = {
            "n": 2 * len(items),
            "score": st["single_accuracy"],
            "ci95": list(bootstrap_ci(single, n=n_boot, seed=seed, groups=item_of.tolist())) if n_boot > 0 else None,
            "ci_unit": "item (both orders)",
            **st,
        }
    unread = overall["n_unreadable"]
    return {
        "headline": {
            "single accuracy": overall["single_accuracy"],
            "pair accuracy": overall["pair_accuracy"],
            "pair agreement": overall["pair_agreement"],
            **({"unreadable verdicts (orders)": unread} if unreadable is not None else {}),
        },
        "n_unreadable": unread,
        "overall": overall,
        "subsets": subsets,
        "per_bias": {b: _stats(v) for b, v in per_bias.items()},
        "notes": [
            "subset score = single accuracy (both orders counted); per_bias also has pair accuracy and "
            "pair agreement. Judges: position=single scores one verdict per order, as the authors do.",
            "95% intervals: bootstrap over items (each item with both of its orders is one unit).",
        ]
        + (
            [
                f"{unread} of {2 * len(everything)} orders had no readable verdict: scored as the authors' "
                "prediction 4 (never correct, agrees with nothing), not as a tie"
            ]
            if unread
            else []
        ),
        "per_example": credits,
    }


BENCHMARK = Benchmark(
    name="evalbiasbench",
    version="ncsoft/offsetbias @0bd16e4 data/evalbiasbench/biasbench.json",
    title="EvalBiasBench (OffsetBias)",
    loader=load,
    rule=score,
    reads_unreadable=True,
    schema="JSON object {bias: [{bias, instruction, response1, response2, label}]} (or JSONL of such items)",
    published_ties={"order": "strict"},
    reference=(
        "ncsoft/offsetbias @0bd16e4: run_bench.py add_inference (both orders), get_model_statistics "
        "(single/pair accuracy, pair agreement), module.py is_correct"
    ),
)
