"""The fast path: padding-free, prefix-shared forward passes for training, scoring and evaluation.

A *group* is the K encoded responses of one comparison (or the responses to one prompt when scoring).
For causal LMs the group is laid out as its shared tokens once, then each response's own tokens::

    [ shared prefix (p tokens) | response 0 own tokens | response 1 own tokens | ... ]
      positions 0 .. p-1         p .. n_0-1              p .. n_1-1

and a block ("tree") mask lets every token see the shared prefix and the earlier tokens of its own
response only. The shared prefix is the longest common *token* prefix of the group's encoded texts
(:meth:`rewardlab.models.reward_model.TextEncoder.encode`), capped so that every response keeps at least its last
token. That is exact whatever the template or truncation does: a causal token's hidden state depends
only on the tokens before it and their positions, and those are identical in the padded layout. It also
covers BOS, the chat template's header, and any words the responses happen to start with.

Encoders attend in both directions, so the prompt's hidden states depend on the response and cannot be
shared. They are still packed without padding: each text is its own bidirectional block, position ids
restart at 0, token types are kept, and the [CLS] pooler reads each block's first token.

Many groups are packed (best-fit decreasing, :mod:`rewardlab.core.binpack`) into rows of at most ``token_budget`` tokens (a longer group
gets a row of its own). The rows of a micro-batch go through the base model as ``(R, W)`` batches of rows of
similar width (:func:`width_buckets`; usually one), so only the short tail of a row is padding (masked:
nothing attends to it, nothing reads it). The mask is built on the device from two small integer tensors
(segment and member ids), as a 4-D boolean mask for SDPA or an additive float mask for eager attention;
HF models take such a mask as-is. The dense mask costs attention FLOPs over the whole row whatever it hides,
which is why rows are kept about as wide as the hidden size (:func:`default_token_budget`).

The CPU side (laying groups out in rows, :func:`layout_group`, :func:`pack_rows`, :func:`build_inputs`) lives in
:mod:`rewardlab.models.layout` and is importable from here too; this module is the forward. Every packed forward goes
through :meth:`rewardlab.models.reward_model.RewardModel.forward`, which decides once per model whether packing covers it.

The rewards come back in exactly the row order of :func:`rewardlab.training.collate.collate_pairs`, so
``batch.chosen_idx`` / ``rejected_idx`` / ``group`` index them unchanged and every loss works as is.

Covered: causal LMs whose sequence-classification class is transformers' generic one (``model`` + a
linear ``score`` head: Llama, Qwen2, Qwen3, Mistral; tests cover all four) and BERT, each with ``sdpa``
or ``eager`` attention. Anything else (another architecture, flash / flex attention implementations, a
sliding window shorter than ``max_length``) takes the ordinary padded path; :func:`packing_support`
says which and why, and the fallback is tested.
"""

from __future__ import annotations

import sys

import torch

from rewardlab.core.progress import bar as progress_bar
from rewardlab.data.record import prompt_key
from rewardlab.models.layout import (  # noqa: F401  (the layout's names, importable from here as before)
    MIN_TOKEN_BUDGET,
    Group,
    build_inputs,
    common_prefix_len,
    default_token_budget,
    layout_group,
    pack_rows,
)

CAUSAL_TYPES = ("llama", "qwen2", "qwen3", "mistral")
ENCODER_TYPES = ("bert",)
ATTN_IMPLEMENTATIONS = ("sdpa", "eager")


