"""The one scorer interface every model kind implements, with its capabilities **declared**.

A *scorer* turns ``(prompt, response)`` items into rewards. Seven kinds exist (a trained
:class:`~rewardlab.models.reward_model.RewardModel`, a :class:`~rewardlab.models.foreign.ForeignRewardModel`, a DPO
:class:`~rewardlab.models.implicit.ImplicitRewardModel`, a K-output
:class:`~rewardlab.multiobjective.serving.MultiObjectiveScorer`, a
:class:`~rewardlab.multiobjective.composed.ComposedLlama2Scorer`, an LLM :class:`~rewardlab.judges.judge.Judge`
and the critique judge over a :class:`~rewardlab.judges.cloud.CloudRewardModel`); callers never ask an object
whether it happens to have a method: they read :attr:`Scorer.capabilities` and call the methods below, which every
kind has (the base class answers for the kinds that have nothing to add).

* :class:`Capabilities` — what a kind returns and what it accepts (one frozen object per scorer);
* :class:`ScoreOptions` — the scoring options (batch size, normalisation, padding side, packing, token budget),
  typed once instead of as six keywords in every class;
* :class:`ScoreRow` — one item's answer (``score`` plus the parts a kind declares), what ``rewardlab score`` writes;
* :class:`EvalSection` — what a kind adds to ``rewardlab eval``'s report (a JSON section and/or a note).

A kind implements :meth:`Scorer.score_items` (pointwise kinds) or overrides :meth:`Scorer.score_comparisons`
(kinds that see a record's responses together), and is registered in :mod:`rewardlab.core.kinds`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Sequence, TypedDict

from rewardlab.core.contract_options import ContractOptions
from rewardlab.core.errors import ModelContractError, RewardlabError

Output = Literal["scalar", "attributes", "steps"]
OUTPUTS = ("scalar", "attributes", "steps")


@dataclass(frozen=True)
class Capabilities:
    """What a scorer kind does, declared once (callers read these fields; nothing probes for methods)."""

    # what score_rows gives besides the scalar: "scalar" (nothing), "attributes" (per-attribute rewards, K-output
    # and custom-code models), "steps" (per-step scores, process verifiers)
    output: Output = "scalar"
    # True: each (prompt, response) is scored on its own (score(items)); identical items get identical rewards, so
    # callers may deduplicate. False: score_comparisons(records) sees a record's responses together (LLM judges)
    pointwise: bool = True
    # True: the packed (padding-free) path is used where it covers the architecture (--packing)
    packs: bool = False
    # why --packing is refused for this scorer (said before any work); None: packing is accepted (or ignored)
    packing_refusal: str | None = None
    # the score reads each prompt's `unsafe` tag (the Llama 2 rule); a scorer without it refuses `unsafe: true`
    reads_unsafe_tags: bool = False
    # the reward server's batcher can run it: encoder.encode → collate → forward (tensor rows) → unpack
    batched_forward: bool = True
    # forward() answers each text with a row [score, parts...] (unpack() names the parts), not one float
    forward_rows: bool = False

    def __post_init__(self):
        if self.output not in OUTPUTS:
            raise ValueError(f"Capabilities.output must be one of {', '.join(OUTPUTS)}, not {self.output!r}")
        if self.packs and self.packing_refusal is not None:
            raise ValueError("a scorer that packs cannot also refuse --packing")


@dataclass(frozen=True)
class ScoreOptions:
    """How to score (the same for every kind; a kind that cannot honour one says so in its capabilities)."""

    batch_size: int = 16  # texts per forward (length-sorted batches)
    normalize: bool = False  # apply the model's saved (r - mean) / std
    padding_side: str | None = None  # override the model's padding side (the score does not change)
    packing: bool | None = None  # padding-free rows; None: what the scorer was loaded with (--packing)
    token_budget: int | None = None  # pack prompt groups into rows of this many tokens (None: a row per group)

    @classmethod
    def build(cls, options: "ScoreOptions | None" = None, keywords: dict | None = None) -> "ScoreOptions":
        """``options`` with ``keywords`` (field names) replaced; an unknown keyword is a TypeError naming it."""
        opts = options if options is not None else cls()
        if not isinstance(opts, cls):
            raise TypeError(f"score options must be a ScoreOptions, not {type(opts).__name__} (pass batch_size=...)")
        if not keywords:
            return opts
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(keywords) - names)
        if unknown:
            raise TypeError(f"unknown scoring option(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}")
        return dataclasses.replace(opts, **keywords)


class ScoreRow(TypedDict, total=False):
    """One item's answer: ``score`` always; the parts a kind declares (``Capabilities.output``) besides it."""

    score: float
    attributes: dict[str, float]  # output "attributes": reward per attribute
    transformed: dict[str, float]  # K-output models: the debiased attribute rewards the scaliser read
    gate: dict[str, float]  # K-output models with a gate: its weights
    steps: list[float]  # output "steps": one score per step


