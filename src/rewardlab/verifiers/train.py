"""``rewardlab train-verifier``: train an outcome (ORM) or process (PRM) reward model on the training core.

A command of its own rather than ``train --objective``: ``train``'s config is the pairwise one (pairs, BT
losses, pooling), while a verifier's data are solutions with step labels and its options are the step marker,
the head and the aggregation. The loop is the core's (:func:`rewardlab.training.recipe.run_steps`): schedule, clipping,
the non-finite guard, checkpoints, exact ``--resume``, ``--stop-after`` and ``torchrun`` worlds.

* ``--objective orm``: per-token BCE with the outcome on every completion token, prompt masked (``--orm-loss
  token``), or one BCE of σ(mean completion logit) (``--orm-loss mean_logit``).
* ``--objective prm``: a loss at the step markers only: ``--head bce`` (binary or soft labels, one output),
  ``two_class`` (TRL's 2-class token-classification head; soft labels as [1 − p, p]) or ``ternary`` (−1/0/+1).

Before the first step every training solution is encoded and each step's marker checked (:mod:`.steps`): a
marker that does not end a step with its one standalone id stops the run naming it and what it tokenized to;
step labels cut off by ``--max-length`` are counted and reported (``--on-truncation refuse`` stops instead).
Output: ``model/`` (:class:`~rewardlab.verifiers.model.VerifierModel`), ``metrics.jsonl``, ``report.json`` /
``report.md`` (held-out ProcessBench-protocol F1 of a PRM, best-of-n on held-out problems).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shlex
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForTokenClassification, AutoTokenizer

from rewardlab.core.atomic import atomic_write_text, json_safe
from rewardlab.core.bounds import Fraction, NonNegative, NonNegativeFloat, Positive, PositiveFloat, Seed
from rewardlab.core.device import TrainDeviceOptions, resolve_training
from rewardlab.core.errors import DataError, RewardlabError
from rewardlab.core.jsonstrict import dumps_strict
from rewardlab.core.outputs import claim_output_dir
from rewardlab.models.backbones import cache_dir, resolve_backbone
from rewardlab.models.tiny import make_tiny_causal_lm
from rewardlab.training.recipe import (
    SCHEDULES,
    Checkpointing,
    LoopOptions,
    MetricsLog,
    StepPlan,
    config_defaults,
    make_accelerator,
    run_steps,
)
from rewardlab.verifiers.aggregate import check_aggregation
from rewardlab.verifiers.evaluate import candidates_report, processbench_report
from rewardlab.verifiers.losses import HEADS
from rewardlab.verifiers.model import VerifierModel, VerifierSpec
from rewardlab.verifiers.readers import VERIFIER_FORMATS, read_verifier_data
from rewardlab.verifiers.records import Problem, Solution
from rewardlab.verifiers.steps import StepFormat, add_special_marker
from rewardlab.verifiers.synthetic import ANSWER, make_problems

RUN_WRITES = ("model", "checkpoints", "metrics.jsonl", "report.json", "report.md")


@dataclass
class TrainVerifierConfig(TrainDeviceOptions):
    # data
    data: str = (
        "synthetic"  # solutions file (trl | processbench | gsm8k_solutions | math_shepherd), or synthetic (embedded)
    )
    format: str = "auto"  # auto | trl | processbench | gsm8k_solutions | math_shepherd
    label_scheme: str | None = None  # binary | ternary | soft; default: decided from the file's labels
    skip_invalid: bool = False  # skip malformed rows (counted in the report) instead of stopping at the first
    limit: Positive | None = None  # rows read from data
    synthetic_problems: Positive = 300  # data=synthetic: arithmetic problems (4 solutions each)
    eval_data: str | None = None  # held-out file; default: a problem-hash split of data
    eval_fraction: Fraction = 0.2  # share of problems held out when eval_data is not given
    # model
    objective: str = "prm"  # orm | prm
    head: str = "auto"  # prm: bce | two_class (TRL's) | ternary; auto: ternary for ternary labels, else bce
    orm_loss: str = "token"  # orm: token (per-token BCE) | mean_logit (BCE of sigmoid(mean token logit))
    backbone: str = (
        "tiny-causal"  # tiny-causal (random-init Llama, trained from scratch), minilm, smollm2-135m, a directory
    )
    head_dropout: Fraction | None = None  # dropout before the token head while training; None: the backbone's (0.1)
    train_layers: Positive | None = None  # decoders: train only the last N blocks (+ final norm) and the head
    aggregation: str | None = None  # default solution score: min | prod | last | mean | last_token | mean_last_M
    # steps
    marker: str = "\n"  # ends every step (its token carries the step label); checked to be one standalone id
    marker_special: bool = False  # add the marker as a dedicated special token (e.g. --marker "<step>")
    prompt_separator: str = "\n"  # between the prompt and the first step
    max_length: Positive = 512  # tokens per solution; longer ones keep their first max_length
    on_truncation: str = "report"  # report (count the step labels cut off) | refuse (stop before training)
    # optimisation
    epochs: Positive = 1  # passes over the training solutions
    lr: PositiveFloat = 5e-5  # peak learning rate (AdamW)
    weight_decay: NonNegativeFloat = 0.0  # AdamW weight decay of the matrices
    warmup_ratio: Fraction = 0.1  # share of the steps spent warming up linearly
    lr_schedule: str = "linear"  # after the warmup: linear (to 0) | cosine | constant
    max_grad_norm: NonNegativeFloat = 1.0  # gradient clipping (global norm); 0: none
    batch_size: Positive = 8  # solutions per optimizer step, over all processes
    micro_batch_size: Positive | None = None  # solutions per forward (default: the whole share)
    eval_batch_size: Positive = 16  # solutions per forward when scoring
    packing: str = "auto"  # auto: a problem's solutions share their prompt's forward where the backbone is covered (causal Llama/Qwen/Mistral), else padded | on: refuse otherwise | off
    seed: Seed = 0  # data order, head initialisation, split
    # output
    output_dir: str = "runs/verifier"  # model/, metrics.jsonl, report.json, report.md
    save_model: bool = True  # write output_dir/model
    log_every: Positive = 10  # steps between progress lines
    # checkpoints
    save_every: NonNegative = 0  # steps between checkpoints; 0: none
    keep_checkpoints: Positive = 2  # newest N kept
    resume: bool = False  # continue from the newest checkpoint (exactly)
    overwrite: bool = False  # replace a previous run in output_dir
    stop_after: Positive | None = None  # stop (as if killed) after N steps, leaving a checkpoint
    skip_nonfinite: NonNegative = 0  # a non-finite loss stops the run; N > 0 skips up to N such updates

    RESUMABLE = (
        "resume",
        "stop_after",
        "log_every",
        "save_every",
        "keep_checkpoints",
        "skip_nonfinite",
        "overwrite",
        "output_dir",
        "save_model",
        "eval_batch_size",
        "device",
    )

    def __post_init__(self):
        if self.objective not in ("orm", "prm"):
            raise RewardlabError(f"--objective must be orm or prm, got {self.objective!r}")
        if self.head not in ("auto", "bce", "two_class", "ternary"):
            raise RewardlabError(f"--head must be auto, bce, two_class or ternary, got {self.head!r}")
        if self.orm_loss not in ("token", "mean_logit"):
            raise RewardlabError(f"--orm-loss must be token or mean_logit, got {self.orm_loss!r}")
        if self.on_truncation not in ("report", "refuse"):
            raise RewardlabError(f"--on-truncation must be report or refuse, got {self.on_truncation!r}")
        if self.format != "auto" and self.format not in VERIFIER_FORMATS:
            raise RewardlabError(f"--format must be auto or one of {', '.join(VERIFIER_FORMATS)}, got {self.format!r}")
        if self.lr_schedule not in SCHEDULES:
            raise RewardlabError(f"--lr-schedule must be {', '.join(SCHEDULES)}, got {self.lr_schedule!r}")
        if self.packing not in ("auto", "on", "off"):
            raise RewardlabError(f"--packing must be auto, on or off, got {self.packing!r}")
        if not self.marker:
            raise RewardlabError("--marker must not be empty")
        if not self.prompt_separator:
            raise RewardlabError(
                "--prompt-separator must not be empty: a separator between the prompt and step 1, always "
                "(TRL trains without one and infers with one)"
            )
        if self.aggregation is not None:
            try:
                check_aggregation(self.aggregation)
            except ValueError as e:
                raise RewardlabError(f"--aggregation: {e}") from None


def resolve_head(cfg: TrainVerifierConfig, scheme: str) -> str:
    """The head (a :data:`HEADS` key) for the objective and the data's label scheme; refuses a mismatch."""
    if cfg.objective == "orm":
        return "orm_token" if cfg.orm_loss == "token" else "orm_mean_logit"
    head = cfg.head if cfg.head != "auto" else ("ternary" if scheme == "ternary" else "bce")
    if (head == "ternary") != (scheme == "ternary"):
        raise RewardlabError(f"--head {head} does not fit {scheme} step labels (ternary labels need --head ternary)")
    return head