# ---- which models the fast path covers --------------------------------------------------------------
def packing_support(model, spec) -> tuple[str | None, str]:
    """``("causal" | "encoder", "")`` when the packed forward is exact for this model, else ``(None, reason)``."""
    model = _unwrap(model)
    cfg = model.config
    impl = getattr(cfg, "_attn_implementation", None)
    if impl not in ATTN_IMPLEMENTATIONS:
        return None, f"attention implementation {impl!r} (packing needs one of {ATTN_IMPLEMENTATIONS})"
    if spec.pooling == "last_token":
        if cfg.model_type not in CAUSAL_TYPES:
            return None, f"model type {cfg.model_type!r} is not one of the covered causal LMs {CAUSAL_TYPES}"
        if not isinstance(getattr(model, "score", None), torch.nn.Module):
            return None, f"{type(model).__name__} has no `score` head"
        window = _sliding_window(cfg)
        if window is not None and window < spec.max_length:
            return None, f"sliding window {window} < max_length {spec.max_length}"
        return "causal", ""
    if spec.pooling == "cls":
        if cfg.model_type not in ENCODER_TYPES or not hasattr(model, "classifier"):
            return None, f"encoder type {cfg.model_type!r} is not one of the covered encoders {ENCODER_TYPES}"
        return "encoder", ""
    return None, f"pooling {spec.pooling!r}"


def _unwrap(model):
    """The transformers model under a peft wrapper (LoRA layers are injected in place, so calling it trains them)."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) and type(model).__name__.startswith("Peft") else model


def _sliding_window(cfg) -> int | None:
    window = getattr(cfg, "sliding_window", None)
    layer_types = getattr(cfg, "layer_types", None) or []
    active = (
        cfg.model_type == "mistral" or getattr(cfg, "use_sliding_window", False) or "sliding_attention" in layer_types
    )
    return window if (active and window) else None


def block_mask(seg: torch.Tensor, member: torch.Tensor, causal: bool) -> torch.Tensor:
    """``(R, 1, W, W)`` boolean, True = may attend. Same segment (group) and: the key is shared prefix or of the
    query's own response; causal models also need key ≤ query. Padding sees only itself and is seen by nobody."""
    W = seg.shape[-1]
    allowed = (seg[:, :, None] == seg[:, None, :]) & (
        (member[:, None, :] == -1) | (member[:, :, None] == member[:, None, :])
    )
    if causal:
        allowed &= torch.ones(W, W, dtype=torch.bool, device=seg.device).tril()
    allowed &= (seg >= 0)[:, None, :]
    allowed |= torch.eye(W, dtype=torch.bool, device=seg.device)
    return allowed[:, None]


# ---- forward ---------------------------------------------------------------------------------------
def width_buckets(lengths: list[int], ratio: float = 0.75) -> list[list[int]]:
    """Rows (widest first) cut into runs of similar width: a row joins the current run while it is at least
    ``ratio`` × the run's widest row. Each run is one base-model forward of its own width, so a single long group
    does not widen (with padding, and quadratic masked attention) every other row of the micro-batch."""
    order = sorted(range(len(lengths)), key=lambda r: (-lengths[r], r))
    if (
        torch.distributed.is_available()
        and torch.distributed.is_initialized()
        and torch.distributed.get_world_size() > 1
    ):
        return [order]  # one forward per micro-batch on every process: sharded engines (ZeRO-3, FSDP) need that
    runs: list[list[int]] = []
    for r in order:
        if runs and lengths[r] >= ratio * lengths[runs[-1][0]]:
            runs[-1].append(r)
        else:
            runs.append([r])
    return runs


