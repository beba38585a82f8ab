"""Reward-model losses: pure functions of reward tensors, one enum, one registry.

Shapes: ``r_w``, ``r_l``, ``margin``: ``(P,)`` float tensors, the rewards of the preferred and the
dispreferred response of each pair and a per-pair margin (or strength). K-wise losses take ``(B, K)``
reward matrices, one row per prompt, padded.

Every loss returns a tensor of *units*; the trainer sums it and divides by the number of units in the
whole (accumulated, all-process) batch, so gradient accumulation and data parallelism give the same
update as one big batch. What a unit is depends on the loss:

========================  ================================================  ============================
``LOSSES`` name            loss of one unit                                  unit
========================  ================================================  ============================
``bt``                    ``-log σ(Δ)``, ``Δ = r_w − r_l`` (eq. 3)            every implied (w, l) pair
``margin``                ``-log σ(Δ − m)`` (eq. 5, Llama 2)                  every implied pair
``scaled_bt``             ``-|s| · log σ(Δ)`` (HelpSteer2-Preference)          every implied pair
``allpairs``              ``1/C · Σ_pairs -log σ(Δ)`` (eq. 6, InstructGPT)    one prompt (C of its pairs)
``plackett_luce``         ``-Σ_j [r_σ(j) − log Σ_{k≥j} exp r_σ(k)]``          one prompt (its ranking)
``bt_ties``               ``-log P(win)`` / ``-log P(tie)`` (Rao-Kupper,       every implied pair and every
                          Davidson)                                           tied pair
========================  ================================================  ============================

The pairs of a record come from its partial ranking (:meth:`Comparison.strict_pairs`); tied pairs are
dropped by every loss but ``bt_ties`` (and shape the ``plackett_luce`` denominators, Breslow's rule). Each
response is forwarded once (:mod:`rewardlab.training.collate`), whatever the loss. Options that are not a loss of
their own (:class:`LossOptions`): label smoothing, Llama 2 margin tables, margin scale, the tie model and its
parameter, the Plackett-Luce top-k; every record's ``weight`` multiplies its units.

A new loss is one function here plus one entry in :data:`LOSSES`. The trainer only calls
:func:`batch_loss` (losses of one collated batch) and :func:`count_units` (how many loss units a set of
comparisons holds, known before any forward pass, so the normaliser of a global batch is exact).
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

TIE_MODELS = ("davidson", "rao_kupper")
# Llama 2 (Touvron et al. 2023, table 27): margin by preference rating level
# 0 = negligibly better / unsure, 1 = slightly better, 2 = better, 3 = significantly better.
LLAMA2_MARGINS = {"llama2_small": (0.0, 1 / 3, 2 / 3, 1.0), "llama2_large": (0.0, 1.0, 2.0, 3.0)}
MARGIN_TABLES = ("none", *LLAMA2_MARGINS)
DEFAULT_TIE_PARAM = {"davidson": 1.0, "rao_kupper": 2.0}  # both: P(win) = P(tie) = P(loss) = 1/3 at Δ = 0


@dataclass(frozen=True)
class LossOptions:
    """Everything about a loss that is not its name or ``center_coef``.

    * ``label_smoothing`` ε (pairwise losses): ``(1 − ε)·ℓ(z) + ε·ℓ(−z)``, ``ℓ(z) = −log σ(z)``.
    * ``margin_table``: ``none`` (margin = ``margin_scale`` × the data's margin or score difference), or
      ``llama2_small`` / ``llama2_large``: the data's margin is a rating level, rounded and clipped to 0..3.
    * ``tie_model`` and ``tie_param`` (``bt_ties``): Davidson ν > 0 or Rao-Kupper θ > 1 (default: 1 and 2).
    * ``top_k`` (``plackett_luce``): only the first k tiers contribute a term (None: all).
    """

    label_smoothing: float = 0.0
    margin_table: str = "none"
    margin_scale: float = 1.0
    tie_model: str = "davidson"
    tie_param: float | None = None
    top_k: int | None = None

    @property
    def tie_value(self) -> float:
        return DEFAULT_TIE_PARAM[self.tie_model] if self.tie_param is None else float(self.tie_param)


# --- pairwise ------------------------------------------------------------------------------------------


def bradley_terry(r_w: torch.Tensor, r_l: torch.Tensor) -> torch.Tensor:
    """Eq. 3: ``-log σ(r_w - r_l)``, computed as ``-logsigmoid`` (stable for any |Δ|). ``(P,) -> (P,)``."""
    return -F.logsigmoid(r_w - r_l)


def bradley_terry_softplus(r_w: torch.Tensor, r_l: torch.Tensor) -> torch.Tensor:
    """The corrected eq. 4: ``log(1 + exp(r_l - r_w)) = softplus(r_l - r_w)``. ``(P,) -> (P,)``.

    The reference prints ``log(1 + e^{r_l} - e^{r_w})``, which is not a loss (its argument goes negative
    whenever r_w > log(1 + e^{r_l})). ``-log σ(d) = log(1 + e^{-d})`` with ``d = r_w - r_l`` is the correct form.
    ``torch.nn.functional.softplus`` switches to the identity above its threshold, so no ``exp`` overflows.
    """
    return F.softplus(r_l - r_w)


def smoothed_logistic(z: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """``(1 − ε)·(−log σ(z)) + ε·(−log σ(−z))``: BT on logit ``z`` when the label is right with prob. 1 − ε.

    ε = 0.1, z = 0: 0.9·log 2 + 0.1·log 2 = log 2. ε = 0.1, z = 2: 0.9·0.1269280 + 0.1·2.1269280 = 0.3269280.
    ``(P,) -> (P,)``.
    """
    out = -F.logsigmoid(z)
    if label_smoothing:
        out = (1 - label_smoothing) * out + label_smoothing * -F.logsigmoid(-z)
    return out


def margin_loss(
    r_w: torch.Tensor, r_l: torch.Tensor, margin: torch.Tensor, label_smoothing: float = 0.0
) -> torch.Tensor:
    """Eq. 5 (Llama 2): ``-log σ(r_w - r_l - m)``. A pair is only "won" once r_w beats r_l by ``m``. ``(P,) -> (P,)``."""
    return smoothed_logistic(r_w - r_l - margin, label_smoothing)


def scaled_bradley_terry(
    r_w: torch.Tensor, r_l: torch.Tensor, strength: torch.Tensor, label_smoothing: float = 0.0
) -> torch.Tensor:
    """Scaled BT (Wang et al. 2024, HelpSteer2-Preference): ``-|s| · log σ(r_w − r_l)``. ``(P,) -> (P,)``.

    A "much better" pair (|s| = 3) counts three times a "slightly better" one (|s| = 1); the optimum of
    each pair's term is the same as BT's, only the weighting changes.
    """
    return strength.abs() * smoothed_logistic(r_w - r_l, label_smoothing)


def reward_centering(r_w: torch.Tensor, r_l: torch.Tensor) -> torch.Tensor:
    """Auxiliary term ``(r_w + r_l)²`` (Eisenstein et al. 2023) that pulls rewards towards zero mean.

    BT is invariant to adding a constant to every reward; this term picks the zero-centred solution.
    Multiply by a small coefficient (e.g. 0.01). ``(P,) -> (P,)``.
    """
    return (r_w + r_l) ** 2


def _bt(r_w, r_l, margin, label_smoothing=0.0):
    return smoothed_logistic(r_w - r_l, label_smoothing)


def pair_loss(
    loss: LossType | str,
    r_w: torch.Tensor,
    r_l: torch.Tensor,
    margin: torch.Tensor | None = None,
    center_coef: float = 0.0,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """Dispatch to the named per-pair loss and add the centering term. Returns ``(P,)``."""
    loss = LossType(loss)
    spec = LOSSES[loss]
    if spec.pair is None:
        raise ValueError(f"'{loss}' is not a per-pair loss; use batch_loss")
    fn, needs_margin = spec.pair, spec.needs_margin
    if needs_margin and margin is None:
        raise ValueError(
            f"loss '{loss}' needs a margin for every pair (a 'margin' field or per-response 'scores' in the data)"
        )
    out = fn(r_w, r_l, margin, label_smoothing)
    if center_coef:
        out = out + center_coef * reward_centering(r_w, r_l)
    return out


def llama2_margin(level: torch.Tensor, table: str) -> torch.Tensor:
    """Llama 2's discrete margin of a rating ``level`` (rounded, clipped to 0..3). ``(P,) -> (P,)``.

    small: levels 0, 1, 2, 3 → 0, 1/3, 2/3, 1; large: → 0, 1, 2, 3.
    """
    values = torch.tensor(LLAMA2_MARGINS[table], dtype=level.dtype, device=level.device)
    return values[level.round().clamp(0, 3).long()]


def pair_margins(raw: torch.Tensor | None, opts: LossOptions) -> torch.Tensor | None:
    """The margin (or strength) each pair's loss uses, from the data's per-pair number ``raw`` ``(P,)``."""
    if raw is None:
        return None
    if opts.margin_table != "none":
        return llama2_margin(raw, opts.margin_table)
    return raw * opts.margin_scale if opts.margin_scale != 1.0 else raw


# --- per-prompt all pairs (InstructGPT) -----------------------------------------------------------------


def group_mean(values: torch.Tensor, group: torch.Tensor, n_groups: int) -> torch.Tensor:
    """Mean of ``values`` ``(P,)`` per ``group`` id ``(P,)`` in 0..n_groups-1, for the groups that have any.

    values (1, 3, 5), groups (0, 0, 2), 3 groups → (2, 5): group 1 has no value and no entry. ``-> (G',)``.
    """
    sums = torch.zeros(n_groups, dtype=values.dtype, device=values.device).index_add_(0, group, values)
    counts = torch.zeros(n_groups, dtype=values.dtype, device=values.device).index_add_(
        0, group, torch.ones_like(values)
    )
    present = counts > 0
    return sums[present] / counts[present]


def allpairs_loss(
    r_w: torch.Tensor, r_l: torch.Tensor, group: torch.Tensor, n_groups: int, label_smoothing: float = 0.0
) -> torch.Tensor:
    """InstructGPT (reference eq. 6): ``1/C(K,2) · Σ_{(w,l)} -log σ(r_w − r_l)`` per prompt.

    ``r_w``, ``r_l``, ``group``: ``(P,)`` (the prompt of each pair); returns ``(G',)``, one loss per prompt
    that has a pair. With a full ranking a prompt has C(K,2) pairs; with ties, the tied pairs are left out
    and the mean is over the pairs that remain. Each prompt then weighs the same, however large K is.
    """
    return group_mean(smoothed_logistic(r_w - r_l, label_smoothing), group, n_groups)


# --- Plackett-Luce (K-wise) -----------------------------------------------------------------------------

PAD_TIER = -1  # a padding slot, not a response
UNRANKED_TIER = 1 << 30  # a response in no tier: in every denominator, never a numerator


def plackett_luce(rewards: torch.Tensor, tier: torch.Tensor, top_k: int | None = None) -> torch.Tensor:
    """K-wise Plackett-Luce negative log-likelihood ``-Σ_j [r_σ(j) − log Σ_{k≥j} exp r_σ(k)]`` per prompt.

    ``rewards``: ``(B, K)``; ``tier``: ``(B, K)`` int, the tier of each slot (0 = best), ``UNRANKED_TIER``
    for a response in no tier, ``PAD_TIER`` for padding. Returns ``(B,)``.

    Each response ``j`` in a tier ``t`` (``t < top_k``) contributes ``r_j − log Σ exp r_k`` over the
    responses ``k`` whose tier is ``t`` or later (unranked ones included). For a strict ranking that is
    the Plackett-Luce likelihood exactly (the last response's term is ``r − log exp r = 0``); ``top_k``
    stops after the first k **tiers** (Zhu et al.'s top-k model for a strict ranking, where a tier is one response;
    with ties, k tiers can hold more than k responses); responses tied in a tier share one
    denominator (Breslow's approximation, as for ties in Cox's partial likelihood).

    K = 2, ranking (w, l): ``-[r_w − log(e^{r_w} + e^{r_l})] − [r_l − r_l] = log(1 + e^{r_l − r_w})`` = BT.
    """
    valid = tier != PAD_TIER
    ranked = valid & (tier != UNRANKED_TIER)
    if top_k is not None:
        ranked = ranked & (tier < top_k)
    # denominator set of slot j: valid slots k with tier_k >= tier_j      (B, K_j, K_k)
    in_denominator = valid[:, None, :] & (tier[:, None, :] >= tier[:, :, None])
    masked = rewards[:, None, :].masked_fill(~in_denominator, float("-inf"))
    log_denominator = torch.logsumexp(masked, dim=-1)  # (B, K); -inf only on padding rows of the mask
    terms = torch.where(ranked, rewards - log_denominator, torch.zeros_like(rewards))
    return -terms.sum(dim=-1)


def centering_kwise(rewards: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """``(2·mean_k r_k)²`` per prompt, which for K = 2 is the pairwise ``(r_w + r_l)²``. ``(B, K) -> (B,)``."""
    mean = (rewards * valid).sum(-1) / valid.sum(-1)
    return (2 * mean) ** 2


# --- Bradley-Terry with ties ----------------------------------------------------------------------------


def davidson_log_probs(delta: torch.Tensor, nu: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Davidson (1970): ``P(i ≻ j) = π_i / (π_i + π_j + ν√(π_i π_j))``, ``P(tie) = ν√(π_i π_j) / (same)``.

    With ``π = e^r`` and ``d = Δ/2``: ``log P(win) = d − log(e^d + e^{−d} + ν)``, ``log P(tie) = log ν − (same)``.
    ``(P,) -> ((P,), (P,))``. ν = 0 is BT; at Δ = 0, ν = 1: P(win) = P(tie) = 1/3.
    """
    d = delta / 2
    parts = [d, -d] + ([torch.full_like(d, math.log(nu))] if nu > 0 else [])
    log_z = torch.logsumexp(torch.stack(parts), dim=0)
    log_tie = (math.log(nu) - log_z) if nu > 0 else torch.full_like(d, float("-inf"))
    return d - log_z, log_tie


def rao_kupper_log_probs(delta: torch.Tensor, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Rao & Kupper (1967): ``P(i ≻ j) = π_i / (π_i + θ π_j)`` = ``σ(Δ − log θ)``, and
    ``P(tie) = (θ² − 1) π_i π_j / ((π_i + θ π_j)(π_j + θ π_i))`` = ``(θ² − 1) σ(Δ − log θ) σ(−Δ − log θ)``.

    ``(P,) -> ((P,), (P,))``. θ = 1 is BT; at Δ = 0, θ = 2: P(win) = 1/3, P(tie) = 3/9 = 1/3.
    """
    a = math.log(theta)
    log_win = F.logsigmoid(delta - a)
    log_tie = (math.log(theta**2 - 1) if theta > 1 else float("-inf")) + log_win + F.logsigmoid(-delta - a)
    return log_win, log_tie


TIE_LOG_PROBS = {"davidson": davidson_log_probs, "rao_kupper": rao_kupper_log_probs}


def bt_ties_loss(
    r_w: torch.Tensor,
    r_l: torch.Tensor,
    r_a: torch.Tensor,
    r_b: torch.Tensor,
    model: str = "davidson",
    param: float | None = None,
) -> torch.Tensor:
    """``-log P(w ≻ l)`` for each strict pair ``(P,)``, then ``-log P(a ~ b)`` for each tied pair ``(T,)``.

    Returns ``(P + T,)``. The tie probability is symmetric in (a, b); its loss is smallest at r_a = r_b.
    """
    fn = TIE_LOG_PROBS[model]
    param = DEFAULT_TIE_PARAM[model] if param is None else param
    log_win, _ = fn(r_w - r_l, param)
    _, log_tie = fn(r_a - r_b, param)
    return torch.cat([-log_win, -log_tie])


# --- batches: one function per loss, one registry --------------------------------------------------------


def _pairs_batch(loss: str, rewards, batch, center_coef, opts):
    """A per-pair loss (:attr:`LossSpec.pair`) on every strict pair of the batch."""
    r_w, r_l = rewards[batch.chosen_idx], rewards[batch.rejected_idx]
    out = pair_loss(loss, r_w, r_l, pair_margins(batch.margin, opts), center_coef, opts.label_smoothing)
    return out * batch.record_weight[batch.pair_group]


def _allpairs_batch(rewards, batch, center_coef, opts):
    r_w, r_l = rewards[batch.chosen_idx], rewards[batch.rejected_idx]
    per_pair = smoothed_logistic(r_w - r_l, opts.label_smoothing)
    if center_coef:
        per_pair = per_pair + center_coef * reward_centering(r_w, r_l)
    has_pairs = torch.zeros(batch.n_records, dtype=torch.bool, device=rewards.device)
    has_pairs[batch.pair_group] = True
    return group_mean(per_pair, batch.pair_group, batch.n_records) * batch.record_weight[has_pairs]


def _plackett_luce_batch(rewards, batch, center_coef, opts):
    slots = batch.slot_row.clamp(min=0)
    r = rewards[slots]  # (B, K)
    out = plackett_luce(r, batch.slot_tier, opts.top_k)
    if center_coef:
        out = out + center_coef * centering_kwise(r, (batch.slot_tier != PAD_TIER).to(r.dtype))
    return out * batch.record_weight


def _bt_ties_batch(rewards, batch, center_coef, opts):
    r_w, r_l = rewards[batch.chosen_idx], rewards[batch.rejected_idx]
    r_a, r_b = rewards[batch.tie_a], rewards[batch.tie_b]
    out = bt_ties_loss(r_w, r_l, r_a, r_b, opts.tie_model, opts.tie_value)
    if center_coef:
        out = out + center_coef * torch.cat([reward_centering(r_w, r_l), reward_centering(r_a, r_b)])
    return out * batch.record_weight[torch.cat([batch.pair_group, batch.tie_group])]


def _strict_pairs(c) -> int:
    return len(c.strict_pairs())


@dataclass(frozen=True)
class LossSpec:
    """One loss, described once: how it is computed, what its unit is, which options apply, its help line.

    A per-pair loss gives ``pair`` ``(r_w, r_l, margin, label_smoothing) -> (P,)`` (run on every strict pair,
    one unit each); any other gives ``batch`` ``(rewards (N,), PairBatch, center_coef, LossOptions) -> (U,)``
    and ``units``. ``options``: the :class:`LossOptions` fields it reads (the CLI help lists them)."""

    help: str  # one line: the loss of one unit
    unit: str  # what one unit is
    pair: Callable | None = None
    needs_margin: bool = False  # pair losses: needs the data's per-pair margin (or score difference)
    batch: Callable | None = None
    units: Callable = _strict_pairs  # (Comparison) -> int, the length of its share of the output
    options: tuple[str, ...] = ("label_smoothing",)

    def __post_init__(self):
        if (self.pair is None) == (self.batch is None):
            raise TypeError("a LossSpec has exactly one of `pair` and `batch`")

    @property
    def label_smoothing(self) -> bool:
        return "label_smoothing" in self.options

    def run(self, name: str, rewards, batch, center_coef: float, opts: LossOptions) -> torch.Tensor:
        if self.pair is not None:
            return _pairs_batch(name, rewards, batch, center_coef, opts)
        return self.batch(rewards, batch, center_coef, opts)


_MARGIN_OPTIONS = ("label_smoothing", "margin_table", "margin_scale")

# THE registry of losses: the name is --loss, the order is the order of --help and of the README table.
LOSSES: dict[str, LossSpec] = {
    "bt": LossSpec("-log σ(r_w − r_l) (Bradley-Terry, eq. 3)", "every strict pair", pair=_bt),
    "margin": LossSpec(
        "-log σ(r_w − r_l − m), m the data's margin (Llama 2, eq. 5)",
        "every strict pair",
        pair=margin_loss,
        needs_margin=True,
        options=_MARGIN_OPTIONS,
    ),
    "scaled_bt": LossSpec(
        "-|s|·log σ(r_w − r_l), s the data's margin (HelpSteer2-Preference)",
        "every strict pair",
        pair=scaled_bradley_terry,
        needs_margin=True,
        options=_MARGIN_OPTIONS,
    ),
    "allpairs": LossSpec(
        "mean of -log σ(Δ) over a prompt's pairs (InstructGPT, eq. 6)",
        "one prompt",
        batch=_allpairs_batch,
        units=lambda c: int(bool(c.strict_pairs())),
    ),
    "plackett_luce": LossSpec(
        "-Σ_j [r_σ(j) − log Σ_{k≥j} exp r_σ(k)] (K-wise ranking likelihood)",
        "one prompt",
        batch=_plackett_luce_batch,
        units=lambda c: 1,
        options=("top_k",),
    ),
    "bt_ties": LossSpec(
        "-log P(win) / -log P(tie) (Davidson or Rao-Kupper ties)",
        "every strict and tied pair",
        batch=_bt_ties_batch,
        units=lambda c: len(c.strict_pairs()) + len(c.tied_pairs()),
        options=("tie_model", "tie_param"),
    ),
}


class _LossName(str, enum.Enum):
    def __str__(self) -> str:  # so argparse/YAML show the plain value
        return self.value


# the names of LOSSES as an enum (LossType.BT == "bt"), for code that spells a loss as a constant
LossType = _LossName("LossType", {name.upper(): name for name in LOSSES})


def check_options(loss: LossType | str, opts: LossOptions) -> None:
    """``ValueError`` for an option that does not fit the loss or is out of range."""
    loss = LossType(loss)
    if not 0.0 <= opts.label_smoothing < 0.5:
        raise ValueError(f"label_smoothing must be in [0, 0.5), got {opts.label_smoothing}")
    if opts.label_smoothing and not LOSSES[loss].label_smoothing:
        raise ValueError(f"label_smoothing applies to the pairwise losses, not '{loss}'")
    if opts.margin_table not in MARGIN_TABLES:
        raise ValueError(f"margin_table must be one of {', '.join(MARGIN_TABLES)}, not {opts.margin_table!r}")
    if opts.tie_model not in TIE_MODELS:
        raise ValueError(f"tie_model must be one of {', '.join(TIE_MODELS)}, not {opts.tie_model!r}")
    low = {"davidson": 0.0, "rao_kupper": 1.0}[opts.tie_model]
    if not opts.tie_value > low:
        raise ValueError(f"tie_param of {opts.tie_model} must be > {low:g}, got {opts.tie_value}")
    if opts.top_k is not None and opts.top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {opts.top_k}")


def batch_loss(
    loss: LossType | str, rewards: torch.Tensor, batch, center_coef: float = 0.0, opts: LossOptions | None = None
) -> torch.Tensor:
    """Per-unit losses of a collated batch (:class:`rewardlab.training.collate.PairBatch`); ``rewards``: ``(N,)`` rows.

    Returns ``(U,)`` with ``U = count_units(loss, records of the batch)``; each unit is multiplied by its
    record's ``weight``.
    """
    opts = opts or LossOptions()
    loss = LossType(loss)
    return LOSSES[loss].run(loss.value, rewards, batch, center_coef, opts)


def count_units(loss: LossType | str, records) -> int:
    """Number of loss units :func:`batch_loss` returns for these comparisons (see the table above)."""
    units = LOSSES[LossType(loss)].units
    return sum(units(c) for c in records)