def split_problems(problems: list[Problem], fraction: float, seed: int) -> tuple[list[Problem], list[Problem]]:
    """``(train, held out)``: each problem wholly on one side, by sha256 of (seed, prompt)."""
    train, held = [], []
    for p in problems:
        h = int(hashlib.sha256(f"{seed}\0{p.prompt}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
        (held if h < fraction else train).append(p)
    return train, held


def load_problems(cfg: TrainVerifierConfig) -> tuple[list[Problem], list[Problem], dict]:
    if cfg.data == "synthetic":
        problems = make_problems(cfg.synthetic_problems, seed=cfg.seed)
        info = {
            "data": "synthetic (embedded arithmetic chains)",
            "format": "synthetic",
            "scheme": "binary",
            "skipped": 0,
        }
    else:
        d = read_verifier_data(cfg.data, cfg.format, cfg.label_scheme, cfg.skip_invalid, cfg.limit)
        problems = d.problems
        info = {"data": cfg.data, "format": d.format, "scheme": d.scheme, "rows": d.rows, "skipped": len(d.skipped)}
        for msg in d.skipped[:5]:
            print(f"rewardlab: skipped: {msg}", file=sys.stderr)
    if cfg.eval_data:
        e = read_verifier_data(cfg.eval_data, "auto", cfg.label_scheme, cfg.skip_invalid)
        return problems, e.problems, info
    train, held = split_problems(problems, cfg.eval_fraction, cfg.seed)
    return train, held, info


def trainable_solutions(problems: list[Problem], objective: str) -> tuple[list[Solution], int]:
    """The solutions the objective can learn from (ORM: an outcome; PRM: at least one step label) and how many
    were left out for lacking it."""
    sols = [s for p in problems for s in p.solutions]
    if objective == "orm":
        kept = [s for s in sols if s.outcome is not None]
    else:
        kept = [s for s in sols if s.step_labels is not None and any(v is not None for v in s.step_labels)]
    return kept, len(sols) - len(kept)


TINY_CAUSAL = (
    "tiny-causal"  # a 4-layer, 128-wide Llama with rewardlab.models.tiny's BPE, randomly initialised (no download)
)


def backbone_path(name: str) -> str:
    """``tiny-causal``: written once under the rewardlab cache (tmp + rename); anything else:
    :func:`rewardlab.models.backbones.resolve_backbone`."""
    if name != TINY_CAUSAL:
        return resolve_backbone(name)
    target = cache_dir() / "backbones" / "tiny-causal-h128-l4"
    if not (target / "config.json").exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".tmp-"))
        make_tiny_causal_lm(tmp, seed=0, hidden=128, layers=4)
        try:
            os.replace(tmp, target)
        except OSError:  # another process won the race
            pass
    return str(target)


