"""Llama 2's rule over two separate reward models, as one model directory every command loads.

``rewardlab compose --safety S --helpfulness H --output-dir OUT [--threshold 0.15] [--reference-data FILE]`` writes
``OUT/rewardlab.json`` (no weights of its own)::

    {"kind": "llama2-composed", "format_version": 1,
     "safety":      {"path": "<S relative to OUT>", "rewardlab_json_sha256": "…", "attribute": null, "squash": "sigmoid"},
     "helpfulness": {"path": "…", "rewardlab_json_sha256": "…", "attribute": null, "squash": "sigmoid"},
     "scaliser": {"type": "llama2", "threshold": 0.15, "whiten_mean": …, "whiten_std": …, …},
     "normalization": null}

Each member is a rewardlab model directory: a scalar model (its reward, squashed with ``sigmoid`` so that
``R ∈ (0, 1)`` as in Llama 2, which compares ``R_s`` with 0.15 and whitens ``logit(R)``), or a K-output model with
``--safety-attribute``/``--helpfulness-attribute`` naming the output to read (already in [0, 1]; ``squash: none``).
The score is :class:`rewardlab.multiobjective.scalarise.Llama2Rule` over ``(R_s, R_h)``: ``R = R_s`` where the prompt is
tagged unsafe or ``R_s < threshold``, else ``R_h``; then ``logit(R)``, whitened with the mean/std of ``logit(R)``
measured on ``--reference-data`` when it is given.

Integrity: the member's ``rewardlab.json`` sha256 is recorded (that file in turn records the hashes of the member's
scoring files, checked when the member loads), so a retrained or edited member stops the load naming it;
``--trust-modified`` loads anyway (warned, listed in ``modified_files``).

``rewardlab.scoring.loader.load_reward_model`` returns a :class:`ComposedLlama2Scorer` for such a directory: score, eval,
probe and normalize use it like any scorer (``score``, ``score_rows``, ``score_comparisons``, ``normalize``), and
``rewardlab serve`` batches it like any model: each text is encoded for both members (``encoder``), ``collate``
pads each member's part (and the request's ``unsafe`` tag, :data:`UNSAFE_KEY`), and ``forward`` answers rows
``[score, R_s, R_h]`` (``/v1/score`` adds ``attributes`` {safety, helpfulness}; a request's ``"unsafe": true`` gives
``R_s`` whatever its value, else the threshold decides).
"""

from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch

from rewardlab.core.atomic import atomic_write_text
from rewardlab.core.errors import ModelContractError, RewardlabError
from rewardlab.core.finite import check_rewards
from rewardlab.core.integrity import SEAL, parse_rewardlab_json, read_rewardlab_json
from rewardlab.core.kinds import kind_of
from rewardlab.core.scorer import Capabilities, LoadRequest, ScoreOptions, Scorer, ScoreRow
from rewardlab.core.specfields import checked_fields
from rewardlab.models.reward_model import SPEC_FILE, normalized, sealed_json
from rewardlab.multiobjective.scalarise import Llama2Rule, scaliser_from_json
from rewardlab.multiobjective.serving import UNSAFE_KEY, unsafe_column
from rewardlab.scoring.loader import load_reward_model

