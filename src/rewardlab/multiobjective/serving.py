"""A K-output model behind the one scorer interface that score, eval, probes, normalize and serve use.

:func:`rewardlab.scoring.loader.load_reward_model` returns a :class:`MultiObjectiveScorer` for a directory whose
``rewardlab.json`` has a ``multiobjective`` section (and for a composed Llama 2 directory,
:mod:`rewardlab.multiobjective.composed`), so no command special-cases these models:

* ``score(items, …)`` → one float per item, the model's recorded scaliser (fixed weights, Llama 2 rule or the
  gate), ``normalize=True`` applying ``rewardlab.json``'s ``normalization`` to that scalar;
* ``score_rows(items, …)`` → per item ``{"score", "attributes", "transformed"?, "gate"?}`` (what ``rewardlab
  score`` writes), reading each prompt's ``unsafe`` tag where the caller has one;
* ``multiobjective_report(records, plot)`` → accuracy under every scaliser, length correlations, the gate plot
  (``rewardlab eval``);
* the batcher interface of the reward server: ``encoder.encode``, ``collate`` and ``forward`` answering each text
  with a row ``[score, r_1..r_K, r′_1..r′_K, g_1..g_K]`` (gate weights 0 without a gate), which :func:`unpack` turns
  into ``/v1/score``'s answer; ``/get_reward`` takes the first column. A request's ``unsafe`` tag travels with each
  text's features (:data:`UNSAFE_KEY`, set by the server) into ``collate``'s batch, so one forward mixes tagged and
  untagged requests.

Packing is refused (:data:`PACKING_REFUSAL`): the packed forward returns one value per packed row, and the gate
needs the prompt-end hidden state of every text besides the K outputs.
"""

from __future__ import annotations

import torch

from rewardlab.core.errors import DataError, ModelContractError
from rewardlab.core.finite import check_rewards
from rewardlab.core.scorer import (
    Capabilities,
    EvalContext,
    EvalSection,
    LoadRequest,
    ScoreOptions,
    Scorer,
    ScoreRow,
)
from rewardlab.data.ratings import Scale, load_rated
from rewardlab.models.reward_model import RewardModel, normalized
from rewardlab.multiobjective.losses import targets_and_mask
from rewardlab.multiobjective.metrics import attribute_metrics
from rewardlab.multiobjective.model import AttributeRewardModel, output_rows
from rewardlab.multiobjective.train import evaluate_pairs

PACKING_REFUSAL = (
    "--packing does not cover multi-objective models: the packed forward returns one value per text, "
    "and the K outputs and the gate's prompt-end hidden state are not read from it; drop --packing"
)
UNSAFE_KEY = "unsafe"  # an encoded text's (and a collated batch's) unsafe-prompt tag, set by the server


def unsafe_column(features: list[dict]) -> torch.Tensor:
    """``(N,)`` bool: each encoded text's :data:`UNSAFE_KEY` tag (untagged: False)."""
    return torch.tensor([bool(f.get(UNSAFE_KEY, False)) for f in features], dtype=torch.bool)


class _Encoder:
    def __init__(self, rm: AttributeRewardModel):
        self.rm = rm

    def encode(self, prompt, response) -> dict:
        return self.rm.encode(prompt, response)