def build_model(cfg: TrainVerifierConfig, head: str, scheme: str) -> VerifierModel:
    path = backbone_path(cfg.backbone)
    torch.manual_seed(cfg.seed)
    tok = AutoTokenizer.from_pretrained(path)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    config = AutoConfig.from_pretrained(path, num_labels=HEADS[head][0])
    if cfg.head_dropout is not None:
        config.classifier_dropout = cfg.head_dropout
    attn = {"attn_implementation": cfg.attn_implementation} if cfg.attn_implementation else {}
    model = AutoModelForTokenClassification.from_pretrained(path, config=config, **attn)
    model.config.pad_token_id = tok.pad_token_id
    fmt = StepFormat(cfg.marker, cfg.prompt_separator, cfg.marker_special)
    if cfg.marker_special:
        add_special_marker(tok, model, fmt)
    causal = not model.config.model_type.startswith(("bert", "roberta", "deberta", "distilbert", "electra"))
    spec = VerifierSpec(
        objective=cfg.objective,
        head=head,
        label_scheme=scheme if cfg.objective == "prm" else "binary",
        step_format=fmt.to_json(),
        aggregation=cfg.aggregation or ("last_token" if cfg.objective == "orm" else "min"),
        max_length=cfg.max_length,
        causal=causal,
    )
    if cfg.train_layers is not None:
        from rewardlab.training.freeze import freeze_below  # lazy: only for --train-layers

        freeze_below(model, cfg.train_layers)
        for p in model.score.parameters() if hasattr(model, "score") else model.classifier.parameters():
            p.requires_grad_(True)
    return VerifierModel(model, tok, spec)


