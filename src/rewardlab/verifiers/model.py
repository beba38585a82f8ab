"""The verifier model: a standard ``AutoModelForTokenClassification`` plus its :class:`VerifierSpec`.

A saved verifier is a plain transformers token-classification directory (so plain transformers reproduces the
per-token outputs, and vLLM serves it through ``token_classify``) with ``rewardlab.json`` (``kind: "verifier"``)
recording the objective, head, label scheme, step format (marker, prompt separator), default aggregation, the
template and the step rule, plus the sha256 of every scoring file (:mod:`rewardlab.core.integrity`, checked at load).

Scoring is **one forward per solution**: with a causal backbone the output at a step's marker sees only the
prompt and the steps up to it, so it equals what a forward over that prefix alone gives (TRL's documented
inference runs one forward per prefix); :meth:`VerifierModel.score_per_prefix` is that loop, kept for the test
and the benchmark. With a bidirectional encoder (MiniLM) a step's score also sees the later steps: one forward is
then a different model from the per-prefix one, and the spec records ``causal: false``.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForTokenClassification, AutoTokenizer

from rewardlab.core.atomic import atomic_write_text, readable_like_the_rest
from rewardlab.core.errors import ModelContractError
from rewardlab.core.finite import check_weights
from rewardlab.core.integrity import SEAL, file_hashes, read_rewardlab_json, seal, verify_model_dir
from rewardlab.core.scorer import Capabilities, LoadRequest, ScoreOptions, Scorer
from rewardlab.verifiers.aggregate import STEP_AGGREGATIONS, aggregate, check_aggregation
from rewardlab.verifiers.losses import IGNORE, correct_probability
from rewardlab.verifiers.packed import pack_solutions, packed_logits, packed_support
from rewardlab.verifiers.records import STEP_RULE, prompt_text, split_lines
from rewardlab.verifiers.steps import Encoded, StepFormat, encode, marker_id

SPEC_FILE = "rewardlab.json"
VERIFIER_KIND = "verifier"
TEMPLATE = "{prompt}{prompt_separator}{step_1}{marker}{step_2}{marker}…{step_K}{marker}"


@dataclass
class VerifierSpec:
    objective: str = "prm"  # orm | prm
    head: str = "bce"  # orm_token | orm_mean_logit | bce | two_class | ternary (rewardlab.verifiers.losses.HEADS)
    label_scheme: str = "binary"  # binary | ternary | soft (PRM); the ORM's outcome is 0/1
    step_format: dict = field(default_factory=lambda: StepFormat().to_json())
    aggregation: str = "min"  # the default solution score (rewardlab.verifiers.aggregate)
    max_length: int = 1024
    causal: bool = True
    template: str = TEMPLATE
    step_rule: str = STEP_RULE  # how score(items) splits a response into steps
    kind: str = VERIFIER_KIND
    file_hashes: dict | None = None
    trained_elsewhere: bool = False  # a plain token-classification PRM loaded without rewardlab.json

    @property
    def normalization(self):
        """A verifier has no reward statistics to normalise with (``score --normalize`` asks before scoring)."""
        raise ModelContractError("a verifier's scores are probabilities: --normalize does not apply")

    @property
    def fmt(self) -> StepFormat:
        return StepFormat(**self.step_format)


def collate(encoded: list[Encoded], labels, outcomes, pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded batch of encoded solutions: ``input_ids``/``attention_mask`` [B, T]; ``labels`` [B, T]
    (a step's label at its marker token, :data:`IGNORE` elsewhere, floats kept); ``completion_mask`` [B, T]
    (the tokens of step 1 … the last kept marker: what an ORM trains on); ``outcome`` [B] (NaN when unknown)."""
    T = max(len(e.ids) for e in encoded)
    B = len(encoded)
    ids = torch.full((B, T), pad_id, dtype=torch.long)
    attn = torch.zeros((B, T), dtype=torch.long)
    lab = torch.full((B, T), IGNORE, dtype=torch.float32)
    comp = torch.zeros((B, T), dtype=torch.bool)
    for b, e in enumerate(encoded):
        ids[b, : len(e.ids)] = torch.tensor(e.ids)
        attn[b, : len(e.ids)] = 1
        comp[b, e.completion_start : e.end] = True
        for k, p in enumerate(e.step_positions):
            if p is not None and labels is not None and labels[b] is not None and labels[b][k] is not None:
                lab[b, p] = float(labels[b][k])
    out = torch.tensor([float("nan") if o is None else float(o) for o in (outcomes or [None] * B)])
    return {"input_ids": ids, "attention_mask": attn, "labels": lab, "completion_mask": comp, "outcome": out}