class MultiObjectiveScorer(torch.nn.Module, Scorer):
    """Scorer kind ``multiobjective``: K attribute outputs, the scalar by the recorded scaliser."""

    kind = "multiobjective"

    def __init__(self, rm: AttributeRewardModel):
        super().__init__()
        self.inner = rm
        self.model, self.tokenizer, self.spec = rm.model, rm.tokenizer, rm.spec
        self.encoder = _Encoder(rm)
        self.modified_files = list(rm.modified_files)
        self.capabilities = Capabilities(
            output="attributes",
            packing_refusal=PACKING_REFUSAL,
            reads_unsafe_tags=rm.scaliser().kind == "llama2",  # the Llama 2 rule reads each prompt's tag
            forward_rows=True,
        )

    @classmethod
    def load(
        cls, path: str, torch_dtype=torch.float32, trust_modified: bool = False, packing: bool = False
    ) -> "MultiObjectiveScorer":
        """Load a K-output directory; ``packing=True`` (the ``--packing`` load option) is refused
        (:data:`PACKING_REFUSAL`) before any weights load."""
        if packing:
            raise ModelContractError(PACKING_REFUSAL)
        return cls(AttributeRewardModel.load(path, torch_dtype=torch_dtype, trust_modified=trust_modified))

    @classmethod
    def open(cls, path: str, request: LoadRequest) -> "MultiObjectiveScorer":
        kw = {} if request.torch_dtype is None else {"torch_dtype": request.torch_dtype}
        return cls.load(path, trust_modified=request.trust_modified, packing=request.packing, **kw)

    @classmethod
    def inspect(cls, path: str, options=None) -> str:
        return RewardModel.inspect(path, options)

    @property
    def attributes(self) -> list[str]:
        return self.inner.attributes

    @property
    def has_gate(self) -> bool:
        return self.inner.gate is not None

    # ---- the scorer interface --------------------------------------------------------------------------
    def _scores(self, items, opts: ScoreOptions, unsafe):
        return self.inner.score_items(
            list(items), batch_size=opts.batch_size, unsafe=unsafe, padding_side=opts.padding_side
        )

    def score_items(self, items: list, opts: ScoreOptions, unsafe=None) -> list[float]:
        """The scalar of each (prompt, response): the recorded scaliser."""
        return self._scores(items, opts, unsafe).score.tolist()

    def score_rows(self, items, options: ScoreOptions | None = None, /, *, unsafe=None, **keywords) -> list[ScoreRow]:
        """Per item ``{"score", "attributes", "transformed"?, "gate"?}`` from one pass."""
        opts = self.options(options, keywords)
        tags = list(unsafe) if unsafe is not None and self.capabilities.reads_unsafe_tags else None
        rows = output_rows(self.inner, self._scores(items, opts, tags))
        check_rewards([r["score"] for r in rows], "scoring")
        if opts.normalize:
            for row, s in zip(rows, self.normalize([r["score"] for r in rows])):
                row["score"] = s
        return rows

    def normalize(self, rewards: list) -> list:
        """``(r − mean) / std`` of the scalar (:func:`rewardlab.models.reward_model.normalized`)."""
        return normalized(self.spec.normalization, rewards)

    def spec_json(self) -> dict:
        return self.spec.to_json()

    def eval_sections(self, records, context: EvalContext) -> list[EvalSection]:
        """Every scaliser with CIs, length correlation, gate by source (and its plot), per-attribute fit."""
        report = self.multiobjective_report(
            records, context.output_dir / f"gate-{context.name}.png", context.batch_size, list(context.data_paths)
        )
        return [EvalSection("multiobjective", report, multiobjective_note(context.name, report))]

    def describe(self) -> dict:
        return {"attributes": self.attributes, "scaliser": self.inner.mo.scaliser, "debias": self.inner.mo.debias}

    def multiobjective_report(self, records, plot=None, batch_size: int = 32, rated: list[str] | None = None) -> dict:
        """:func:`evaluate_pairs` on ``records`` (every scaliser with CIs, length correlations, gate by source and
        its plot) plus ``attributes``: per-attribute MSE / Pearson / Spearman on the files ``rated`` when they carry
        ratings of this model's attributes (else ``attributes_note`` says why there are none)."""
        out = evaluate_pairs(self.inner, records, None, None, batch_size, plot=plot if self.has_gate else None)
        out["attributes"], note = self.attribute_report(rated or [], batch_size)
        if note:
            out["attributes_note"] = note
        return out

    def attribute_report(self, paths: list[str], batch_size: int = 32) -> tuple[dict, str | None]:
        """Per-attribute fit on the rated rows of ``paths`` (ratings rescaled with the model's recorded scales)."""
        scales = {a: Scale(*bounds) for a, bounds in self.inner.mo.scales.items()}
        items, reasons = [], []
        for path in paths:
            try:
                items += load_rated(path, tuple(self.attributes), "auto", scales).items
            except DataError as e:  # comparisons without ratings (or not of these attributes)
                reasons.append(f"{path}: no ratings of {', '.join(self.attributes)} ({str(e).splitlines()[0]})")
        if not items:
            return {}, "; ".join(reasons) or "no eval data files"
        pred = self.inner.score_items([(t.prompt, t.response) for t in items], batch_size=batch_size).rewards
        target, mask = targets_and_mask([t.ratings for t in items])
        return attribute_metrics(pred, target, mask, self.attributes), "; ".join(reasons) or None

    # ---- the server's batcher -----------------------------------------------------------------------
    def collate(self, features: list[dict], padding_side: str | None = None) -> dict[str, torch.Tensor]:
        """The inner model's batch plus ``unsafe`` ``(N,)`` bool (:func:`unsafe_column`)."""
        batch = self.inner.collate([{k: v for k, v in f.items() if k != UNSAFE_KEY} for f in features], padding_side)
        batch[UNSAFE_KEY] = unsafe_column(features)
        return batch

    def forward(self, **batch) -> torch.Tensor:
        rm = self.inner
        tags = batch.pop(UNSAFE_KEY, None)
        if rm.gate is not None:
            rewards, _, hidden = rm.features(batch)
        else:
            rewards, hidden = rm(**batch), None
        out = rm.outputs(rewards.cpu(), None if hidden is None else hidden.cpu(), None if tags is None else tags.cpu())
        gate = out.gate if out.gate is not None else torch.zeros_like(out.rewards)
        return torch.cat([out.score[:, None], out.rewards, out.transformed, gate], dim=1)

    def unpack(self, rows: list[list[float]]) -> dict:
        return unpack(rows, self.attributes, self.has_gate)


def unpack(rows: list[list[float]], attributes: list[str], has_gate: bool) -> dict:
    k = len(attributes)
    out = {
        "rewards": [r[0] for r in rows],
        "attributes": [dict(zip(attributes, r[1 : 1 + k])) for r in rows],
        "transformed": [dict(zip(attributes, r[1 + k : 1 + 2 * k])) for r in rows],
    }
    out["gate"] = [dict(zip(attributes, r[1 + 2 * k : 1 + 3 * k])) for r in rows] if has_gate else None
    return out


def multiobjective_note(name: str, report: dict) -> str:
    """One report line: accuracy [95% CI] and |Spearman(score, length)| under each scaliser."""
    parts = [
        f"{s} {a['accuracy']:.3f} [{a['ci95'][0]:.3f}, {a['ci95'][1]:.3f}] |ρ_len| "
        f"{report['abs_spearman_score_vs_length'][s]:.3f}"
        for s, a in report["accuracy"].items()
    ]
    return f"{name} (multi-objective): " + "; ".join(parts)