def encode_all(vm: VerifierModel, sols: list[Solution], on_truncation: str):
    """Every solution encoded (markers checked) before training; ``(encoded, dropped labels, solutions cut)``."""
    enc = [vm.encode(s.prompt, s.steps, s.step_labels, name=f"solution {s.id!r}") for s in sols]
    dropped = sum(e.dropped_labels for e in enc)
    cut = sum(1 for e in enc if any(p is None for p in e.step_positions))
    if cut and on_truncation == "refuse":
        raise RewardlabError(
            f"--max-length {vm.spec.max_length} cuts off steps of {cut} solutions ({dropped} step labels); "
            "raise --max-length or pass --on-truncation report"
        )
    return enc, dropped, cut


def fingerprint(enc, sols: list[Solution]) -> str:
    h = hashlib.sha256()
    for e, s in zip(enc, sols):
        h.update(json.dumps([e.ids, e.step_positions, s.step_labels, s.outcome]).encode())
    return h.hexdigest()


def problem_groups(sols: list[Solution]) -> list[list[int]]:
    """Solution indices per prompt, in order of first appearance (the solutions of one problem)."""
    by_prompt: dict[str, list[int]] = {}
    for i, s in enumerate(sols):
        by_prompt.setdefault(s.prompt, []).append(i)
    return list(by_prompt.values())


def plan_for(groups: list[list[int]], epochs: int, batch_size: int, seed: int) -> StepPlan:
    """Each epoch shuffles the problems and keeps a problem's solutions together (so a step's solutions of one
    problem can share their prompt's forward, :mod:`rewardlab.verifiers.packed`); the same order packed or not.

    >>> plan = plan_for([[0, 1], [2, 3], [4]], 1, 2, 0)
    >>> [plan.step(s)[1] for s in range(plan.total)]
    [[0, 1], [4, 2], [3]]
    """
    rng, orders = random.Random(seed), []
    for _ in range(epochs):
        order = list(range(len(groups)))
        rng.shuffle(order)
        orders.append([i for g in order for i in groups[g]])
    return StepPlan(orders, batch_size)


def train_loop(cfg, vm: VerifierModel, sols, enc, ckpt, accelerator, metrics, log):
    """The core's loop over solutions: a step's loss = Σ per-solution loss / solutions in the step."""
    loss_fn = HEADS[vm.spec.head][1]
    micro = cfg.micro_batch_size or cfg.batch_size

    def step_loss(share: list[int], items: list[int]) -> dict[str, float]:
        total = 0.0
        for m in range(0, len(share), micro):
            idx = share[m : m + micro]
            b = vm.batch(
                [enc[i] for i in idx],
                [sols[i].step_labels for i in idx],
                [sols[i].outcome for i in idx],
                keys=[sols[i].prompt for i in idx],
            )
            per = loss_fn(vm.batch_logits(b, labelled_only=vm.spec.objective == "prm"), b)
            loss = per.sum() / len(items)
            loss.backward()
            total += loss.item()
        return {"loss": total, "solutions": float(len(share))}

    def row(sums: dict, items: list[int]) -> dict:
        return {"loss": sums["loss"], "solutions": int(sums["solutions"])}

    torch.manual_seed(cfg.seed)
    return run_steps(
        plan_for(problem_groups(sols), cfg.epochs, cfg.batch_size, cfg.seed),
        step_loss,
        row,
        module=vm.model,
        trainable=[(n, p) for n, p in vm.model.named_parameters() if p.requires_grad],
        opts=LoopOptions.from_config(cfg),
        ckpt=ckpt,
        accelerator=accelerator,
        metrics=metrics,
        on_row=lambda rec, last: log(rec, force=last),
    )