class VerifierModel(torch.nn.Module, Scorer):
    """An ORM or a PRM: ``model`` (a token-classification transformer), ``tok`` and ``spec``; the scorer kind
    ``verifier`` (per-step output)."""

    kind = VERIFIER_KIND
    capabilities = Capabilities(
        output="steps",
        packing_refusal="--packing: a verifier scores one forward per solution (no packed path)",
        batched_forward=False,
    )

    check_aggregation = staticmethod(check_aggregation)  # an aggregation's name → itself; ValueError listing them

    def __init__(self, model, tok, spec: VerifierSpec):
        super().__init__()
        self.model, self.tok, self.spec = model, tok, spec
        self.tokenizer = tok
        self.mid = marker_id(tok, spec.fmt)
        self.modified_files: list[str] = []
        self.packing = False  # the packed prefix-shared forward (rewardlab.verifiers.packed); set by use_packing

    def use_packing(self, mode: str) -> str:
        """``mode``: ``auto`` (packed where :func:`~rewardlab.verifiers.packed.packed_support` covers the backbone),
        ``on`` (refuse otherwise: :class:`ModelContractError`) or ``off``. Returns why packing is off ("" when on)."""
        if mode not in ("auto", "on", "off"):
            raise ModelContractError(f"--packing must be auto, on or off, got {mode!r}")
        ok, why = packed_support(self.model, self.spec.causal, self.spec.max_length)
        if mode == "on" and not ok:
            raise ModelContractError(f"--packing on: the packed prefix-shared path does not cover this model: {why}")
        self.packing = ok and mode != "off"
        return "" if self.packing else (why or "--packing off")

    # --- forward ------------------------------------------------------------------------------------------
    def forward(self, input_ids, attention_mask) -> torch.Tensor:
        """[B, T] logits (one-output heads) or [B, T, C]."""
        logits = self.model(input_ids=input_ids, attention_mask=attention_mask).logits.float()
        return logits[..., 0] if logits.shape[-1] == 1 else logits

    def encode(self, prompt, steps, labels=None, name="") -> Encoded:
        return encode(self.tok, self.spec.fmt, self.mid, prompt_text(prompt), steps, labels, self.spec.max_length, name)

    def batch(self, encoded: list[Encoded], labels=None, outcomes=None, keys=None) -> dict:
        """The padded batch of :func:`collate` on the model's device; with :attr:`packing` on, also ``packed``: the
        packed layout (:func:`~rewardlab.verifiers.packed.pack_solutions`; ``keys[b]``: solution b's prompt, the
        same key = one prefix-shared group; default: each solution alone)."""
        device = next(self.model.parameters()).device
        b = {k: v.to(device) for k, v in collate(encoded, labels, outcomes, self.tok.pad_token_id).items()}
        if self.packing:
            keys = keys if keys is not None else list(range(len(encoded)))
            b["packed"] = pack_solutions(encoded, keys, self.tok.pad_token_id).to(device)
        return b

    def batch_logits(self, b: dict, labelled_only: bool = False) -> torch.Tensor:
        """The logits of a :meth:`batch` ([B, T] one-output heads, else [B, T, C]): from the packed forward when the
        batch carries ``packed``, else :meth:`forward` on the padded rows; the same values either way (tested ≤ 1e-5).
        ``labelled_only`` (a PRM's training step): the packed forward computes the positions with a step label only
        (its last layer at those tokens alone; 0 elsewhere, where the PRM losses read nothing)."""
        if "packed" not in b:
            return self(b["input_ids"], b["attention_mask"])
        reads = (b["labels"] != IGNORE) if labelled_only else None
        logits = packed_logits(self.model, b["packed"], reads)
        return logits[..., 0] if logits.shape[-1] == 1 else logits

    # --- scoring ------------------------------------------------------------------------------------------
    @torch.no_grad()
    def score_steps(self, solutions, aggregation: str | None = None, batch_size: int = 16) -> list[dict]:
        """``solutions``: (prompt, [steps]) pairs → per solution ``{"score", "aggregation", "step_scores",
        "token_probs", "steps_scored"}``: one forward per solution (batched, length-sorted; with :attr:`packing`, the solutions of one prompt
        batched together and their prompt computed once), P(correct) at each
        step's marker and at every completion token; ``score`` by ``aggregation`` (default: the model's)."""
        agg = check_aggregation(aggregation or self.spec.aggregation)
        was = self.training
        self.eval()
        enc = [self.encode(p, s, name=f"solution {i}") for i, (p, s) in enumerate(solutions)]
        keys = [prompt_text(p) for p, _ in solutions]
        # padded: length-sorted batches; packed: the solutions of one prompt together, so their prompt is shared
        order = sorted(range(len(enc)), key=(lambda i: (keys[i], i)) if self.packing else (lambda i: len(enc[i].ids)))
        out: list[dict | None] = [None] * len(enc)
        try:
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                b = self.batch([enc[i] for i in idx], keys=[keys[i] for i in idx])
                probs = correct_probability(self.batch_logits(b), self.spec.head).cpu()
                for row, i in enumerate(idx):
                    e = enc[i]
                    out[i] = self.read_scores(probs[row], e.step_positions, e.completion_start, e.end, agg)
        finally:
            self.train(was)
        return out

    def read_scores(self, probs, step_positions, completion_start: int, end: int, aggregation: str) -> dict:
        """One solution's ``{"score", "aggregation", "step_scores", "token_probs", "steps_scored"}`` from its row
        of P(correct) ``probs`` [T] (:func:`~rewardlab.verifiers.losses.correct_probability`): the step scores at
        the markers (None: cut off), the completion's token probabilities, ``score`` by ``aggregation`` (None:
        every step, or token, lies beyond max_length; the evaluators count those)."""
        steps = [float(probs[p]) if p is not None else None for p in step_positions]
        tokens = probs[completion_start:end].tolist()
        kept = [s for s in steps if s is not None]
        scoreable = kept if aggregation in STEP_AGGREGATIONS else tokens
        return {
            "score": aggregate(aggregation, kept, tokens) if scoreable else None,
            "aggregation": aggregation,
            "step_scores": steps,
            "token_probs": tokens,
            "steps_scored": len(kept),
        }

    def correct_probability(self, logits: torch.Tensor) -> torch.Tensor:
        """P(correct) per token from :meth:`forward`'s logits ([B, T] or [B, T, C] → [B, T]), by the model's head."""
        return correct_probability(logits, self.spec.head)

    # --- vLLM's token_classify (rewardlab.verifiers.pooling; served on /pooling by rewardlab.serve.verifier) -----
    def pooling_features(self, prompt, response) -> dict:
        """One input's tokens and step ends: ``prompt`` None and a text, or a prompt and its steps (a list) or
        its response (a text, one step per non-empty line); refused whole when it does not fit max_length."""
        from rewardlab.verifiers.pooling import features  # lazy: only the server and its tests ask

        return features(self, prompt, response)

    def token_rows(self, feats: list[dict], activation: bool = True, aggregation: str | None = None) -> list[dict]:
        """Per input of :meth:`pooling_features`: per-token rows [T, C] (σ / softmax, or the raw logits), and for
        a solution its step rows, step scores and their aggregate (default: the model's), named."""
        from rewardlab.verifiers.pooling import token_rows  # lazy: only the server and its tests ask

        return token_rows(self, feats, activation, check_aggregation(aggregation or self.spec.aggregation))

    @torch.no_grad()
    def score_per_prefix(self, prompt, steps) -> list[float | None]:
        """TRL's documented inference: one forward per step prefix, the step's score at the prefix's last
        marker (for the equality test and the benchmark; :meth:`score_steps` needs one forward)."""
        was = self.training
        self.eval()
        try:
            out = []
            for k in range(1, len(steps) + 1):
                e = self.encode(prompt, steps[:k])
                b = self.batch([e])
                probs = correct_probability(self(b["input_ids"], b["attention_mask"]), self.spec.head)
                p = e.step_positions[-1]  # None: the prefix's last marker lies beyond max_length
                out.append(None if p is None else float(probs[0, p]))
            return out
        finally:
            self.train(was)

    def aggregated(self, items, aggregation: str | None = None, batch_size: int = 16) -> list[dict]:
        """(prompt, response) pairs, each response split into steps one per non-empty line (``step_rule``), scored
        by ``aggregation`` (default: the model's): per item ``score``, ``aggregation``, ``step_rule``, ``steps``."""
        solutions = [(p, split_lines(r)) for p, r in items]
        for i, (_, s) in enumerate(solutions):
            if not s:
                raise ModelContractError(f"item {i}: the response has no non-empty line (no step to score)")
        rows = self.score_steps(solutions, aggregation, batch_size)
        cut = [i for i, r in enumerate(rows) if r["score"] is None]
        if cut:
            raise ModelContractError(
                f"item {cut[0]} (and {len(cut) - 1} more): every step lies beyond the model's max_length "
                f"{self.spec.max_length}; nothing to score"
            )
        return [
            {"score": r["score"], "aggregation": r["aggregation"], "step_rule": STEP_RULE, "steps": r["step_scores"]}
            for r in rows
        ]

    # --- the scorer interface (rewardlab.core.scorer) ------------------------------------------------
    def score_items(self, items: list, opts: ScoreOptions, unsafe=None) -> list[float]:
        """The default aggregation's score per (prompt, response) (:meth:`aggregated`); padding side and token
        budget do not change a verifier's scores."""
        return [r["score"] for r in self.aggregated(items, None, opts.batch_size)]

    def score_rows(self, items, options: ScoreOptions | None = None, /, *, unsafe=None, **keywords) -> list[dict]:
        """Per item ``score`` (the default aggregation), ``steps`` (per-step scores), ``aggregation``, ``step_rule``."""
        opts = self.options(options, keywords)
        if opts.normalize:
            self.normalize([])
        return self.aggregated(list(items), None, opts.batch_size)

    def normalize(self, rewards: list) -> list:
        raise ModelContractError("a verifier's scores are probabilities: --normalize does not apply")

    def spec_json(self) -> dict | None:
        return asdict(self.spec)

    @classmethod
    def open(cls, path: str, request: LoadRequest) -> "VerifierModel":
        if request.packing:
            raise ModelContractError(cls.capabilities.packing_refusal)
        return cls.load(path, torch_dtype=request.torch_dtype or torch.float32, trust_modified=request.trust_modified)

    @classmethod
    def inspect(cls, path: str, options) -> str:
        spec = json.loads((Path(path) / SPEC_FILE).read_text())
        keys = (
            "objective",
            "head",
            "label_scheme",
            "step_format",
            "aggregation",
            "template",
            "step_rule",
            "max_length",
        )
        lines = [f"scoring contract for {path}: a verifier ({SPEC_FILE}, checked on load)"]
        return "\n".join(lines + [f"  {k:<19} {spec.get(k)!r}" for k in keys])

    # --- save / load --------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        check_weights(self.model.state_dict().items(), f"refusing to save {path}")
        self.model.save_pretrained(path, safe_serialization=True)
        self.tok.save_pretrained(path)
        readable_like_the_rest(path)
        spec = asdict(self.spec)
        spec["file_hashes"] = file_hashes(path)
        # sealed like every rewardlab.json (rewardlab.core.integrity.seal): an edited aggregation, marker or
        # template is named on load, not scored silently
        atomic_write_text(path / SPEC_FILE, json.dumps(seal(spec), indent=2, ensure_ascii=False) + "\n")

    @classmethod
    def load(cls, path: str | Path, *, torch_dtype=torch.float32, trust_modified: bool = False, **_) -> "VerifierModel":
        path = Path(path)
        warn = lambda m: print(m, file=sys.stderr)  # noqa: E731
        raw, sealed_problems = read_rewardlab_json(path, trust_modified=trust_modified, warn=warn)
        raw = {k: v for k, v in raw.items() if k != SEAL}
        try:
            spec = VerifierSpec(**raw)
            check_aggregation(spec.aggregation)
        except (TypeError, ValueError) as e:
            raise ModelContractError(f"{path / SPEC_FILE}: not a verifier spec: {e}") from None
        modified = sealed_problems + list(
            verify_model_dir(path, spec.file_hashes, trust_modified=trust_modified, warn=warn)
        )
        tok = AutoTokenizer.from_pretrained(path)
        model = AutoModelForTokenClassification.from_pretrained(path, dtype=torch_dtype)
        check_weights(model.state_dict().items(), f"{path}: refusing to load")
        vm = cls(model.eval(), tok, spec)
        vm.modified_files = modified
        return vm

    @classmethod
    def load_plain(cls, path: str | Path, marker: str = "\n", aggregation: str = "min", **_) -> "VerifierModel":
        """A token-classification PRM trained elsewhere (no ``rewardlab.json``): 1 output → σ, 2 → class 1 (TRL),
        3 → class +1; the marker (default ``"\\n"``, TRL's separator) is checked like any other."""
        tok = AutoTokenizer.from_pretrained(path)
        model = AutoModelForTokenClassification.from_pretrained(path)
        heads = {1: "bce", 2: "two_class", 3: "ternary"}
        if model.config.num_labels not in heads:
            raise ModelContractError(
                f"{path}: a token-classification PRM needs 1, 2 or 3 labels, not {model.config.num_labels}"
            )
        spec = VerifierSpec(
            head=heads[model.config.num_labels],
            label_scheme="ternary" if model.config.num_labels == 3 else "binary",
            step_format=StepFormat(marker, marker).to_json(),
            aggregation=aggregation,
            max_length=getattr(tok, "model_max_length", 1024) if getattr(tok, "model_max_length", 0) < 10**6 else 1024,
            causal=not getattr(model.config, "is_encoder_decoder", False) and "Bert" not in type(model).__name__,
            trained_elsewhere=True,
        )
        return cls(model.eval(), tok, spec)