def packed_forward(
    model,
    mode: str,
    input_ids: torch.Tensor,
    position_ids: torch.Tensor,
    packed_seg: torch.Tensor,
    packed_member: torch.Tensor,
    packed_read: torch.Tensor,
    token_type_ids: torch.Tensor | None = None,
) -> torch.Tensor:
    """Rewards ``(N,)`` in ``packed_read`` order, computed by the base model plus the model's own head."""
    model = _unwrap(model)
    base = getattr(model, model.base_model_prefix)
    R, W = input_ids.shape
    lengths = (packed_seg >= 0).sum(1).tolist()
    read_row, read_col = packed_read // W, packed_read % W
    trim = last_layer_trimmable(model) == ""
    picked, where = [], []
    for rows in width_buckets(lengths):
        rows = sorted(rows)  # all rows in one run: the identity, no gather needed
        w = max(lengths[r] for r in rows)
        idx = torch.tensor(rows, device=input_ids.device)
        cut = (lambda t: t.index_select(0, idx)[:, :w]) if len(rows) < R else (lambda t: t[:, :w])
        seg, member = cut(packed_seg), cut(packed_member)
        mask = block_mask(seg, member, causal=(mode == "causal"))
        if model.config._attn_implementation == "eager":
            dtype = next(model.parameters()).dtype
            mask = torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill_(~mask, torch.finfo(dtype).min)
        local = torch.full((R,), -1, dtype=torch.long, device=input_ids.device)
        local[idx] = torch.arange(len(rows), device=input_ids.device)
        mine = (local[read_row] >= 0).nonzero().squeeze(1)
        q_row, q_col = local[read_row[mine]], read_col[mine]
        if trim and mode == "causal":
            picked.append(_causal_states_at(base, cut(input_ids), cut(position_ids), mask, q_row, q_col))
        elif trim:
            types = cut(token_type_ids) if token_type_ids is not None else None
            picked.append(_encoder_states_at(base, cut(input_ids), cut(position_ids), types, mask, q_row, q_col))
        else:
            kwargs = {"use_cache": False} if mode == "causal" else {}
            if token_type_ids is not None:
                kwargs["token_type_ids"] = cut(token_type_ids)
            hidden = base(
                input_ids=cut(input_ids), attention_mask=mask, position_ids=cut(position_ids), **kwargs
            ).last_hidden_state
            picked.append(hidden.flatten(0, 1).index_select(0, q_row * w + q_col))
        where.append(mine)
    states = torch.cat(picked)
    if len(picked) > 1:
        states = states.index_select(0, torch.argsort(torch.cat(where)))
    if mode == "causal":
        return model.score(states)[:, 0].float()
    pooled = base.pooler(states[:, None, :])
    return model.classifier(model.dropout(pooled))[:, 0].float()


# ---- the last layer at the read tokens only ----------------------------------------------------------
def last_layer_trimmable(model) -> str:
    """``""`` when the packed forward may run this model's last layer at the read tokens only
    (:func:`_causal_states_at`, :func:`_encoder_states_at`), else why not. A reward is read from the last layer at
    one token per text (a causal response's last token, an encoder block's [CLS]); every other token needs the last
    layer's keys and values, not its queries, attention, output projection and MLP. That skips about
    ``(1 − reads / tokens) × 0.9 / L`` of the forward for ``L`` layers (a quarter for the 4-layer benchmark model,
    a sixth for MiniLM, 4% at 24 layers), and the same share of the backward.

    The layers are called one by one, so models whose layers are sharded by a wrapper that gathers weights in the
    layer's own forward (FSDP) or by DeepSpeed ZeRO-3 keep the ordinary forward."""
    model = _unwrap(model)
    base = getattr(model, model.base_model_prefix, None)
    cfg = model.config
    if base is None or cfg.model_type not in CAUSAL_TYPES + ENCODER_TYPES:
        return f"model type {cfg.model_type!r}"
    if cfg.model_type in CAUSAL_TYPES:
        parts = {
            "": ("embed_tokens", "rotary_emb", "layers", "norm"),
            "layers.-1": ("input_layernorm", "self_attn", "post_attention_layernorm", "mlp"),
            "layers.-1.self_attn": ("q_proj", "k_proj", "v_proj", "o_proj"),
        }
    else:
        if getattr(cfg, "is_decoder", False) or getattr(cfg, "add_cross_attention", False):
            return "a BERT decoder"
        parts = {
            "": ("embeddings", "encoder"),
            "encoder.layer.-1": ("attention", "intermediate", "output"),
            "encoder.layer.-1.attention": ("self", "output"),
            "encoder.layer.-1.attention.self": ("query", "key", "value"),
        }
    for path, names in parts.items():
        module = base
        for name in path.split(".") if path else ():
            module = module[-1] if name == "-1" else getattr(module, name, None)
        if not all(hasattr(module, n) for n in names):
            return f"{type(module).__name__} lacks one of {names}"
    if any("FSDP" in type(m).__name__ or "FullyShardedDataParallel" in type(m).__name__ for m in base.modules()):
        return "FSDP-wrapped layers"
    if any(hasattr(p, "ds_id") for p in base.parameters()):
        return "DeepSpeed ZeRO-3 parameters"
    return ""