def evaluate_held_out(vm: VerifierModel, problems: list[Problem], batch_size: int, seed: int = 0) -> dict:
    """PRM-protocol F1 on held-out solutions whose first error is known (ProcessBench's rule; the threshold
    chosen on these rows, so it is an optimistic figure and says so) and best-of-n on problems with outcomes."""
    sols = [s for p in problems for s in p.solutions]
    if not sols:
        return {}
    scored = vm.score_steps([(s.prompt, list(s.steps)) for s in sols], batch_size=batch_size)
    out: dict = {"aggregation": vm.spec.aggregation, "n_solutions": len(sols)}
    rows = [
        {"split": "held_out", "label": s.first_error, "step_scores": r["step_scores"]}
        for s, r in zip(sols, scored)
        if s.first_error is not None
    ]
    if rows:
        out["first_error"] = processbench_report(rows, "held_out")
        out["first_error"]["note"] = "threshold chosen on the same held-out rows (optimistic)"
    by_id = {s.id: r for s, r in zip(sols, scored)}
    groups, unscored = [], 0
    for p in problems:
        if any(by_id[s.id]["score"] is None for s in p.solutions):
            unscored += 1  # a solution whose every step lies beyond max_length
            continue
        if len(p.solutions) >= 2 and all(s.outcome is not None for s in p.solutions):
            answers = []
            for s in p.solutions:
                m = ANSWER.match(s.steps[-1].strip())
                answers.append(m.group(1) if m else s.steps[-1].strip())
            groups.append(
                {
                    "scores": [by_id[s.id]["score"] for s in p.solutions],
                    "correct": [s.outcome for s in p.solutions],
                    "answers": answers,
                }
            )
    out["problems_unscored_truncated"] = unscored
    out["solutions_with_steps_cut"] = sum(any(v is None for v in r["step_scores"]) for r in scored)
    if groups:
        out["candidates"] = candidates_report(groups, seed)
    return out


def run_train_verifier(cfg: TrainVerifierConfig, command: str | None = None) -> dict:
    t0 = time.perf_counter()
    out = claim_output_dir(cfg.output_dir, overwrite=cfg.overwrite, written=RUN_WRITES, resume=cfg.resume)
    train, held, info = load_problems(cfg)
    head = resolve_head(cfg, info["scheme"])
    sols, left_out = trainable_solutions(train, cfg.objective)
    if not sols:
        raise DataError(
            f"no training solution has {'an outcome' if cfg.objective == 'orm' else 'step labels'} "
            f"for --objective {cfg.objective}",
            path=cfg.data,
        )
    accelerator = make_accelerator(False, [], out / "tensorboard")
    main = accelerator.is_main_process
    vm = build_model(cfg, head, info["scheme"])
    # --device / --attn-implementation as every trainer (core.device); float32 weights, no autocast (a verifier's
    # per-token sigmoids are trained in fp32). Under torchrun the process's own device wins.
    placement = resolve_training(cfg, "fp32", str(accelerator.device) if accelerator.num_processes > 1 else None)
    if main:
        print(f"rewardlab: train-verifier {placement.line()}", file=sys.stderr, flush=True)
    vm.model.to(placement.device)
    packing_off = vm.use_packing(cfg.packing)  # --packing on refuses here (ModelContractError), before training
    if packing_off and cfg.packing == "auto":
        print(f"rewardlab: packing off (padded batches): {packing_off}", file=sys.stderr)
    enc, dropped, cut = encode_all(vm, sols, cfg.on_truncation)  # refuses before training
    if cut:
        print(
            f"rewardlab: warning: --max-length {cfg.max_length} cuts off steps of {cut} training solutions "
            f"({dropped} step labels dropped; counted in report.json)",
            file=sys.stderr,
        )
    if main:
        out.mkdir(parents=True, exist_ok=True)
    accelerator.wait_for_everyone()
    metrics = MetricsLog(out / "metrics.jsonl", main)
    if not cfg.resume and main:
        metrics.path.write_text("")

    def log(rec: dict, force: bool = False) -> None:
        if main and (force or rec.get("step", 0) % cfg.log_every == 0):
            print(
                "train-verifier: "
                + json.dumps({k: (round(v, 5) if isinstance(v, float) else v) for k, v in rec.items()}),
                flush=True,
            )

    key = {k: v for k, v in asdict(cfg).items() if k not in TrainVerifierConfig.RESUMABLE}
    ckpt = Checkpointing(
        out / "checkpoints",
        json_safe(key),
        config_defaults(TrainVerifierConfig),
        fingerprint(enc, sols),
        cfg.keep_checkpoints,
    )
    t = time.perf_counter()
    loop = train_loop(cfg, vm, sols, enc, ckpt, accelerator, metrics, log)
    result: dict = {
        "objective": cfg.objective,
        "head": head,
        "label_scheme": info["scheme"],
        "backbone": cfg.backbone,
        "causal": vm.spec.causal,
        "data": info,
        "train_solutions": len(sols),
        "train_problems": len(train),
        "held_out_problems": len(held),
        "left_out_without_labels": left_out,
        "truncation": {"max_length": cfg.max_length, "solutions_cut": cut, "step_labels_dropped": dropped},
        "step_format": vm.spec.step_format,
        "packing": {"mode": cfg.packing, "used": vm.packing, "reason_off": packing_off or None},
        "processes": accelerator.num_processes,
        "placement": placement.describe(),  # device, float32 weights, and why
        "train_seconds": time.perf_counter() - t,
        "history_tail": loop.history[-3:],
    }
    if not loop.finished:
        accelerator.end_training()
        return {**json_safe(result), "stopped_after": loop.steps}
    t = time.perf_counter()
    result["held_out"] = evaluate_held_out(vm, held, cfg.eval_batch_size, cfg.seed) if held else {}
    result["eval_seconds"] = time.perf_counter() - t
    result["total_seconds"] = time.perf_counter() - t0
    result["command"] = command or command_line(cfg)
    result["config"] = asdict(cfg)
    accelerator.wait_for_everyone()
    accelerator.end_training()
    result = json_safe(result)
    if main:
        if cfg.save_model:
            vm.save(out / "model")
            result["model_dir"] = str(out / "model")
        atomic_write_text(out / "report.json", dumps_strict(result, indent=2, ensure_ascii=False) + "\n")
        atomic_write_text(out / "report.md", render_report(result))
    return result