COMPOSED_KIND = "llama2-composed"
FORMAT_VERSION = 1
NAMES = ("safety", "helpfulness")


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class ComposedSpec:
    """What a composed directory's ``rewardlab.json`` holds (see the module docstring)."""

    safety: dict
    helpfulness: dict
    scaliser: dict
    normalization: dict | None = None
    kind: str = COMPOSED_KIND
    format_version: int = FORMAT_VERSION
    multiobjective: dict = field(default_factory=lambda: {"attributes": list(NAMES)})

    def to_json(self) -> dict:
        return {
            "kind": self.kind,
            "format_version": self.format_version,
            "safety": self.safety,
            "helpfulness": self.helpfulness,
            "scaliser": self.scaliser,
            "normalization": self.normalization,
            "multiobjective": self.multiobjective,
        }

    @classmethod
    def from_json(cls, d: dict, source: str) -> "ComposedSpec":
        """The composition in ``d`` (read from ``source``): each section of its type and values (members, the
        Llama 2 rule over the two roles with a finite threshold and whitening), else :class:`ModelContractError`
        naming the field."""
        if isinstance(d, dict):
            d = {k: v for k, v in d.items() if k != SEAL}
        spec = cls(**checked_fields(cls, d, source))
        if spec.kind != COMPOSED_KIND:
            raise ModelContractError(f"{source}: kind must be {COMPOSED_KIND!r}, got {spec.kind!r}")
        if spec.format_version > FORMAT_VERSION:
            raise ModelContractError(f"{source}: format_version {spec.format_version} is newer than this rewardlab")
        for name in NAMES:
            checked_fields(Member, getattr(spec, name), source, name)
            if getattr(spec, name)["squash"] not in ("sigmoid", "none"):
                raise ModelContractError(f"{source}: {name}.squash must be sigmoid or none")
        rule = scaliser_from_json(spec.scaliser, source, "scaliser")
        if rule.kind != "llama2" or (rule.safety, rule.helpfulness) != NAMES:
            raise ModelContractError(
                f"{source}: scaliser must be the llama2 rule with safety 'safety' and helpfulness 'helpfulness'"
            )
        if spec.multiobjective != {"attributes": list(NAMES)}:
            raise ModelContractError(f'{source}: multiobjective must be {{"attributes": {list(NAMES)}}}')
        return spec


@dataclass
class Member:
    """A member's record in a composed ``rewardlab.json``."""

    path: str
    squash: str
    rewardlab_json_sha256: str | None = None
    attribute: str | None = None


def write_composed_spec(out: Path, spec: dict) -> Path:
    """Write ``out/rewardlab.json`` holding composition ``spec``, checked and sealed; atomic."""
    ComposedSpec.from_json(spec, str(out / SPEC_FILE))
    atomic_write_text(out / SPEC_FILE, sealed_json(spec))
    return out / SPEC_FILE


class _Member:
    """One member model and how its scalar becomes ``R ∈ (0, 1)``."""

    def __init__(self, scorer, attribute: str | None, squash: str):
        self.scorer, self.attribute, self.squash = scorer, attribute, squash
        if attribute is not None and attribute not in scorer.attributes:
            raise RewardlabError(
                f"attribute {attribute!r} is not an output of this model "
                f"({', '.join(scorer.attributes) or 'a scalar model'})"
            )

    def values(self, items, batch_size: int) -> torch.Tensor:
        if self.attribute is not None:
            rows = self.scorer.score_rows(items, batch_size=batch_size)
            r = torch.tensor([row["attributes"][self.attribute] for row in rows], dtype=torch.float64)
        else:
            r = torch.tensor(self.scorer.score(items, batch_size=batch_size), dtype=torch.float64)
        return torch.sigmoid(r) if self.squash == "sigmoid" else r


def _load_member(path: Path, torch_dtype, trust_modified: bool) -> Scorer:
    """A member: any trained kind the registry opens (rewardlab.core.kinds), not another composition."""
    if kind_of(str(path)) == COMPOSED_KIND:
        raise ModelContractError(
            f"{path}: a member of a composed model must be a trained model, not another composition"
        )
    return load_reward_model(str(path), torch_dtype=torch_dtype, trust_modified=trust_modified, say=None)


PACKING_REFUSAL = "--packing does not cover a composed Llama 2 model (two models); drop --packing"