class PlainTokenClassificationPRM(VerifierModel):
    """The scorer kind ``token-classification-prm``: a token-classification PRM trained elsewhere (no
    ``rewardlab.json``), opened with :meth:`VerifierModel.load_plain`; what it assumed is printed."""

    kind = "token-classification-prm"

    @classmethod
    def open(cls, path: str, request: LoadRequest) -> "VerifierModel":
        if request.packing:
            raise ModelContractError(cls.capabilities.packing_refusal)
        vm = cls.load_plain(path)
        print(
            f"{path}: a token-classification PRM without rewardlab.json: {vm.spec.head} head, marker "
            f"{vm.spec.fmt.marker!r} (checked per solution), aggregation {vm.spec.aggregation}",
            file=sys.stderr,
        )
        return vm

    @classmethod
    def inspect(cls, path: str, options) -> str:
        return (
            f"scoring contract for {path}: a token-classification PRM trained elsewhere (no {SPEC_FILE}): "
            "1 output → sigmoid, 2 → class 1, 3 → class +1; marker '\\n' (checked per solution); aggregation min"
        )


def is_plain_token_classifier(path: str | Path) -> bool:
    """A local directory whose config names a ``*ForTokenClassification`` architecture."""
    p = Path(path)
    if not (p / "config.json").is_file():
        return False
    try:
        archs = AutoConfig.from_pretrained(p).architectures or []
    except (OSError, ValueError):
        return False
    return any(a.endswith("ForTokenClassification") for a in archs)