@dataclass(frozen=True)
class EvalContext:
    """What ``rewardlab eval`` tells a scorer when it asks for its report sections."""

    name: str  # the result column's name
    output_dir: Path  # where the report (and any plot) goes
    batch_size: int = 32
    data_paths: tuple[str, ...] = ()  # the evaluated files (a kind may read more from them, e.g. ratings)


@dataclass(frozen=True)
class EvalSection:
    """A part of one model's result in ``rewardlab eval``: ``result[key] = data`` (when key is set) and a note."""

    key: str | None = None
    data: Any = None
    note: str | None = None


@dataclass(frozen=True)
class LoadRequest:
    """How the loader (:func:`rewardlab.scoring.loader.load_reward_model`) asks a kind to open a model."""

    options: ContractOptions = dataclasses.field(default_factory=ContractOptions)  # foreign / implicit contracts
    torch_dtype: Any = None  # the weights' dtype (None: float32)
    packing: bool = False  # the --packing load option (kinds that cannot pack refuse it before loading weights)
    trust_modified: bool = False  # load despite a hash mismatch (reported in modified_files)
    expect: dict | None = None  # rewardlab.json fields that must have these values (RewardModel.load)


class Scorer:
    """The base of every scorer kind. Subclasses set :attr:`capabilities` (a class or instance attribute) and
    implement :meth:`score_items` (pointwise) or :meth:`score_comparisons` (record-wise)."""

    capabilities: Capabilities = Capabilities()
    kind: str = "scorer"  # the registry name (rewardlab.core.kinds)
    # how a model trained elsewhere is scored (rewardlab.models.foreign.Contract: foreign, implicit); None: fixed by its kind
    contract: Any = None
    modified_files: Sequence[str] = ()  # files loaded despite a hash mismatch (--trust-modified), for the reports
    name: str | None = None  # a display name (judges); None: the path it was loaded from
    tokenizer: Any = None  # the tokenizer the provenance records (None: none)
    placement: dict | None = (
        None  # --device / --dtype as resolved when loaded (rewardlab.core.device); None: not placed
    )

    # ---- opening (the registry, rewardlab.core.kinds, calls these) ----------------------------------
    @classmethod
    def open(cls, path: str, request: LoadRequest) -> "Scorer":
        """Load the model at ``path`` as this kind."""
        raise NotImplementedError(f"{cls.__name__} is not opened through the loader")

    @classmethod
    def inspect(cls, path: str, options: ContractOptions) -> str:
        """``rewardlab inspect``: the contract this kind scores ``path`` with and why (loading as little as it can)."""
        raise NotImplementedError(f"{cls.__name__} has no inspect")

    # ---- scoring ---------------------------------------------------------------------------------------
    def score(
        self,
        items: Sequence[tuple[Any, str]],
        options: ScoreOptions | None = None,
        /,
        *,
        unsafe: Sequence[bool] | None = None,
        **keywords,
    ) -> list[float]:
        """One reward per ``(prompt, response)``, in order. ``options`` (or its fields as keywords, e.g.
        ``batch_size=8``) say how; ``unsafe`` (one tag per item) is read only by kinds that declare
        ``reads_unsafe_tags``. Every reward is finite (:func:`rewardlab.core.finite.check_rewards`)."""
        from rewardlab.core.finite import check_rewards  # lazy: torch, imported when scoring, not by --help

        opts = self.options(options, keywords)
        items = list(items)
        tags = list(unsafe) if unsafe is not None and self.capabilities.reads_unsafe_tags else None
        out = [float(x) for x in self.score_items(items, opts, tags)]
        check_rewards(out, "scoring")
        return self.normalize(out) if opts.normalize else out

    def score_items(self, items: list, opts: ScoreOptions, unsafe: list[bool] | None) -> list[float]:
        """The kind's own scoring of ``items`` (raw rewards; :meth:`score` checks and normalises them)."""
        raise RewardlabError(
            f"{type(self).__name__} scores a record's responses together (score_comparisons), not one at a time"
        )

    def score_rows(
        self,
        items: Sequence[tuple[Any, str]],
        options: ScoreOptions | None = None,
        /,
        *,
        unsafe: Sequence[bool] | None = None,
        **keywords,
    ) -> list[ScoreRow]:
        """Per item a :class:`ScoreRow`: ``score`` plus the parts ``capabilities.output`` declares."""
        return [{"score": s} for s in self.score(items, options, unsafe=unsafe, **keywords)]

    def score_comparisons(
        self, records: Sequence[Any], options: ScoreOptions | None = None, /, **keywords
    ) -> list[list[float]]:
        """Rewards for every response of every record, ``[[r_0, r_1, ...], ...]`` (each record's ``unsafe``
        tag passed on to kinds that read it)."""
        records = list(records)
        flat = [(c.prompt, r) for c in records for r in c.responses]
        unsafe = [bool(c.meta.get("unsafe", False)) for c in records for _ in c.responses]
        rewards = self.score(flat, options, unsafe=unsafe, **keywords)
        out, i = [], 0
        for c in records:  # one list per record, its responses in order
            out.append(rewards[i : i + c.k])
            i += c.k
        return out

    def options(self, options: ScoreOptions | None = None, keywords: dict | None = None) -> ScoreOptions:
        """The options of one call; ``--packing`` refused here (before any work) by kinds that declare a refusal."""
        opts = ScoreOptions.build(options, keywords)
        if opts.packing and self.capabilities.packing_refusal is not None:
            raise ModelContractError(self.capabilities.packing_refusal)
        return opts

    def normalize(self, rewards: list) -> list:
        """``(r - mean) / std`` with the model's saved statistics; a kind without any refuses."""
        raise ModelContractError(f"{type(self).__name__} has no normalisation statistics")

    # ---- what the reports and the server read -----------------------------------------------------------
    @property
    def attributes(self) -> list[str]:
        """The names of the per-attribute outputs (``capabilities.output == "attributes"``); else empty."""
        return []

    def describe(self) -> dict:
        """What the report records about this scorer besides its spec (judge settings, contract, scaliser)."""
        return {"contract": self.contract.to_json()} if self.contract is not None else {}

    def spec_json(self) -> dict | None:
        """The scorer's ``rewardlab.json`` as loaded (backbone, data fingerprint, versions); None: it has none."""
        return None

    def eval_sections(self, records: Sequence[Any], context: EvalContext) -> list[EvalSection]:
        """What ``rewardlab eval`` adds for this scorer after scoring ``records`` (a foreign model: which parts
        of its contract were inferred)."""
        return [EvalSection(note=self.contract.summary())] if self.contract is not None else []

    def text_encoder(self) -> Any:
        """The :class:`rewardlab.models.reward_model.TextEncoder` that turns a (prompt, response) into the tokens this scorer
        reads (its ``max_length`` and truncation rule), or None when it has no single one (judges, compositions)."""
        return None

    def unreadable_verdicts(self, records: Sequence[Any]) -> list[bool] | None:
        """One flag per record of the last :meth:`score_comparisons`: no readable verdict (an LLM judge's output
        that could not be parsed); None for a scorer without verdicts (every reward model)."""
        return None

    def unpack(self, values: list) -> dict:
        """The reward server's answer fields for the forward's values: ``{"rewards": [...]}`` (kinds with
        ``forward_rows`` add their named parts)."""
        return {"rewards": values}