class ComposedLlama2Scorer(torch.nn.Module, Scorer):
    """Scorer kind ``llama2-composed``: two members under the Llama 2 rule (reads each prompt's unsafe tag)."""

    kind = COMPOSED_KIND
    capabilities = Capabilities(
        output="attributes", packing_refusal=PACKING_REFUSAL, reads_unsafe_tags=True, forward_rows=True
    )

    def __init__(self, spec: ComposedSpec, safety: _Member, helpfulness: _Member, modified_files: list[str]):
        super().__init__()
        self.members = torch.nn.ModuleDict({"safety": safety.scorer, "helpfulness": helpfulness.scorer})
        # what the server checks and moves: both members' weights (config: the safety member's)
        self.model = torch.nn.ModuleDict({"safety": safety.scorer.model, "helpfulness": helpfulness.scorer.model})
        self.model.config = safety.scorer.model.config
        self.encoder = _PairEncoder(safety.scorer, helpfulness.scorer)
        self.spec, self.safety, self.helpfulness = spec, safety, helpfulness
        self.source = SPEC_FILE  # where the spec was read (load)
        self.modified_files = modified_files
        self.rule = Llama2Rule(**{k: v for k, v in spec.scaliser.items() if k != "type"})
        self.tokenizer = safety.scorer.tokenizer

    @property
    def attributes(self) -> list[str]:
        return list(NAMES)

    @classmethod
    def load(
        cls, path: str | Path, torch_dtype=torch.float32, trust_modified: bool = False, packing: bool = False
    ) -> "ComposedLlama2Scorer":
        """Load both members; ``packing=True`` (the ``--packing`` load option) is refused (:data:`PACKING_REFUSAL`)
        before any weights load."""
        if packing:
            raise ModelContractError(PACKING_REFUSAL)
        path = Path(path)
        source = str(path / SPEC_FILE)
        raw, sealed = read_rewardlab_json(path, trust_modified=trust_modified, warn=lambda m: print(m, file=sys.stderr))
        spec = ComposedSpec.from_json(raw, source)
        members, modified = [], list(sealed)
        for name in NAMES:
            m = getattr(spec, name)
            where = (path / m["path"]) if not os.path.isabs(m["path"]) else Path(m["path"])
            if not (where / SPEC_FILE).is_file():
                raise ModelContractError(f"{source}: {name} model {where} is missing (no {SPEC_FILE})")
            if m.get("rewardlab_json_sha256") and sha256_of(where / SPEC_FILE) != m["rewardlab_json_sha256"]:
                problem = f"{name} model {where}: its {SPEC_FILE} differs from the one composed (sha256)"
                if not trust_modified:
                    raise ModelContractError(f"{path}: {problem} (pass --trust-modified to load it anyway)")
                print(f"rewardlab: warning: {path}: {problem}; loaded because of --trust-modified", file=sys.stderr)
                modified.append(problem)
            scorer = _load_member(where, torch_dtype, trust_modified)
            modified += [f"{name}: {x}" for x in scorer.modified_files]
            members.append(_Member(scorer, m.get("attribute"), m["squash"]))
        rule = spec.scaliser
        if rule.get("type") != "llama2":
            raise ModelContractError(f"{source}: scaliser must be the llama2 rule, not {rule.get('type')!r}")
        scorer = cls(spec, members[0], members[1], modified)
        scorer.source = source
        return scorer

    # ---- the scorer interface ------------------------------------------------------------------------
    def rewards(self, items, batch_size: int = 16) -> torch.Tensor:
        """``(N, 2)`` ``[R_s, R_h]`` in (0, 1)."""
        items = list(items)
        return torch.stack([self.safety.values(items, batch_size), self.helpfulness.values(items, batch_size)], 1)

    def score_items(self, items: list, opts: ScoreOptions, unsafe=None) -> list[float]:
        return [row["score"] for row in self._rows(items, opts, unsafe)]

    def score_rows(self, items, options: ScoreOptions | None = None, /, *, unsafe=None, **keywords) -> list[ScoreRow]:
        opts = self.options(options, keywords)
        rows = self._rows(list(items), opts, unsafe)
        scores = [r["score"] for r in rows]
        check_rewards(scores, "scoring")
        if opts.normalize:
            for row, s in zip(rows, self.normalize(scores)):
                row["score"] = s
        return rows

    def _rows(self, items: list, opts: ScoreOptions, unsafe) -> list[ScoreRow]:
        r = self.rewards(items, opts.batch_size)
        tags = None if unsafe is None else torch.tensor(list(unsafe), dtype=torch.bool)
        scores = self.rule(r, list(NAMES), unsafe=tags).tolist()
        return [{"score": s, "attributes": dict(zip(NAMES, row))} for s, row in zip(scores, r.tolist())]

    def normalize(self, rewards: list) -> list:
        """``(r − mean) / std`` of the scalar (:func:`rewardlab.models.reward_model.normalized`)."""
        return normalized(self.spec.normalization, rewards, self.source)

    def spec_json(self) -> dict:
        return self.spec.to_json()

    @classmethod
    def open(cls, path: str, request: LoadRequest) -> "ComposedLlama2Scorer":
        kw = {} if request.torch_dtype is None else {"torch_dtype": request.torch_dtype}
        return cls.load(path, trust_modified=request.trust_modified, packing=request.packing, **kw)

    @classmethod
    def inspect(cls, path: str, options=None) -> str:
        d = parse_rewardlab_json(path)
        lines = [
            f"scoring contract for {path}: a composed Llama 2 model ({SPEC_FILE}); each member is "
            "scored with its own contract"
        ]
        for name in NAMES:
            m = d.get(name) or {}
            lines.append(f"  {name:<19} {m.get('path')!r} (attribute {m.get('attribute')!r}, {m.get('squash')})")
        lines.append(f"  {'scaliser':<19} {d.get('scaliser')!r}")
        return "\n".join(lines)

    def describe(self) -> dict:
        return {
            "kind": COMPOSED_KIND,
            "safety": self.spec.safety,
            "helpfulness": self.spec.helpfulness,
            "scaliser": self.spec.scaliser,
        }

    # ---- the server's batcher: each text encoded for both members, scored in one call ----------------
    def collate(self, features: list[dict], padding_side: str | None = None) -> dict[str, torch.Tensor]:
        """``features`` from :class:`_PairEncoder`; ``{"input_ids": the safety member's, "safety.…", "helpfulness.…"}``."""
        batch = {}
        for k, name in enumerate(NAMES):
            member = self.members[name]
            part = member.collate([f["members"][k] for f in features])
            batch.update({f"{name}.{key}": v for key, v in part.items()})
        batch["input_ids"] = batch["safety.input_ids"]  # what the batcher counts
        batch[UNSAFE_KEY] = unsafe_column(features)
        return batch

    def forward(self, **batch) -> torch.Tensor:
        """Rows ``[score, R_s, R_h]``; ``batch["unsafe"]`` ``(N,)`` bool (from :meth:`collate`) tags the prompts."""
        values = []
        for name, member in zip(NAMES, (self.safety, self.helpfulness)):
            part = {key.split(".", 1)[1]: v for key, v in batch.items() if key.startswith(name + ".")}
            out = member.scorer(**part)
            if out.ndim == 1:  # a scalar reward model
                r = out
            elif member.attribute is not None:  # a K-output model's rows [score, r_1..r_K, …]
                r = out[:, 1 + member.scorer.attributes.index(member.attribute)]
            else:
                r = out[:, 0]
            r = r.double().cpu()
            values.append(torch.sigmoid(r) if member.squash == "sigmoid" else r)
        rs = torch.stack(values, 1)
        tags = batch.get(UNSAFE_KEY)
        score = self.rule(rs, list(NAMES), unsafe=None if tags is None else tags.cpu()).double()
        return torch.cat([score[:, None], rs], 1)

    def unpack(self, rows: list[list[float]]) -> dict:
        return {
            "rewards": [r[0] for r in rows],
            "attributes": [dict(zip(NAMES, r[1:3])) for r in rows],
            "transformed": None,
            "gate": None,
        }


class _PairEncoder:
    """Encodes a (prompt, response) for both members (each with its own tokenizer and contract)."""

    def __init__(self, safety, helpfulness):
        self.safety, self.helpfulness = safety, helpfulness

    def encode(self, prompt, response) -> dict:
        parts = (self.safety.encoder.encode(prompt, response), self.helpfulness.encoder.encode(prompt, response))
        return {"input_ids": parts[0]["input_ids"], "members": parts}