def _slots(q_row: torch.Tensor, q_col: torch.Tensor, R: int):
    """The read tokens laid out ``(R, Q)``, ``Q`` = most reads in one row: ``cols[r, j]`` is row ``r``'s ``j``-th
    read column (empty slots: column 0, dropped later); read ``i`` sits at ``(q_row[i], slot[i])``."""
    counts = torch.bincount(q_row, minlength=R)
    first = torch.cumsum(counts, 0) - counts
    order = torch.argsort(q_row, stable=True)
    slot = torch.empty_like(q_row)
    slot[order] = torch.arange(len(q_row), device=q_row.device) - first[q_row[order]]
    cols = torch.zeros((R, int(counts.max())), dtype=torch.long, device=q_row.device)
    cols[q_row, slot] = q_col
    return torch.arange(R, device=q_row.device)[:, None], cols, slot


def _attend(attn, q, k, v, mask, rows, cols, dropout: float):
    """The model's own attention function (SDPA or eager) for queries ``(R, H, Q, D)`` at ``cols`` against all
    keys; returns ``(R, Q, H·D)``."""
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS  # lazy: ~3 s to import, not at rewardlab start-up

    impl = attn.config._attn_implementation
    attend = (
        sys.modules[type(attn).__module__].eager_attention_forward if impl == "eager" else ALL_ATTENTION_FUNCTIONS[impl]
    )
    out, _ = attend(
        attn,
        q,
        k,
        v,
        mask[rows, :, cols].transpose(1, 2).contiguous(),  # (R, 1, Q, W)
        dropout=dropout if attn.training else 0.0,
        scaling=attn.scaling,
        sliding_window=getattr(attn, "sliding_window", None),
    )
    return out.reshape(*cols.shape, -1)


def _causal_states_at(base, input_ids, position_ids, mask, q_row, q_col) -> torch.Tensor:
    """Final hidden states ``(n, d)`` at tokens ``(q_row[i], q_col[i])`` of ``(R, W)`` packed rows: every layer but
    the last over all tokens (as the base model's forward does), the last one with queries at those tokens only
    (keys and values over all tokens), then the final norm."""
    hidden = base.embed_tokens(input_ids)
    cos, sin = base.rotary_emb(hidden, position_ids=position_ids)
    for layer in base.layers[:-1]:
        hidden = layer(
            hidden, attention_mask=mask, position_ids=position_ids, position_embeddings=(cos, sin), use_cache=False
        )
        hidden = hidden[0] if isinstance(hidden, tuple) else hidden
    R, W, _ = hidden.shape
    rows, cols, slot = _slots(q_row, q_col, R)
    layer = base.layers[-1]
    attn = layer.self_attn
    rotate_half = sys.modules[type(attn).__module__].rotate_half  # as the module's apply_rotary_pos_emb, for q or k
    rotate = lambda x, c, s: x * c[:, None] + rotate_half(x) * s[:, None]  # noqa: E731  x (R, H, T, D), c (R, T, D)
    x = layer.input_layernorm(hidden)
    D = attn.head_dim
    q = attn.q_proj(x[rows, cols]).view(*cols.shape, -1, D)
    k = attn.k_proj(x).view(R, W, -1, D)
    v = attn.v_proj(x).view(R, W, -1, D).transpose(1, 2)
    if hasattr(attn, "q_norm"):  # Qwen3: RMSNorm over the head dim before the rotation
        q, k = attn.q_norm(q), attn.k_norm(k)
    q, k = rotate(q.transpose(1, 2), cos[rows, cols], sin[rows, cols]), rotate(k.transpose(1, 2), cos, sin)
    h = hidden[rows, cols] + attn.o_proj(_attend(attn, q, k, v, mask, rows, cols, attn.attention_dropout))
    h = h + layer.mlp(layer.post_attention_layernorm(h))
    return base.norm(h[q_row, slot])