def command_line(cfg: TrainVerifierConfig) -> str:
    """The options that differ from the defaults, as a command line (booleans as --flag / --no-flag)."""
    parts = ["rewardlab", "train-verifier"]
    for k, v in asdict(cfg).items():
        if v == getattr(TrainVerifierConfig, k, None):
            continue
        flag = "--" + k.replace("_", "-")
        parts += [flag if v else "--no-" + flag[2:]] if isinstance(v, bool) else [flag, shlex.quote(str(v))]
    return " ".join(parts)


def _f(x) -> str:
    return "—" if x is None else f"{x:.3f}"


def render_report(r: dict) -> str:
    lines = [
        f"# Verifier: {r['objective'].upper()} ({r['head']} head) on {r['backbone']}",
        "",
        f"- data: {r['data']['data']} ({r['data']['format']}, {r['label_scheme']} labels); {r['train_solutions']} "
        f"training solutions from {r['train_problems']} problems; {r['held_out_problems']} problems held out",
        f"- step format: marker {r['step_format']['marker']!r} (special: {r['step_format']['special']}), prompt "
        f"separator {r['step_format']['prompt_separator']!r}; causal backbone: {r['causal']}",
        f"- truncation (max_length {r['truncation']['max_length']}): {r['truncation']['solutions_cut']} solutions cut, "
        f"{r['truncation']['step_labels_dropped']} step labels dropped",
        f"- packing (--packing {r['packing']['mode']}): "
        + ("prefix-shared packed forward" if r["packing"]["used"] else f"padded ({r['packing']['reason_off']})"),
        f"- train seconds: {r['train_seconds']:.1f}",
    ]
    h = r.get("held_out") or {}
    if "first_error" in h:
        fe = h["first_error"]
        lines += [
            "",
            f"## First-error F1 (held out; threshold {fe['threshold']:.4f}, {fe['note']})",
            "",
            "| predictor | acc_err | acc_cor | F1 |",
            "|---|---|---|---|",
        ]
        for sp in fe["splits"].values():
            for name in ("model", "never_wrong", "random_step"):
                v = sp[name]
                lines.append(f"| {name} | {_f(v['acc_err'])} | {_f(v['acc_cor'])} | {_f(v['f1'])} |")
    if "candidates" in h:
        c = h["candidates"]
        lines += [
            "",
            f"## Best-of-n on held-out problems (aggregation {h['aggregation']}; {c['interval']})",
            "",
            "| measure | value | 95% CI |",
            "|---|---|---|",
        ]
        for name, v in [("top-1 (best-of-N)", c["top1"]), ("pairwise", c["pairwise"])] + list(c["baselines"].items()):
            ci = v.get("ci95")
            lines.append(f"| {name} | {_f(v['value'])} | {'—' if not ci else f'{ci[0]:.3f}–{ci[1]:.3f}'} |")
    return "\n".join(lines) + "\n"