def _encoder_states_at(base, input_ids, position_ids, token_type_ids, mask, q_row, q_col) -> torch.Tensor:
    """:func:`_causal_states_at` for BERT-style post-norm encoders: the embeddings and every layer but the last
    over all tokens, the last one (self-attention, its residual + LayerNorm, the feed-forward block) with queries
    at the read ([CLS]) tokens only. Dropout modules are the model's own."""
    hidden = base.embeddings(input_ids=input_ids, position_ids=position_ids, token_type_ids=token_type_ids)
    layers = base.encoder.layer
    for layer in layers[:-1]:
        hidden = layer(hidden, attention_mask=mask)
        hidden = hidden[0] if isinstance(hidden, tuple) else hidden
    R, W, _ = hidden.shape
    rows, cols, slot = _slots(q_row, q_col, R)
    layer = layers[-1]
    attn = layer.attention.self
    D = attn.attention_head_size
    q = attn.query(hidden[rows, cols]).view(*cols.shape, -1, D).transpose(1, 2)
    k = attn.key(hidden).view(R, W, -1, D).transpose(1, 2)
    v = attn.value(hidden).view(R, W, -1, D).transpose(1, 2)
    a = layer.attention.output(_attend(attn, q, k, v, mask, rows, cols, attn.dropout.p), hidden[rows, cols])
    return layer.feed_forward_chunk(a)[q_row, slot]


# ---- scoring -----------------------------------------------------------------------------------------
@torch.no_grad()
def score_packed(
    rm, items: list, token_budget: int | None = None, forward_tokens: int | None = None, share_prefix: bool = True
) -> list[float]:
    """Rewards of ``(prompt, response)`` items in input order. Items with the same prompt form a group (their
    common token prefix is computed once). By default each group is a row of its own: the rows are sorted by width
    and batched into forwards of about ``forward_tokens`` tokens (default ``4 × default_token_budget``), so rows of
    one forward are about equally wide (5% padding on the benchmark's hh-rlhf sample) and the dense block mask
    spends no attention on other groups. ``token_budget`` packs groups into shared rows of that many tokens instead
    (what training does, where a micro-batch has too few groups to sort). Measured on the 2-core CPU with the
    benchmark's hidden-256 Llama: one group per row and 2,048-token forwards took 5-15% less CPU time than 512-token
    rows in 4,096-token forwards. Falls back to the padded path when the model is not covered."""
    mode = rm.packing_mode()
    if mode is None:
        return rm.score(items, packing=False)
    device = next(rm.model.parameters()).device
    feats = [rm.encoder.encode(p, r) for p, r in items]
    members: dict = {}
    for i, (prompt, _) in enumerate(items):
        members.setdefault(prompt_key(prompt), []).append(i)
    groups_items = list(members.values())
    groups = [layout_group([feats[i] for i in idx], mode, share_prefix) for idx in groups_items]
    rows = pack_rows([len(g) for g in groups], token_budget or 0)
    width = {id(row): sum(len(groups[g]) for g in row) for row in rows}
    rows.sort(key=lambda row: -width[id(row)])  # widest first: the rows of one forward are about equally wide
    forward_tokens = forward_tokens or 4 * default_token_budget(rm.model)
    out = [0.0] * len(items)
    start = 0
    with progress_bar(len(items), "score (packed)", unit="text") as bar:
        while start < len(rows):  # fill each forward up to forward_tokens slots
            n = max(1, min(len(rows) - start, forward_tokens // max(width[id(rows[start])], 1)))
            chunk = rows[start : start + n]
            order = [(g, k) for row in chunk for g in row for k in range(len(groups[g].reads))]
            inputs = {k: v.to(device) for k, v in build_inputs(groups, chunk, rm.spec.pad_token_id, order).items()}
            rewards = rm(**inputs).tolist()  # through the model's forward: sharded engines' hooks run
            for (g, k), r in zip(order, rewards):
                out[groups_items[g][k]] = r
            start += n
            bar.update(len(order))
    return out
